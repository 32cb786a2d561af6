//! [`Rules`]: the loaded rule groups, their evaluation loop, reloads that keep alert
//! state, the state file, and the `/api/v1/rules` and `/api/v1/alerts` views.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use telltale_model::Timestamp;
use tokio::sync::watch;

use crate::rules::{AlertState, EvalContext, Group, GroupState, Rule};
use crate::{builtin, rulefile, Alert, Error, Result};

/// `rules:`: how rules are evaluated, and the built-in rule pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesOptions {
    /// Interval of groups that set none. Not a key of `rules:`: the server sets it from
    /// Prometheus's own `global.evaluation_interval`, so a pasted `global:` section applies.
    #[serde(skip)]
    pub evaluation_interval: Duration,
    /// How often a still-firing alert is handed to the notification pipeline again
    /// (Prometheus's `--rules.alert.resend-delay`).
    #[serde(with = "telltale_model::units::duration")]
    pub resend_delay: Duration,
    /// The built-in rules for the host collectors' node_exporter metrics.
    pub builtin: builtin::BuiltinOptions,
    /// The opt-in rules over the RED metrics made from spans (error rate, error and latency
    /// budget burn).
    pub traces: builtin::TracesPackOptions,
}

impl Default for RulesOptions {
    fn default() -> Self {
        Self {
            evaluation_interval: Duration::from_secs(60),
            resend_delay: Duration::from_secs(60),
            builtin: builtin::BuiltinOptions::default(),
            traces: builtin::TracesPackOptions::default(),
        }
    }
}

/// Reads every rule file matched by `patterns` (globs relative to `base`), then adds the
/// built-in pack; returns the groups or every problem found.
pub fn load_groups(patterns: &[String], base: &Path, opts: &RulesOptions) -> Result<Vec<Group>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for path in expand_globs(patterns, base)? {
        match rulefile::load(&path) {
            Ok(f) => {
                for g in &f.groups {
                    groups.push(Group::new(g, &path.display().to_string(), opts.evaluation_interval));
                }
            }
            Err(Error::BadRules { errors: e }) => errors.extend(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(Error::BadRules { errors });
    }
    for g in builtin::groups(&opts.builtin) {
        groups.push(Group::new(&g, builtin::FILE, opts.evaluation_interval));
    }
    for g in builtin::trace_groups(&opts.traces) {
        groups.push(Group::new(&g, builtin::TRACES_FILE, opts.evaluation_interval));
    }
    Ok(groups)
}

/// `rule_files` entries are file paths or globs (`rules/*.yml`), as in Prometheus.
pub fn expand_globs(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() { PathBuf::from(p) } else { base.join(p) };
        let name = full.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.contains(['*', '?', '[']) {
            out.push(full);
            continue;
        }
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        let re = glob_regex(&name);
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
            op: "list rule directory",
            path: dir.clone(),
            source,
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|path| path.file_name().is_some_and(|n| re.is_match(&n.to_string_lossy())))
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn glob_regex(pattern: &str) -> regex::Regex {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' | ']' => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).unwrap_or_else(|_| regex::Regex::new("^$").expect("valid"))
}

type Shared = Arc<Mutex<Group>>;

/// The rule groups in force; cheap to clone.
#[derive(Clone, Default)]
pub struct Rules {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    groups: Mutex<Vec<Shared>>,
    state_path: Mutex<Option<PathBuf>>,
    restored: Mutex<BTreeMap<String, GroupState>>,
    changed: tokio::sync::Notify,
}

fn group_key(g: &Group) -> String {
    format!("{}\u{0}{}", g.file, g.name)
}

