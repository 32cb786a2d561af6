//! Dashboards: the JSON documents the web UI saves and loads through `/api/v1/dashboards`,
//! kept one file per dashboard in `DATA_DIR/dashboards/<uid>.json`.
//!
//! Inputs: a dashboard document (bytes of JSON) and the time of the save. Outputs: the stored
//! document with its `uid`, `version` and `updated` set by the store, and summaries for the
//! list. The schema is checked here (rows of panels with typed queries, variables) so a bad
//! save gets a message naming the field instead of a dashboard that cannot render; fields
//! the store does not know are kept as they are, so the UI can grow without a migration.
//!
//! The one design decision to know: saves are optimistic. Every save bumps `version`, and an
//! update must carry the version it was made from; an editor working on an old copy gets
//! [`Error::Conflict`] instead of silently overwriting someone else's change (as Grafana
//! does). A save is written to a temporary file, synced and renamed over the old one, so a
//! crash leaves either the old or the new document, never half of one. Built-in dashboards
//! (the Overview) come from the binary, are listed beside the saved ones and are read-only.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use telltale_model::{units, ErrorKind, Timestamp};

/// `dashboards:` in the config: limits of the dashboards API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Largest dashboard document accepted (`"1MiB"`); a bigger save gets 413.
    #[serde(with = "units::size")]
    pub max_size: u64,
    /// Most dashboards kept; creating one more is refused (0: no limit).
    pub max_count: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { max_size: 1 << 20, max_count: 1000 }
    }
}

/// Panel types the UI draws.
pub const PANEL_TYPES: &[&str] = &["timeseries", "stat", "gauge", "bar", "table", "logs"];

/// Why a dashboard operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is not a valid dashboard; `reason` names the field.
    #[error("invalid dashboard: {reason}")]
    Invalid {
        /// What is wrong, with the field's path.
        reason: String,
    },
    /// No dashboard has this uid.
    #[error("no dashboard with uid {uid:?}")]
    NotFound {
        /// The uid asked for.
        uid: String,
    },
    /// The dashboard changed since the editor loaded it, or the uid is taken.
    #[error("{message}")]
    Conflict {
        /// What conflicts, and what to do.
        message: String,
    },
    /// The document exceeds `dashboards.max_size`.
    #[error("dashboard of {size} bytes exceeds dashboards.max_size ({limit})")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// The limit, as configured.
        limit: String,
    },
    /// Creating another dashboard would exceed `dashboards.max_count`.
    #[error("already {count} dashboards, the most dashboards.max_count allows")]
    TooMany {
        /// The limit.
        count: usize,
    },
    /// Reading or writing a file failed.
    #[error("cannot {op} {}", .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The error's category (the API maps it to a status).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::TooMany { .. } => ErrorKind::LimitExceeded,
            Error::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(reason: impl Into<String>) -> Error {
    Error::Invalid { reason: reason.into() }
}

/// One line of the dashboard list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Stable identifier, used in URLs (`/dashboards/<uid>`).
    pub uid: String,
    /// Title shown in the list.
    pub title: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Bumped by every save.
    pub version: u64,
    /// Last save, milliseconds since the epoch (0 for built-ins).
    pub updated: Timestamp,
    /// Shipped with the binary, read-only.
    pub builtin: bool,
}

impl Summary {
    fn of(doc: &Value, builtin: bool) -> Summary {
        let tags = doc["tags"].as_array().map(|t| t.iter().filter_map(|v| v.as_str().map(String::from)).collect());
        Summary {
            uid: doc["uid"].as_str().unwrap_or_default().to_string(),
            title: doc["title"].as_str().unwrap_or_default().to_string(),
            tags: tags.unwrap_or_default(),
            version: doc["version"].as_u64().unwrap_or(0),
            updated: doc["updated"].as_i64().unwrap_or(0),
            builtin,
        }
    }
}

/// The dashboards directory plus the built-ins.
pub struct Store {
    dir: PathBuf,
    opts: Options,
    builtins: Vec<Value>,
    /// Serialises saves, so a version check and the write that follows are one step.
    write: Mutex<()>,
}

