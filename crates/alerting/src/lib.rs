//! Alerting for Telltale: Prometheus rule groups (alerting and recording rules, the alert
//! state machine, `ALERTS`/`ALERTS_FOR_STATE`) and an Alertmanager-compatible pipeline
//! (routing tree, grouping with group_wait/group_interval/repeat_interval, silences,
//! inhibition, time intervals, the notification log), handing notifications to
//! `telltale_notify`.
//!
//! Inputs: rule files and an Alertmanager config; a query closure
//! ([`rules::QueryFn`], `Fn(&str, Timestamp) -> Result<Vector>`, as Prometheus's
//! `rules.QueryFunc`) and a write closure; alerts posted from outside. Outputs: series
//! written back, notifications sent, and the state the HTTP APIs show.
//!
//! The one design decision to know: every state transition is a function of a time passed
//! in as a value ([`rules::Group::eval`], the dispatcher's `tick(now)`), so tests drive
//! hours of alerting in microseconds; only the thin loops in [`Rules`] and the dispatcher
//! read a clock. The query seam is a closure, not PromQL types, so log-based rules can plug
//! in later through a group's `type`.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use telltale_model::{ErrorKind, Timestamp};

pub mod am;
pub mod builtin;
pub mod manager;
pub mod rulefile;
pub mod rules;

pub use manager::{Rules, RulesOptions};

/// A label set, sorted by name (alerts' labels and annotations).
pub type LabelSet = BTreeMap<String, String>;

/// An alert as the notification pipeline receives it, from a rule or from an outside
/// Prometheus (Alertmanager's `postableAlert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identifying labels (`alertname`, ...).
    pub labels: LabelSet,
    /// Descriptive annotations.
    pub annotations: LabelSet,
    /// When it started firing (ms).
    pub starts_at: Timestamp,
    /// When it ends or ended (ms); `None` means "until told otherwise".
    pub ends_at: Option<Timestamp>,
    /// A link back to what produced it.
    pub generator_url: String,
    /// The value of the series at the last evaluation, when a rule of ours sent it.
    pub value: Option<f64>,
}

/// The path of Telltale's explore page showing `expr` as a graph (relative to the
/// external URL), used for alerts' generator links.
pub fn explore_link(expr: &str) -> String {
    let mut q = String::new();
    for b in expr.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => q.push(b as char),
            b => q.push_str(&format!("%{b:02X}")),
        }
    }
    format!("/explore?query={q}&tab=graph")
}

/// Errors of the alerting crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule file or the Alertmanager config is invalid; each entry names the place.
    #[error("{}", .errors.join("; "))]
    BadRules {
        /// Every problem found.
        errors: Vec<String>,
    },
    /// Input that does not make sense (a bad silence, a bad alert).
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for does not exist (a silence id).
    #[error("{0}")]
    NotFound(String),
    /// Reading or writing a file failed.
    #[error("cannot {op} {}: {source}", .path.display())]
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
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadRules { .. } | Error::Invalid(_) => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the dir.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |op, source| Error::Io { op, path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create directory for", e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io("rename into", e))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
