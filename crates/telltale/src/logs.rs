//! The `logs:` section: intake limits and rates, LogQL limits, syslog listeners and tailed
//! files, and the conversion to what the api crate enforces.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use telltale_filetail::{Budget, FileLines, Tailer};
use telltale_model::{units, Labels, LogBatch, LogEntry, Nanos};

/// `logs:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogsConfig {
    /// Per-request limits of every log write path (line size, labels, entries). Reloadable.
    pub(crate) limits: telltale_ingest::LogLimits,
    /// Per-tenant and per-stream ingestion rates and stream counts (429 when passed). Reloadable.
    pub(crate) rates: telltale_api::LogRates,
    /// LogQL limits. Reloadable.
    pub(crate) query: LogQueryConfig,
    /// Syslog listeners (RFC 5424/3164 over UDP and TCP). Changes need a restart.
    pub(crate) syslog: crate::syslog::SyslogConfig,
    /// SQL (`POST /api/v1/sql`) limits. Changes need a restart.
    pub(crate) sql: SqlConfig,
    /// Files to follow: globs, each with the stream labels its lines get (plus `filename`).
    /// Offsets are kept in `DATA_DIR/logs/file-positions-<n>.json`. Changes need a restart.
    pub(crate) files: Vec<FileSource>,
    /// How often followed files are checked for new lines.
    #[serde(with = "units::duration")]
    pub(crate) files_poll_interval: Duration,
}

/// One entry of `logs.files`: a glob, or `{path: GLOB, labels: {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum FileSource {
    /// Just the glob; lines get `job="files"`.
    Glob(String),
    /// A glob with labels.
    WithLabels {
        /// The glob, e.g. `/var/log/*.log`.
        path: String,
        /// Stream labels for its lines (`filename` is added).
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
    },
}

impl FileSource {
    pub(crate) fn glob(&self) -> &str {
        match self {
            FileSource::Glob(g) | FileSource::WithLabels { path: g, .. } => g,
        }
    }

    pub(crate) fn labels(&self) -> Vec<(String, String)> {
        match self {
            FileSource::Glob(_) => vec![("job".into(), "files".into())],
            FileSource::WithLabels { labels, .. } => labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// `logs.sql:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SqlConfig {
    /// Most rows one answer holds; the rest is cut and the answer says `"truncated": true`.
    pub(crate) max_rows: usize,
    /// Memory one query may hold (sorts, aggregations, joins).
    #[serde(with = "units::size")]
    pub(crate) memory_limit: u64,
    /// Longest a query may run.
    #[serde(with = "units::duration")]
    pub(crate) timeout: Duration,
}

impl Default for SqlConfig {
    fn default() -> Self {
        let d = telltale_sql::SqlOptions::default();
        Self { max_rows: d.max_rows, memory_limit: d.memory_limit as u64, timeout: d.timeout }
    }
}

impl SqlConfig {
    pub(crate) fn options(&self) -> telltale_sql::SqlOptions {
        telltale_sql::SqlOptions {
            max_rows: self.max_rows,
            memory_limit: usize::try_from(self.memory_limit).unwrap_or(usize::MAX),
            timeout: self.timeout,
        }
    }
}

/// `telltale_api::SqlService` over DataFusion, blocking on the server's runtime.
pub(crate) struct Sql {
    pub(crate) engine: telltale_sql::SqlEngine,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl telltale_api::SqlService for Sql {
    fn query(&self, sql: &str) -> Result<telltale_api::SqlResult, (telltale_model::ErrorKind, String)> {
        match self.runtime.block_on(self.engine.query(sql)) {
            Ok(o) => Ok(telltale_api::SqlResult { columns: o.columns, rows: o.rows, truncated: o.truncated }),
            Err(e) => Err((e.kind(), e.to_string())),
        }
    }
}

/// `logs.query:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogQueryConfig {
    /// Most lines one log query may ask for (`limit=`); Loki's `max_entries_limit_per_query`.
    pub(crate) max_entries_limit: usize,
    /// Most series a metric query may return; Loki's `max_query_series`.
    pub(crate) max_series: usize,
    /// Longest a LogQL query may run (`"0s"`: no limit).
    #[serde(with = "units::duration")]
    pub(crate) timeout: Duration,
}

impl Default for LogQueryConfig {
    fn default() -> Self {
        let e = telltale_logql::EngineOptions::default();
        Self { max_entries_limit: e.max_entries_limit, max_series: e.max_series, timeout: e.timeout }
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            limits: Default::default(),
            rates: Default::default(),
            query: Default::default(),
            syslog: Default::default(),
            sql: Default::default(),
            files: Vec::new(),
            files_poll_interval: Duration::from_secs(1),
        }
    }
}

impl LogsConfig {
    /// LogQL's engine options from these settings.
    pub(crate) fn engine_options(&self) -> telltale_logql::EngineOptions {
        telltale_logql::EngineOptions {
            max_entries_limit: self.query.max_entries_limit,
            max_series: self.query.max_series,
            timeout: self.query.timeout,
            ..Default::default()
        }
    }

