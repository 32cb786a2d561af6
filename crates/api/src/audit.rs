//! The audit log: who did what, as structured events in Telltale's own log store, in the
//! reserved tenant `_audit` that only admins read (LogQL: `{kind="audit"}` with
//! `X-Scope-OrgID: _audit`; SQL the same way; the UI's Audit page shows the newest).
//!
//! Recorded: logins (success, failure, lockout), logouts, user, service account and token
//! changes, config reloads, silence and dashboard changes, admin operations, and every 403.
//! Each event is one JSON line (`action`, `who`, `outcome`, and the action's own fields) in the
//! stream `{kind="audit", action="..."}`. Secrets never go in: callers pass names and ids.
//! Writing is off the request's path; if it fails the action still happens, the failure is
//! logged and `telltale_audit_write_failures_total` counts it.

use serde_json::{json, Map, Value};
use telltale_model::{Labels, LogBatch, LogEntry};

use crate::tenant::{Scoped, AUDIT_TENANT};
use crate::AppState;

/// One event: what happened, by whom, with what outcome, and its details.
pub(crate) struct Event<'a> {
    /// `login`, `login_failed`, `lockout`, `logout`, `user_added`, `token_created`, `forbidden`, ...
    pub(crate) action: &'static str,
    /// The principal (`user:alice`, `token:ab12cd34 (service_account:ci)`), or the user name
    /// a login tried.
    pub(crate) who: &'a str,
    /// Extra fields (names and ids, never secrets).
    pub(crate) details: Value,
}

/// Records `event` in the audit log, without waiting for the write.
pub(crate) fn record(app: &AppState, event: Event<'_>) {
    let mut line = Map::new();
    line.insert("action".into(), json!(event.action));
    line.insert("who".into(), json!(event.who));
    if let Value::Object(d) = event.details {
        line.extend(d);
    }
    let line = Value::Object(line).to_string();
    tracing::debug!(target: "audit", action = event.action, who = event.who, "{line}");
    let app = app.clone();
    let action = event.action;
    tokio::task::spawn_blocking(move || {
        let scoped = Scoped::for_tenant(&app, AUDIT_TENANT);
        let result = scoped.log_store().and_then(|logs| {
            let labels = Labels::from_pairs([("kind", "audit"), ("action", action)])
                .map_err(|e| crate::ApiError::internal(e.to_string()))?;
            let mut batch = LogBatch::new();
            batch.push(labels, [LogEntry::new(app.now_ms().saturating_mul(1_000_000), line)]);
            logs.write_logs(&batch).map(|_| ()).map_err(crate::ApiError::from)
        });
        if let Err(e) = result {
            app.metrics().add_audit_write_failure();
            tracing::warn!(error = %e, action, "cannot write an audit event; the action happened");
        }
    });
}