impl Store {
    /// Opens (creating) `dir`, removes temporary files a crash left, and adds `builtins`
    /// (`(uid, document)`, marked `builtin: true`).
    pub fn open(dir: &Path, opts: Options, builtins: Vec<(String, Value)>) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { op: "create", path: dir.into(), source })?;
        for entry in read_dir(dir)? {
            if entry.extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(&entry);
            }
        }
        let builtins = builtins
            .into_iter()
            .map(|(uid, mut doc)| {
                if let Value::Object(m) = &mut doc {
                    m.insert("uid".into(), Value::String(uid));
                    m.insert("builtin".into(), Value::Bool(true));
                    m.entry("version").or_insert(Value::from(1));
                }
                doc
            })
            .collect();
        Ok(Store { dir: dir.into(), opts, builtins, write: Mutex::new(()) })
    }

    fn path(&self, uid: &str) -> PathBuf {
        self.dir.join(format!("{uid}.json"))
    }

    fn builtin(&self, uid: &str) -> Option<&Value> {
        self.builtins.iter().find(|d| d["uid"] == uid)
    }

    /// Built-ins first, then saved dashboards by title.
    pub fn list(&self) -> Result<Vec<Summary>> {
        let mut saved = Vec::new();
        for path in read_dir(&self.dir)? {
            if path.extension().is_some_and(|e| e == "json") {
                // A file that cannot be read is skipped here and reported when opened.
                if let Ok(doc) = read_doc(&path) {
                    saved.push(Summary::of(&doc, false));
                }
            }
        }
        saved.sort_by(|a, b| a.title.to_lowercase().cmp(&b.title.to_lowercase()).then(a.uid.cmp(&b.uid)));
        let mut out: Vec<Summary> = self.builtins.iter().map(|d| Summary::of(d, true)).collect();
        out.extend(saved);
        Ok(out)
    }

    /// The document with this uid.
    pub fn get(&self, uid: &str) -> Result<Value> {
        if let Some(doc) = self.builtin(uid) {
            return Ok(doc.clone());
        }
        check_uid(uid)?;
        let path = self.path(uid);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound { uid: uid.into() }),
            _ => read_doc(&path),
        }
    }

    /// Saves a new dashboard. Its uid is the document's `uid` if given, else one made from
    /// the title (`Web servers` → `web-servers`, `web-servers-2` if taken).
    pub fn create(&self, body: &[u8], now: Timestamp) -> Result<Value> {
        let mut doc = self.parse(body)?;
        let _guard = self.write.lock();
        if self.opts.max_count > 0 && self.count()? >= self.opts.max_count {
            return Err(Error::TooMany { count: self.opts.max_count });
        }
        let uid = match doc.get("uid").and_then(Value::as_str) {
            Some(uid) if !uid.is_empty() => {
                check_uid(uid)?;
                if self.builtin(uid).is_some() || self.path(uid).is_file() {
                    return Err(Error::Conflict {
                        message: format!("a dashboard with uid {uid:?} exists: update it, or create with another uid"),
                    });
                }
                uid.to_string()
            }
            _ => self.fresh_uid(doc["title"].as_str().unwrap_or("dashboard")),
        };
        doc.insert("uid".into(), Value::String(uid));
        doc.insert("version".into(), Value::from(1));
        self.store(doc, now)
    }

    /// Replaces dashboard `uid`. The document's `version` must be the stored one (it was
    /// edited from the newest copy) unless `overwrite` is set.
    pub fn update(&self, uid: &str, body: &[u8], overwrite: bool, now: Timestamp) -> Result<Value> {
        if self.builtin(uid).is_some() {
            return Err(invalid(format!("built-in dashboard {uid:?} is read-only: save a copy under another uid")));
        }
        check_uid(uid)?;
        let mut doc = self.parse(body)?;
        if let Some(other) = doc.get("uid").and_then(Value::as_str).filter(|u| !u.is_empty() && *u != uid) {
            return Err(invalid(format!("uid {other:?} in the document differs from {uid:?} in the path")));
        }
        let _guard = self.write.lock();
        let current = self.get(uid)?["version"].as_u64().unwrap_or(0);
        let given = doc.get("version").and_then(Value::as_u64);
        if !overwrite && given != Some(current) {
            let yours = given.map_or("none".to_string(), |v| v.to_string());
            return Err(Error::Conflict {
                message: format!(
                    "dashboard {uid:?} was saved by someone else since you loaded it (version {current}, yours \
                     {yours}): reload it, or save with overwrite"
                ),
            });
        }
        doc.insert("uid".into(), Value::String(uid.into()));
        doc.insert("version".into(), Value::from(current + 1));
        self.store(doc, now)
    }

    /// Deletes dashboard `uid`.
    pub fn delete(&self, uid: &str) -> Result<()> {
        if self.builtin(uid).is_some() {
            return Err(invalid(format!("built-in dashboard {uid:?} cannot be deleted")));
        }
        check_uid(uid)?;
        let _guard = self.write.lock();
        let path = self.path(uid);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound { uid: uid.into() }),
            Err(source) => Err(Error::Io { op: "delete", path, source }),
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Map<String, Value>> {
        if body.len() as u64 > self.opts.max_size {
            return Err(Error::TooLarge { size: body.len(), limit: units::format_size(self.opts.max_size) });
        }
        let doc: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("not JSON: {e}")))?;
        validate(&doc)?;
        let Value::Object(mut m) = doc else { unreachable!("validate checked it is an object") };
        m.remove("builtin");
        Ok(m)
    }

    fn count(&self) -> Result<usize> {
        Ok(read_dir(&self.dir)?.iter().filter(|p| p.extension().is_some_and(|e| e == "json")).count())
    }

    fn fresh_uid(&self, title: &str) -> String {
        let mut base: String = title
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        base.truncate(32);
        let base = if base.is_empty() { "dashboard".to_string() } else { base.trim_end_matches('-').to_string() };
        let taken = |u: &str| self.builtin(u).is_some() || self.path(u).is_file();
        if !taken(&base) {
            return base;
        }
        (2..).map(|n| format!("{base}-{n}")).find(|u| !taken(u)).unwrap_or(base)
    }

    /// Writes `doc` to a temporary file, syncs it, renames it into place and syncs the
    /// directory: once this returns, the save survives a crash.
    fn store(&self, mut doc: Map<String, Value>, now: Timestamp) -> Result<Value> {
        doc.insert("updated".into(), Value::from(now));
        let uid = doc["uid"].as_str().unwrap_or_default().to_string();
        let doc = Value::Object(doc);
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| invalid(format!("cannot encode: {e}")))?;
        let (path, tmp) = (self.path(&uid), self.dir.join(format!("{uid}.json.tmp")));
        fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
            move |source| Error::Io { op, path: path.to_path_buf(), source }
        }
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
            f.write_all(&bytes).map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("sync", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        sync_dir(&self.dir)?;
        Ok(doc)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io { op: "list", path: dir.into(), source })?;
    Ok(rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

fn read_doc(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { op: "read", path: path.into(), source })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Io {
        op: "parse",
        path: path.into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

fn sync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(|source| Error::Io { op: "open", path: dir.into(), source })?;
    f.sync_all().map_err(|source| Error::Io { op: "sync", path: dir.into(), source })
}

/// `[A-Za-z0-9_-]{1,64}`: safe as a file name and in a URL.
fn check_uid(uid: &str) -> Result<()> {
    let ok =
        !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("uid {uid:?} must be 1 to 64 letters, digits, '-' or '_'")))
    }
}

