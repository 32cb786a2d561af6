//! `/api/v1/receivers`: notification receivers entered through the API or the UI, beside the
//! config file's. A receiver is the Alertmanager `receivers:` entry people already write
//! (`webhook_configs`, `email_configs`, `slack_configs`, ...), sent as JSON or YAML.
//!
//! Stored receivers hold credentials (webhook URLs with tokens, SMTP passwords), so they are
//! kept sealed ([`telltale_auth::SealedStore`]), shown with every secret as `<secret>`, and
//! changed only with the `admin` scope. Sending `<secret>` back keeps the stored value, so the
//! UI can edit a receiver without ever seeing its secrets. Values are taken as given: no
//! `${ENV}` expansion and no `*_file` keys, which would let an API caller read the server's
//! environment or files into a request it controls.
//!
//! The routing tree stays in the config file: a route names a stored receiver as it names any
//! other. Every change is checked against the whole pipeline config before it is stored, so a
//! receiver a route uses cannot be deleted, and a name cannot be taken twice.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use parking_lot::Mutex;
use serde_json::{json, Value};
use telltale_alerting::am::config::AlertmanagerConfig;
use telltale_auth::{Principal, SealedStore};
use telltale_model::ErrorKind;
use telltale_notify::ReceiverConfig;

use crate::body::read_limited;
use crate::read::success;
use crate::tenant::Scoped;
use crate::{ApiError, AppState};

/// How a stored receiver's record is named in the sealed store.
pub const PREFIX: &str = "receiver/";
/// What a secret shows as, and what keeps the stored value when sent back.
const HIDDEN: &str = "<secret>";

/// The config file's pipeline and the stored receivers, joined into the config in force.
pub struct Receivers {
    sealed: SealedStore,
    /// The config file's `alerting:` section and the external URL, as last applied.
    file: Mutex<(AlertmanagerConfig, String)>,
}

impl Receivers {
    /// Receivers stored in `sealed`.
    pub fn new(sealed: SealedStore) -> Arc<Self> {
        Arc::new(Receivers { sealed, file: Mutex::new((AlertmanagerConfig::default(), String::new())) })
    }

    /// The stored receivers, as entered (secrets in the clear).
    fn stored(&self) -> Result<Vec<(String, Value)>, String> {
        let opened = self.sealed.list(PREFIX).map_err(|e| e.to_string())?;
        opened
            .into_iter()
            .map(|(name, bytes)| {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("stored {name} is damaged: {e}"))?;
                Ok((name[PREFIX.len()..].to_string(), v))
            })
            .collect()
    }

    /// The file's config with `stored` receivers added.
    fn joined(file: &AlertmanagerConfig, stored: &[(String, Value)]) -> Result<AlertmanagerConfig, String> {
        let mut c = file.clone();
        for (name, v) in stored {
            if file.receivers.iter().any(|r| &r.name == name) {
                return Err(format!(
                    "receiver {name:?} is both in the config file and stored through the API: delete one of them \
                     (DELETE /api/v1/receivers/{name})"
                ));
            }
            c.receivers.push(parse(v).map_err(|e| format!("stored receiver {name:?}: {e}"))?);
        }
        Ok(c)
    }
}

/// Puts `c` in force.
fn apply(app: &AppState, c: &AlertmanagerConfig, url: &str) -> Result<(), String> {
    // `/api/v2/status` shows the config as YAML, secrets as `<secret>`.
    let original = serde_yaml_ng::to_string(c).unwrap_or_default();
    app.alertmanager().configure(c, original, url.to_string()).map_err(|e| e.to_string())
}