impl Rules {
    /// No groups yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps alert state in `path` (read now, written by the loop and at shutdown).
    pub fn persist_to(&self, path: PathBuf) -> Result<()> {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: BTreeMap<String, GroupState> = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Invalid(format!("{}: not a rules state file: {e}", path.display())))?;
                *self.inner.restored.lock() = state;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { op: "read", path, source }),
        }
        *self.inner.state_path.lock() = Some(path);
        Ok(())
    }

    /// Replaces the groups; groups with the same file and name keep their rules' state.
    pub fn set_groups(&self, groups: Vec<Group>) {
        let mut cur = self.inner.groups.lock();
        let mut restored = self.inner.restored.lock();
        let old: BTreeMap<String, Shared> = cur.iter().map(|g| (group_key(&g.lock()), g.clone())).collect();
        let mut next = Vec::with_capacity(groups.len());
        for mut g in groups {
            let key = group_key(&g);
            if let Some(o) = old.get(&key) {
                g.copy_state(&o.lock());
            } else if let Some(s) = restored.remove(&key) {
                g.restore(&s);
            }
            next.push(Arc::new(Mutex::new(g)));
        }
        *cur = next;
        drop(cur);
        self.inner.changed.notify_waiters();
    }

    /// A copy of every group, for the APIs and tests.
    pub fn groups(&self) -> Vec<Group> {
        self.inner.groups.lock().iter().map(|g| g.lock().clone()).collect()
    }

    /// Evaluates every group once at `at`, in order, and returns the alerts to send.
    pub fn eval_all(&self, at: Timestamp, ctx: &EvalContext) -> Vec<Alert> {
        let groups: Vec<Shared> = self.inner.groups.lock().clone();
        groups.iter().flat_map(|g| g.lock().eval(at, ctx)).collect()
    }

    /// Writes the alert state of every group to the state file, if one is set.
    pub fn save_state(&self) -> Result<()> {
        let Some(path) = self.inner.state_path.lock().clone() else { return Ok(()) };
        let mut all: BTreeMap<String, GroupState> = BTreeMap::new();
        for g in self.inner.groups.lock().iter() {
            let g = g.lock();
            let s = g.state();
            if !s.rules.is_empty() {
                all.insert(group_key(&g), s);
            }
        }
        let bytes = serde_json::to_vec(&all).map_err(|e| Error::Invalid(e.to_string()))?;
        crate::write_atomic(&path, &bytes)
    }

    /// Evaluates each group on its own interval (aligned as Prometheus aligns them, so
    /// restarts keep the rhythm) until `stop`, handing alerts to `send`. `now` is the
    /// clock; evaluation runs on the blocking pool, a group at a time per core.
    pub async fn run(
        &self,
        ctx: EvalContext,
        now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
        send: Arc<dyn Fn(Vec<Alert>) + Send + Sync>,
        mut stop: watch::Receiver<bool>,
    ) {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut due: BTreeMap<String, Timestamp> = BTreeMap::new();
        let mut last_save = now();
        loop {
            let groups: Vec<Shared> = self.inner.groups.lock().clone();
            let t = now();
            let mut ready = Vec::new();
            let mut next_wake = t + 1000;
            let mut live = std::collections::HashSet::with_capacity(groups.len());
            for g in &groups {
                let (key, interval) = {
                    let g = g.lock();
                    (group_key(&g), g.interval.as_millis().max(1) as i64)
                };
                let next = *due.entry(key.clone()).or_insert_with(|| aligned_next(&key, interval, t));
                let next = if next <= t {
                    ready.push((g.clone(), next));
                    let n = next + interval * ((t - next) / interval + 1);
                    due.insert(key.clone(), n);
                    n
                } else {
                    next
                };
                next_wake = next_wake.min(next);
                live.insert(key);
            }
            due.retain(|k, _| live.contains(k));
            if !ready.is_empty() {
                let chunks = chunk(ready, workers);
                let mut handles = Vec::new();
                for part in chunks {
                    let ctx = ctx.clone();
                    handles.push(tokio::task::spawn_blocking(move || {
                        let mut out = Vec::new();
                        for (g, at) in part {
                            out.extend(g.lock().eval(at, &ctx));
                        }
                        out
                    }));
                }
                let mut alerts = Vec::new();
                for h in handles {
                    if let Ok(a) = h.await {
                        alerts.extend(a);
                    }
                }
                if !alerts.is_empty() {
                    send(alerts);
                }
                if now() - last_save >= 5000 {
                    last_save = now();
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Err(e) = me.save_state() {
                            tracing::warn!(error = %e, "cannot save rule state");
                        }
                    })
                    .await;
                }
                continue;
            }
            let wait = Duration::from_millis((next_wake - now()).clamp(1, 1000) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.changed.notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        if let Err(e) = self.save_state() {
            tracing::warn!(error = %e, "cannot save rule state");
        }
    }

    /// `/api/v1/rules`'s `data`, with Prometheus's filters: `kind` is `alert` or `record`,
    /// `names`/`groups`/`files` keep only those, `exclude_alerts` leaves alert lists out.
    pub fn rules_json(&self, filter: &RulesFilter) -> Json {
        let mut out = Vec::new();
        for g in self.groups() {
            if !filter.groups.is_empty() && !filter.groups.contains(&g.name) {
                continue;
            }
            if !filter.files.is_empty() && !filter.files.contains(&g.file) {
                continue;
            }
            let rules: Vec<Json> = g
                .rules
                .iter()
                .filter(|r| match filter.kind.as_deref() {
                    Some("alert") => r.is_alerting(),
                    Some("record") => !r.is_alerting(),
                    _ => true,
                })
                .filter(|r| filter.names.is_empty() || filter.names.iter().any(|n| n == r.spec.name()))
                .map(|r| rule_json(r, filter.exclude_alerts))
                .collect();
            if rules.is_empty() && (filter.kind.is_some() || !filter.names.is_empty()) {
                continue;
            }
            out.push(json!({
                "name": g.name,
                "file": g.file,
                "rules": rules,
                "interval": g.interval.as_secs_f64(),
                "limit": g.limit,
                "evaluationTime": g.evaluation_time.as_secs_f64(),
                "lastEvaluation": go_time(g.last_evaluation),
            }));
        }
        json!({ "groups": out })
    }

    /// `/api/v1/alerts`'s `data`: every pending and firing alert.
    pub fn alerts_json(&self) -> Json {
        let mut alerts = Vec::new();
        for g in self.groups() {
            for r in &g.rules {
                alerts.extend(active_alerts_json(r));
            }
        }
        json!({ "alerts": alerts })
    }
}