/// Checks the parts of a dashboard the UI relies on; each error names the field's path.
pub fn validate(doc: &Value) -> Result<()> {
    let Value::Object(d) = doc else { return Err(invalid("the document must be a JSON object")) };
    match d.get("title") {
        Some(Value::String(t)) if !t.trim().is_empty() && t.chars().count() <= 200 => {}
        Some(Value::String(_)) => return Err(invalid("title: must be 1 to 200 characters")),
        _ => return Err(invalid("title: missing (a string)")),
    }
    if let Some(uid) = d.get("uid") {
        match uid.as_str() {
            Some("") => {}
            Some(u) => check_uid(u)?,
            None => return Err(invalid("uid: must be a string")),
        }
    }
    if let Some(tags) = d.get("tags") {
        if !tags.as_array().is_some_and(|t| t.iter().all(Value::is_string)) {
            return Err(invalid("tags: must be a list of strings"));
        }
    }
    for (i, v) in array(d, "variables", "variables")?.iter().enumerate() {
        let at = format!("variables[{i}]");
        let name = str_field(v, "name", &at)?.unwrap_or_default();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(invalid(format!("{at}.name: must be letters, digits or '_' (used as $name in queries)")));
        }
        str_field(v, "query", &at)?.ok_or_else(|| invalid(format!("{at}.query: missing")))?;
    }
    let rows = array(d, "rows", "rows")?;
    for (r, row) in rows.iter().enumerate() {
        let at = format!("rows[{r}]");
        let Value::Object(row) = row else { return Err(invalid(format!("{at}: must be an object"))) };
        for (p, panel) in array(row, "panels", &format!("{at}.panels"))?.iter().enumerate() {
            validate_panel(panel, &format!("{at}.panels[{p}]"))?;
        }
    }
    Ok(())
}