/// A receiver from its JSON, refusing what an API caller must not use.
fn parse(v: &Value) -> Result<ReceiverConfig, String> {
    refuse_indirection(v, "")?;
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

fn refuse_indirection(v: &Value, path: &str) -> Result<(), String> {
    match v {
        Value::Object(m) => m.iter().try_for_each(|(k, v)| {
            let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            if k.ends_with("_file") && !v.as_str().is_some_and(str::is_empty) {
                return Err(format!(
                    "{at}: a receiver entered through the API carries its values itself; *_file keys (which read \
                     the server's files) are for the config file"
                ));
            }
            refuse_indirection(v, &at)
        }),
        Value::Array(a) => a.iter().enumerate().try_for_each(|(i, v)| refuse_indirection(v, &format!("{path}[{i}]"))),
        Value::String(s) if s.contains("${") => Err(format!(
            "{path}: a receiver entered through the API is taken as given; ${{...}} (the server's environment) is for \
             the config file"
        )),
        _ => Ok(()),
    }
}

/// `new` with every `<secret>` replaced by the value at the same place in `old`.
fn keep_hidden(new: &mut Value, old: Option<&Value>, path: &str) -> Result<(), String> {
    match new {
        Value::String(s) if s == HIDDEN => match old {
            Some(Value::String(o)) => {
                *s = o.clone();
                Ok(())
            }
            _ => Err(format!("{path}: {HIDDEN} stands for a stored value, and there is none here: give the value")),
        },
        Value::Object(m) => m.iter_mut().try_for_each(|(k, v)| {
            let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            keep_hidden(v, old.and_then(|o| o.get(k)), &at)
        }),
        Value::Array(a) => a
            .iter_mut()
            .enumerate()
            .try_for_each(|(i, v)| keep_hidden(v, old.and_then(|o| o.get(i)), &format!("{path}[{i}]"))),
        _ => Ok(()),
    }
}

impl AppState {
    /// Applies the config file's `alerting:` section, joined with the stored receivers.
    pub fn configure_alerting(&self, file: &AlertmanagerConfig, external_url: &str) -> Result<(), String> {
        match self.receivers() {
            None => apply(self, file, external_url),
            Some(r) => {
                let mut last = r.file.lock();
                let joined = Receivers::joined(file, &r.stored()?)?;
                apply(self, &joined, external_url)?;
                *last = (file.clone(), external_url.to_string());
                Ok(())
            }
        }
    }
}

fn stored_receivers(app: &Scoped) -> Result<Arc<Receivers>, ApiError> {
    if !app.is_default() {
        return Err(ApiError::bad_input(format!(
            "alerting runs in the default tenant only, not in {:?}",
            app.tenant()
        )));
    }
    app.receivers().ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "stored receivers are not available"))
}

/// A receiver as shown: secrets as `<secret>`, and the kinds of its integrations.
fn shown(r: &ReceiverConfig, source: &str) -> Value {
    let mut kinds: Vec<&str> =
        telltale_notify::integrations(r, &Default::default()).iter().map(|(_, i)| i.kind()).collect();
    kinds.dedup();
    json!({"name": r.name, "source": source, "integrations": kinds, "config": r})
}

/// Runs `f` on the blocking pool (the sealed store reads and writes files).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("receivers task failed: {e}")))?
}

/// `GET /api/v1/receivers`: every receiver, from the config file and stored, secrets hidden.
pub(crate) async fn list(app: Scoped) -> Result<Response, ApiError> {
    let r = stored_receivers(&app)?;
    let out = blocking(move || {
        let (file, _) = r.file.lock().clone();
        let mut out: Vec<Value> = file.receivers.iter().map(|c| shown(c, "config")).collect();
        for (name, v) in r.stored().map_err(ApiError::internal)? {
            let c = parse(&v).map_err(|e| ApiError::internal(format!("stored receiver {name:?}: {e}")))?;
            out.push(shown(&c, "api"));
        }
        Ok(out)
    })
    .await?;
    Ok(success(out))
}

/// `PUT /api/v1/receivers/{name}`: creates or replaces a stored receiver.
pub(crate) async fn put(
    app: Scoped,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let r = stored_receivers(&app)?;
    let bytes = read_limited(&headers, b, app.limits().max_body_size).await?;
    let mut v: Value = serde_yaml_ng::from_slice(&bytes)
        .map_err(|e| ApiError::bad_input(format!("the body is not a receiver in JSON or YAML: {e}")))?;
    let Some(m) = v.as_object_mut() else {
        return Err(ApiError::bad_input("the body must be one receiver: {\"webhook_configs\": [...], ...}"));
    };
    match m.get("name") {
        None => {
            m.insert("name".into(), json!(name));
        }
        Some(n) if n.as_str() == Some(name.as_str()) => {}
        Some(n) => return Err(ApiError::bad_input(format!("the body names receiver {n}, the path {name:?}"))),
    }
    telltale_auth::check_name("receiver", &name).map_err(|e| ApiError::bad_input(e.to_string()))?;
    let state = AppState::clone(&app);
    let now = app.now_ms();
    let audited = name.clone();
    let created = blocking(move || {
        let mut last = r.file.lock();
        if last.0.receivers.iter().any(|c| c.name == name) {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("receiver {name:?} is defined in the config file: change it there, or store this one under another name"),
            ));
        }
        let mut stored = r.stored().map_err(ApiError::internal)?;
        let old = stored.iter().position(|(n, _)| *n == name);
        keep_hidden(&mut v, old.map(|i| &stored[i].1), "").map_err(ApiError::bad_input)?;
        parse(&v).map_err(ApiError::bad_input)?;
        match old {
            Some(i) => stored[i].1 = v.clone(),
            None => stored.push((name.clone(), v.clone())),
        }
        let (file, url) = &*last;
        let joined = Receivers::joined(file, &stored).map_err(|e| ApiError::new(ErrorKind::Conflict, e))?;
        telltale_alerting::am::Alertmanager::check(&joined).map_err(ApiError::bad_input)?;
        r.sealed
            .put(&format!("{PREFIX}{name}"), v.to_string().as_bytes(), now)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        apply(&state, &joined, url).map_err(ApiError::internal)?;
        let url = url.clone();
        *last = (file.clone(), url);
        Ok(old.is_none())
    })
    .await?;
    app.audit("receiver_saved", &p.describe(), json!({"receiver": audited, "new": created}));
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, success(json!({"new": created}))).into_response())
}