/// Filters of `/api/v1/rules`.
#[derive(Debug, Clone, Default)]
pub struct RulesFilter {
    /// `type=alert|record`.
    pub kind: Option<String>,
    /// `rule_name[]`.
    pub names: Vec<String>,
    /// `rule_group[]`.
    pub groups: Vec<String>,
    /// `file[]`.
    pub files: Vec<String>,
    /// `exclude_alerts=true`.
    pub exclude_alerts: bool,
}

fn chunk<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let n = n.max(1);
    let mut out: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for (i, it) in items.into_iter().enumerate() {
        out[i % n].push(it);
    }
    out.retain(|c| !c.is_empty());
    out
}

/// The first evaluation time at or after `t` on the group's grid: multiples of
/// `interval` shifted by a per-group offset (Prometheus's `EvalTimestamp`).
fn aligned_next(key: &str, interval: i64, t: Timestamp) -> Timestamp {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let offset = (h % interval as u64) as i64;
    let base = (t - offset).div_euclid(interval) * interval + offset;
    if base < t {
        base + interval
    } else {
        base
    }
}

/// Go's `time.Time` JSON (RFC 3339 with trimmed fraction); the zero time when unset.
pub(crate) fn go_time(ms: Option<Timestamp>) -> String {
    let Some(ms) = ms else { return "0001-01-01T00:00:00Z".into() };
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `1.5e-03`.
pub(crate) fn go_exp(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn canonical(expr: &str) -> String {
    promql_parser::parser::parse(expr).map(|e| e.to_string()).unwrap_or_else(|_| expr.to_string())
}

fn active_alerts_json(r: &Rule) -> Vec<Json> {
    r.active
        .values()
        .filter(|a| a.state != AlertState::Inactive)
        .map(|a| {
            let mut j = json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "state": a.state.as_str(),
                "activeAt": go_time(Some(a.active_at)),
                "value": go_exp(a.value),
            });
            if let Some(k) = a.keep_firing_since {
                j["keepFiringSince"] = json!(go_time(Some(k)));
            }
            j
        })
        .collect()
}

fn rule_json(r: &Rule, exclude_alerts: bool) -> Json {
    let s = &r.status;
    let mut j = if r.is_alerting() {
        let mut j = json!({
            "state": r.state().as_str(),
            "name": r.spec.name(),
            "query": canonical(&r.spec.expr),
            "duration": r.spec.for_.unwrap_or_default().as_secs_f64(),
            "keepFiringFor": r.spec.keep_firing_for.unwrap_or_default().as_secs_f64(),
            "labels": r.spec.labels,
            "annotations": r.spec.annotations,
        });
        if !exclude_alerts {
            j["alerts"] = Json::Array(active_alerts_json(r));
        }
        j
    } else {
        let mut j = json!({ "name": r.spec.name(), "query": canonical(&r.spec.expr) });
        if !r.spec.labels.is_empty() {
            j["labels"] = json!(r.spec.labels);
        }
        j
    };
    j["health"] = json!(s.health.as_str());
    if !s.last_error.is_empty() {
        j["lastError"] = json!(s.last_error);
    }
    j["evaluationTime"] = json!(s.evaluation_time.as_secs_f64());
    j["lastEvaluation"] = json!(go_time(s.last_evaluation));
    j["type"] = json!(if r.is_alerting() { "alerting" } else { "recording" });
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_exp(1.0), "1e+00");
        assert_eq!(go_exp(0.0), "0e+00");
        assert_eq!(go_exp(1234.5), "1.2345e+03");
        assert_eq!(go_exp(0.0015), "1.5e-03");
        assert_eq!(go_time(Some(1_700_000_000_120)), "2023-11-14T22:13:20.12Z");
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn evaluation_times_sit_on_a_grid() {
        let t = aligned_next("g", 15_000, 1_000_000);
        assert!((1_000_000..1_015_000).contains(&t));
        assert_eq!(aligned_next("g", 15_000, t), t);
        assert_eq!(aligned_next("g", 15_000, t + 1), t + 15_000);
    }

    #[test]
    fn globs() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a.yml", "b.yml", "c.txt"] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let got = expand_globs(&["*.yml".into(), "c.txt".into()], dir.path()).unwrap();
        let names: Vec<String> = got.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.yml", "b.yml", "c.txt"]);
    }
}