fn validate_panel(panel: &Value, at: &str) -> Result<()> {
    let Value::Object(p) = panel else { return Err(invalid(format!("{at}: must be an object"))) };
    let ty = str_field(panel, "type", at)?.ok_or_else(|| invalid(format!("{at}.type: missing")))?;
    if !PANEL_TYPES.contains(&ty) {
        return Err(invalid(format!("{at}.type: unknown panel type {ty:?} (use {})", PANEL_TYPES.join(", "))));
    }
    str_field(panel, "title", at)?;
    str_field(panel, "unit", at)?;
    if let Some(w) = p.get("width") {
        if !w.as_u64().is_some_and(|w| (1..=12).contains(&w)) {
            return Err(invalid(format!("{at}.width: must be 1 to 12 (columns of a row)")));
        }
    }
    for (i, t) in array(p, "targets", &format!("{at}.targets"))?.iter().enumerate() {
        let tat = format!("{at}.targets[{i}]");
        str_field(t, "expr", &tat)?.ok_or_else(|| invalid(format!("{tat}.expr: missing")))?;
        str_field(t, "legend", &tat)?;
        if let Some(lang) = str_field(t, "lang", &tat)? {
            if lang != "promql" && lang != "logql" {
                return Err(invalid(format!("{tat}.lang: {lang:?} is neither \"promql\" nor \"logql\"")));
            }
        }
    }
    for (i, t) in array(p, "thresholds", &format!("{at}.thresholds"))?.iter().enumerate() {
        if !t.get("value").is_some_and(Value::is_number) {
            return Err(invalid(format!("{at}.thresholds[{i}].value: must be a number")));
        }
        str_field(t, "color", &format!("{at}.thresholds[{i}]"))?;
    }
    Ok(())
}

fn array<'a>(m: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a [Value]> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(invalid(format!("{at}: must be a list"))),
    }
}