/// `DELETE /api/v1/receivers/{name}`: removes a stored receiver no route uses.
pub(crate) async fn delete(
    app: Scoped,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let r = stored_receivers(&app)?;
    let state = AppState::clone(&app);
    let audited = name.clone();
    blocking(move || {
        let last = r.file.lock();
        let mut stored = r.stored().map_err(ApiError::internal)?;
        let Some(i) = stored.iter().position(|(n, _)| *n == name) else {
            let hint = if last.0.receivers.iter().any(|c| c.name == name) { " (it is in the config file)" } else { "" };
            return Err(ApiError::new(ErrorKind::NotFound, format!("no stored receiver {name:?}{hint}")));
        };
        stored.remove(i);
        let (file, url) = &*last;
        let joined = Receivers::joined(file, &stored).map_err(ApiError::internal)?;
        telltale_alerting::am::Alertmanager::check(&joined).map_err(|e| ApiError::new(ErrorKind::Conflict, e))?;
        r.sealed.delete(&format!("{PREFIX}{name}")).map_err(|e| ApiError::internal(e.to_string()))?;
        apply(&state, &joined, url).map_err(ApiError::internal)
    })
    .await?;
    app.audit("receiver_deleted", &p.describe(), json!({"receiver": audited}));
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_values_are_kept_from_the_stored_receiver_at_the_same_place() {
        let old = json!({"webhook_configs": [{"url": "https://h/T0?token=x", "http_config": {"authorization": {"credentials": "c"}}}]});
        let mut new = json!({"webhook_configs": [{"url": HIDDEN, "max_alerts": 3, "http_config": {"authorization": {"credentials": HIDDEN}}}]});
        keep_hidden(&mut new, Some(&old), "").unwrap();
        assert_eq!(new["webhook_configs"][0]["url"], "https://h/T0?token=x");
        assert_eq!(new["webhook_configs"][0]["http_config"]["authorization"]["credentials"], "c");
        let mut extra = json!({"webhook_configs": [{"url": HIDDEN}, {"url": HIDDEN}]});
        let e = keep_hidden(&mut extra, Some(&old), "").unwrap_err();
        assert!(e.starts_with("webhook_configs[1].url: "), "{e}");
        assert!(keep_hidden(&mut json!({"webhook_configs": [{"url": HIDDEN}]}), None, "").is_err());
    }

    #[test]
    fn files_and_environment_references_are_refused_with_their_key() {
        let e = parse(&json!({"name": "a", "email_configs": [{"to": "x@y", "auth_password_file": "/etc/shadow"}]}))
            .unwrap_err();
        assert!(e.starts_with("email_configs[0].auth_password_file: "), "{e}");
        let e = parse(&json!({"name": "a", "slack_configs": [{"api_url": "${AWS_SECRET_ACCESS_KEY}"}]})).unwrap_err();
        assert!(e.starts_with("slack_configs[0].api_url: ") && e.contains("${...}"), "{e}");
        // An empty *_file (as a UI round trip may send) is no reference.
        parse(&json!({"name": "a", "webhook_configs": [{"url": "http://h/", "url_file": ""}]})).unwrap();
        let e = parse(&json!({"name": "a", "webhook_configs": [{"uri": "http://h/"}]})).unwrap_err();
        assert!(e.contains("uri"), "{e}");
    }

    proptest::proptest! {
        /// Whatever JSON arrives, parsing answers (an error or a receiver) and never panics.
        #[test]
        fn any_json_gets_an_answer(v in json_values()) {
            let _ = parse(&v);
            let _ = keep_hidden(&mut v.clone(), Some(&v), "");
        }
    }

    fn json_values() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop_oneof![Just(HIDDEN.to_string()), Just("${X}".to_string()), "[a-z:/]{0,12}"].prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("name".to_string()),
            Just("webhook_configs".to_string()),
            Just("url".to_string()),
            Just("url_file".to_string()),
            Just("email_configs".to_string()),
            Just("http_config".to_string()),
            "[a-z_]{1,8}",
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys.clone(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