    /// Checks values that cannot work; the error names the key.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        if self.query.max_entries_limit == 0 {
            return Err(("logs.query.max_entries_limit".into(), "must be greater than zero".into()));
        }
        for (i, f) in self.files.iter().enumerate() {
            glob::Pattern::new(f.glob())
                .map_err(|e| (format!("logs.files[{i}]"), format!("invalid glob {:?}: {e}", f.glob())))?;
            if let Some((name, _)) = f.labels().into_iter().find(|(n, _)| !telltale_ingest::loglimits::is_label_name(n))
            {
                return Err((format!("logs.files[{i}].labels.{name}"), "not a valid label name".into()));
            }
        }
        if self.files_poll_interval.is_zero() {
            return Err(("logs.files_poll_interval".into(), "must be greater than zero".into()));
        }
        self.syslog.validate()
    }
}

/// A followed `logs.files` entry and its configured labels.
pub(crate) type TailedFiles = (Tailer, Vec<(String, String)>);

impl LogsConfig {
    /// A tailer per `logs.files` entry, with the entry's labels; offsets are checkpointed in
    /// `dir` (`file-positions-<i>.json`, created if missing), for `serve` and `agent` alike.
    pub(crate) fn open_tailers(&self, dir: &std::path::Path) -> anyhow::Result<Vec<TailedFiles>> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let max_line = usize::try_from(self.limits.max_line_size).unwrap_or(usize::MAX).max(1);
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let cp = dir.join(format!("file-positions-{i}.json"));
                Ok((Tailer::open(&[f.glob().to_string()], &cp, max_line)?, f.labels()))
            })
            .collect()
    }
}

/// The most one poll of a `logs.files` entry reads, and so the most one write (`serve`) or
/// push (`agent`) carries: 1 MiB of lines (Promtail's default `batchsize`) or 65,536 lines.
pub(crate) const FILE_READ_BUDGET: Budget = Budget { bytes: 1 << 20, lines: 65_536 };

/// One `logs.files` entry followed by `serve`.
struct Followed {
    tailer: Tailer,
    labels: Vec<(String, String)>,
    /// Lines read whose write failed: written again before anything new is read (the tailer
    /// does not return them twice).
    pending: Option<LogBatch>,
}

/// Follows `logs.files` from `serve`: every `files_poll_interval`, new lines are written
/// through the log limits, then the offsets are checkpointed; a backlog is read a
/// [`FILE_READ_BUDGET`] at a time without waiting.
pub(crate) fn start_files(
    cfg: &LogsConfig,
    data_dir: &std::path::Path,
    state: telltale_api::AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if cfg.files.is_empty() {
        return Ok(None);
    }
    let followed: Vec<Followed> = cfg
        .open_tailers(&data_dir.join("logs"))?
        .into_iter()
        .map(|(tailer, labels)| Followed { tailer, labels, pending: None })
        .collect();
    let every = cfg.files_poll_interval;
    let mut state_of = Some((followed, LineClock::default()));
    Ok(Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let (st, (mut fs, mut clock)) = (state.clone(), state_of.take().unwrap_or_default());
            let back = tokio::task::spawn_blocking(move || {
                for f in &mut fs {
                    tail_once(&st, f, &mut clock);
                }
                (fs, clock)
            })
            .await;
            match back {
                Ok(b) => state_of = Some(b),
                Err(e) => {
                    tracing::error!(error = %e, "file tailing task failed; tailing stops");
                    return;
                }
            }
        }
    })))
}

