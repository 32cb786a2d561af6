//! The `logs:` section: intake limits and rates, LogQL limits, syslog listeners and tailed
//! files, and the conversion to what the api crate enforces.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use telltale_model::units;

/// `logs:`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
        self.syslog.validate()
    }
}
