//! `/api/v1/status/buildinfo`, `/api/v1/status/runtimeinfo` and `/api/v1/metadata`, in
//! Prometheus's shapes, so Grafana's Prometheus data source can detect and browse Telltale.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use telltale_model::{MatchOp, Matcher, TimeRange};

use crate::params::Params;
use crate::read::success;
use crate::tenant::Scoped;
use crate::{ApiError, AppState};

/// The Prometheus API version Telltale answers like. Grafana reads `version` from buildinfo
/// to decide which query features to offer, so it gets the Prometheus release whose
/// semantics Telltale follows; Telltale's own version is in `telltaleVersion`.
const PROMETHEUS_COMPAT_VERSION: &str = "3.0.0";

/// `GET /api/v1/status/buildinfo`
pub(crate) async fn buildinfo() -> Response {
    success(build_info(PROMETHEUS_COMPAT_VERSION))
}

/// The build-info object Prometheus and Tempo share: `version` is the release of the
/// product Telltale answers like (clients pick features by it), Telltale's own beside it.
pub(crate) fn build_info(compat_version: &str) -> serde_json::Value {
    json!({
        "version": compat_version,
        "telltaleVersion": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("TELLTALE_GIT_REVISION").unwrap_or(""),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    })
}

/// `GET /api/v1/status/runtimeinfo`. Prometheus's Go-runtime fields (goroutines, GOGC) have
/// no meaning here and are left out; `GOMAXPROCS` is the number of CPUs Telltale may use.
pub(crate) async fn runtimeinfo(State(app): State<AppState>) -> Response {
    let r = app.runtime();
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    success(json!({
        "startTime": rfc3339(r.start_time_ms),
        "CWD": cwd,
        "reloadConfigSuccess": r.reload_config_success,
        "lastConfigTime": rfc3339(r.last_config_time_ms),
        "GOMAXPROCS": threads,
        "storageRetention": r.storage_retention,
    }))
}

/// `GET /api/v1/status/config`: the configuration in force as YAML, secrets shown as
/// `<secret>` (the binary redacts before it hands the text over), as Prometheus's.
pub(crate) async fn config(State(app): State<AppState>) -> Response {
    success(json!({ "yaml": app.config_yaml() }))
}

/// `GET /api/v1/status/tsdb?limit=N`: cardinality statistics in Prometheus's shape (top
/// `limit`, default 10, of series per metric name, values per label name, series per label
/// pair), plus `telltale`: the store's own numbers (series, samples, bytes on disk) and the
/// retention, which the web UI's Status page shows.
pub(crate) async fn tsdb(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let limit = match p.limit()? {
        0 => 10,
        n => n,
    };
    let retention = app.runtime().storage_retention;
    let (series, stats) = app
        .blocking(|s| {
            let all = Matcher::new(MatchOp::Regex, "__name__", ".+").map_err(|e| ApiError::internal(e.to_string()))?;
            Ok((s.series(TimeRange::ALL, &[all])?, s.stats()))
        })
        .await?;
    let stats: Vec<_> = stats.iter().map(|s| json!({"name": s.name, "help": s.help, "value": s.value})).collect();
    let mut out = cardinality(&series, limit);
    out["telltale"] = json!({ "retention": retention, "stats": stats });
    Ok(success(out))
}

/// Prometheus's cardinality statistics over `series`: the top `limit` of series per metric
/// name, values per label name, bytes of values per label name, series per label pair.
fn cardinality(series: &[telltale_model::Labels], limit: usize) -> serde_json::Value {
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    let mut values_by_label: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut bytes_by_label: HashMap<&str, u64> = HashMap::new();
    let mut by_pair: HashMap<(&str, &str), u64> = HashMap::new();
    for labels in series {
        for (k, v) in labels.iter() {
            if k == "__name__" {
                *by_name.entry(v).or_default() += 1;
            }
            if values_by_label.entry(k).or_default().insert(v) {
                *bytes_by_label.entry(k).or_default() += v.len() as u64;
            }
            *by_pair.entry((k, v)).or_default() += 1;
        }
    }
    let pairs: usize = values_by_label.values().map(HashSet::len).sum();
    let top = |mut m: Vec<(String, u64)>| {
        m.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        m.truncate(limit);
        m.into_iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>()
    };
    json!({
        "headStats": { "numSeries": series.len(), "numLabelPairs": pairs },
        "seriesCountByMetricName": top(by_name.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
        "labelValueCountByLabelName":
            top(values_by_label.iter().map(|(k, v)| (k.to_string(), v.len() as u64)).collect()),
        "memoryInBytesByLabelName": top(bytes_by_label.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
        "seriesCountByLabelValuePair": top(by_pair.iter().map(|((k, v), n)| (format!("{k}={v}"), *n)).collect()),
    })
}

/// `GET /api/v1/metadata?metric=&limit=&limit_per_metric=`
pub(crate) async fn metadata(State(app): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let limit = p.limit()?;
    let per_metric = match p.get("limit_per_metric") {
        None => 0,
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad_input(format!("invalid parameter \"limit_per_metric\": {s:?} is not a non-negative integer"))
        })?,
    };
    let metric = p.get("metric").filter(|m| !m.is_empty());
    Ok(success(app.metadata().query(metric, limit, per_metric)))
}

/// Milliseconds since the epoch as RFC 3339 with milliseconds, in UTC.
fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = telltale_model::civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// `GET /api/v1/targets?state=&scrapePool=`: the scrape manager's targets, in Prometheus's shape.
pub(crate) async fn targets(State(app): State<AppState>, p: Params) -> Response {
    let (state, pool) = (p.get("state"), p.get("scrapePool"));
    let t = app.targets().unwrap_or_default();
    success(t.to_json(state, pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinality_counts_series_values_and_pairs() {
        let l = |pairs: &[(&str, &str)]| telltale_model::Labels::from_pairs(pairs.iter().copied()).unwrap();
        let series = [
            l(&[("__name__", "up"), ("job", "a")]),
            l(&[("__name__", "up"), ("job", "b")]),
            l(&[("__name__", "load"), ("job", "a")]),
        ];
        let c = cardinality(&series, 1);
        assert_eq!(c["headStats"], json!({"numSeries": 3, "numLabelPairs": 4}));
        assert_eq!(c["seriesCountByMetricName"], json!([{"name": "up", "value": 2}]));
        assert_eq!(c["labelValueCountByLabelName"], json!([{"name": "__name__", "value": 2}]));
        assert_eq!(c["seriesCountByLabelValuePair"], json!([{"name": "__name__=up", "value": 2}]));
        assert_eq!(c["memoryInBytesByLabelName"], json!([{"name": "__name__", "value": 6}]));
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