/// Writes what `f` has to write: its pending lines, else new ones, until nothing is left or
/// a write fails (kept as pending for the next tick).
fn tail_once(state: &telltale_api::AppState, f: &mut Followed, clock: &mut LineClock) {
    loop {
        let (batch, more) = match f.pending.take() {
            Some(b) => (b, true),
            None => {
                let poll = f.tailer.poll_at_most(FILE_READ_BUDGET);
                for p in &poll.problems {
                    tracing::warn!(problem = %p, "file tailing");
                }
                if poll.files.is_empty() {
                    return;
                }
                let now = state.now_ms().saturating_mul(1_000_000);
                (file_batch(poll.files, &f.labels, now, clock), poll.more)
            }
        };
        match state.write_logs("file", &batch) {
            Ok(_) => {
                if let Err(e) = f.tailer.commit() {
                    tracing::warn!(error = %e, "cannot checkpoint tailed files");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, lines = batch.entry_count(), "tailed lines not stored; retrying");
                f.pending = Some(batch);
                return;
            }
        }
        if !more {
            return;
        }
    }
}

/// Read-time timestamps, strictly increasing across polls: lines keep their order, and two
/// equal lines never share a timestamp (the store drops an exact duplicate, which a retried
/// push relies on).
#[derive(Debug, Default)]
pub(crate) struct LineClock {
    last: Nanos,
}

impl LineClock {
    fn next(&mut self, now: Nanos) -> Nanos {
        self.last = now.max(self.last.saturating_add(1));
        self.last
    }
}

/// A poll's lines as one batch: a stream per file (`labels` plus `filename`), stamped with
/// the read time `now`, a nanosecond apart.
pub(crate) fn file_batch(
    files: Vec<FileLines>,
    labels: &[(String, String)],
    now: Nanos,
    clock: &mut LineClock,
) -> LogBatch {
    let mut batch = LogBatch::new();
    for f in files {
        let name = f.path.display().to_string();
        let mut pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if !pairs.iter().any(|(k, _)| *k == "filename") {
            pairs.push(("filename", &name));
        }
        let stream = match Labels::from_pairs(pairs) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, file = %name, lines = f.lines.len(), "invalid stream labels; lines dropped");
                continue;
            }
        };
        batch.push(stream, f.lines.into_iter().map(|l| LogEntry::new(clock.next(now), l)));
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stamped_in_order_across_polls() {
        let files = vec![
            FileLines { path: "/l/a.log".into(), lines: vec!["x".into(), "x".into()] },
            FileLines { path: "/l/b.log".into(), lines: vec!["y".into()] },
        ];
        let labels = [("job".to_string(), "app".to_string()), ("env".to_string(), "prod".to_string())];
        let mut clock = LineClock::default();
        let rows = |b: &LogBatch| -> Vec<(String, Nanos, String)> {
            b.iter().flat_map(|(l, es)| es.iter().map(|e| (l.to_string(), e.ts, e.line.to_string()))).collect()
        };
        let first = rows(&file_batch(files.clone(), &labels, 1_000, &mut clock));
        assert_eq!(first[0].0, r#"{env="prod", filename="/l/a.log", job="app"}"#);
        assert_eq!(first[2].0, r#"{env="prod", filename="/l/b.log", job="app"}"#);
        let second = rows(&file_batch(files, &labels, 1_000, &mut clock));
        let ts: Vec<Nanos> = first.iter().chain(&second).map(|r| r.1).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    }
}