fn str_field<'a>(v: &'a Value, key: &str, at: &str) -> Result<Option<&'a str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{at}.{key}: must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store(dir: &Path) -> Store {
        let overview = json!({"title": "Overview", "rows": []});
        Store::open(dir, Options::default(), vec![("overview".into(), overview)]).unwrap()
    }

    fn panel(ty: &str) -> Value {
        json!({"type": ty, "title": "CPU", "unit": "percent", "targets": [{"expr": "up", "legend": "{{job}}"}],
               "thresholds": [{"value": 90, "color": "red"}]})
    }

    #[test]
    fn create_list_get_update_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let body =
            json!({"title": "Web servers", "tags": ["web"], "rows": [{"title": "r", "panels": [panel("stat")]}]});
        let doc = s.create(body.to_string().as_bytes(), 1000).unwrap();
        assert_eq!(
            (doc["uid"].as_str(), doc["version"].as_u64(), doc["updated"].as_i64()),
            (Some("web-servers"), Some(1), Some(1000))
        );
        let again = s.create(body.to_string().as_bytes(), 2000).unwrap();
        assert_eq!(again["uid"], "web-servers-2");
        let list = s.list().unwrap();
        let uids: Vec<_> = list.iter().map(|d| (d.uid.as_str(), d.builtin)).collect();
        assert_eq!(uids, [("overview", true), ("web-servers", false), ("web-servers-2", false)]);
        assert_eq!(list[1].tags, ["web"]);

        let mut edited = s.get("web-servers").unwrap();
        edited["title"] = json!("Web");
        let saved = s.update("web-servers", edited.to_string().as_bytes(), false, 3000).unwrap();
        assert_eq!((saved["version"].as_u64(), saved["title"].as_str()), (Some(2), Some("Web")));
        // The same stale copy again: version 1 against the stored 2.
        let e = s.update("web-servers", edited.to_string().as_bytes(), false, 4000).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("version 2, yours 1"), "{e}");
        let forced = s.update("web-servers", edited.to_string().as_bytes(), true, 4000).unwrap();
        assert_eq!(forced["version"], 3);

        // Reopening reads what was written.
        let s = store(dir.path());
        assert_eq!(s.get("web-servers").unwrap()["title"], "Web");
        s.delete("web-servers").unwrap();
        assert_eq!(s.get("web-servers").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(s.delete("web-servers").unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn builtins_are_read_only_and_uids_unique() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let doc = s.get("overview").unwrap();
        assert_eq!((doc["builtin"].as_bool(), doc["version"].as_u64()), (Some(true), Some(1)));
        let e = s.update("overview", doc.to_string().as_bytes(), true, 1).unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        assert_eq!(s.delete("overview").unwrap_err().kind(), ErrorKind::InvalidInput);
        // A copy gets a fresh uid from its title; "builtin" is never stored.
        let copy = s.create(json!({"title": "Overview", "builtin": true}).to_string().as_bytes(), 1).unwrap();
        assert_eq!((copy["uid"].as_str(), copy.get("builtin")), (Some("overview-2"), None));
        let e = s.create(json!({"title": "x", "uid": "overview-2"}).to_string().as_bytes(), 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn bad_documents_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let cases = [
            ("[]".to_string(), "the document must be a JSON object"),
            ("{".to_string(), "not JSON"),
            (json!({}).to_string(), "title: missing"),
            (json!({"title": "a", "uid": "../etc"}).to_string(), "uid \"../etc\" must be"),
            (json!({"title": "a", "rows": {}}).to_string(), "rows: must be a list"),
            (json!({"title": "a", "rows": [{"panels": [panel("pie")]}]}).to_string(), "rows[0].panels[0].type: unknown panel type \"pie\""),
            (json!({"title": "a", "rows": [{"panels": [{"type": "stat", "targets": [{}]}]}]}).to_string(), "rows[0].panels[0].targets[0].expr: missing"),
            (json!({"title": "a", "rows": [{"panels": [{"type": "stat", "targets": [{"expr": "x", "lang": "sql"}]}]}]}).to_string(), "neither"),
            (json!({"title": "a", "rows": [{"panels": [{"type": "stat", "width": 13}]}]}).to_string(), "width: must be 1 to 12"),
            (json!({"title": "a", "variables": [{"name": "a b", "query": "x"}]}).to_string(), "variables[0].name"),
        ];
        for (body, want) in cases {
            let e = s.create(body.as_bytes(), 1).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{body}");
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
        assert_eq!(s.get("a/b").unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn limits_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), Options { max_size: 100, max_count: 1 }, vec![]).unwrap();
        let big = json!({"title": "x".repeat(150)}).to_string();
        let e = s.create(big.as_bytes(), 1).unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::TooLarge, "dashboard of 162 bytes exceeds dashboards.max_size (100B)".to_string())
        );
        s.create(br#"{"title":"one"}"#, 1).unwrap();
        assert_eq!(s.create(br#"{"title":"two"}"#, 1).unwrap_err().kind(), ErrorKind::LimitExceeded);
    }

    #[test]
    fn leftover_temporary_files_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("half.json.tmp"), b"{\"ti").unwrap();
        let s = store(dir.path());
        assert!(!dir.path().join("half.json.tmp").is_file());
        assert_eq!(s.list().unwrap().len(), 1);
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn panel() -> impl Strategy<Value = Value> {
            (prop::sample::select(PANEL_TYPES), "[ -~]{0,20}", "[a-z_]{1,12}", 1u64..=12).prop_map(|(ty, title, expr, width)| {
                json!({"type": ty, "title": title, "width": width, "targets": [{"expr": expr, "legend": "{{job}}"}]})
            })
        }

        fn doc() -> impl Strategy<Value = Value> {
            (
                "[A-Za-z][ -~]{0,30}",
                prop::collection::vec("[a-z]{1,8}", 0..3),
                prop::collection::vec(prop::collection::vec(panel(), 0..4), 0..3),
            )
                .prop_map(|(title, tags, rows)| {
                    let rows: Vec<Value> = rows.into_iter().map(|p| json!({"title": "r", "panels": p})).collect();
                    json!({"title": title, "tags": tags, "rows": rows, "extra": {"kept": true}})
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// A valid document comes back as it was saved, plus uid, version and time.
            #[test]
            fn saved_documents_round_trip(d in doc()) {
                let dir = tempfile::tempdir().unwrap();
                let s = Store::open(dir.path(), Options::default(), vec![]).unwrap();
                let saved = s.create(d.to_string().as_bytes(), 7).unwrap();
                let mut got = s.get(saved["uid"].as_str().unwrap()).unwrap();
                prop_assert_eq!(&got, &saved);
                for k in ["uid", "version", "updated"] {
                    got.as_object_mut().unwrap().remove(k);
                }
                prop_assert_eq!(got, d);
            }

            /// Any bytes get an answer (a document or a typed error), never a panic.
            #[test]
            fn any_bytes_are_answered(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let dir = tempfile::tempdir().unwrap();
                let s = Store::open(dir.path(), Options::default(), vec![]).unwrap();
                if let Err(e) = s.create(&bytes, 1) {
                    prop_assert!(matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict));
                }
            }
        }
    }
}
