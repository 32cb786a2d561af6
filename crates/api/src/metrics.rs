//! The server's own metrics: a tiny registry of labelled counters and histograms, rendered
//! in the Prometheus exposition format for `/metrics` and turned into a [`WriteBatch`] so
//! they are also stored in Telltale's own TSDB.
//!
//! Request-rate numbers only (a lock per update is cheap next to an HTTP request); nothing
//! here is touched per sample.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use telltale_model::{LabelsBuilder, MetricType, Sample, Timestamp, WriteBatch};
use telltale_storage::Stat;

/// Upper bounds of the request-duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Label pairs of one point.
pub type PointLabels = Vec<(&'static str, String)>;

/// One labelled sample of a family: label pairs and a value.
type Point = (PointLabels, f64);

/// A family ready to render: name, help, type and its points (histograms already expanded).
#[derive(Debug, Clone)]
pub struct Family {
    /// Metric family name.
    pub name: String,
    /// Help text.
    pub help: String,
    /// Counter, gauge or histogram.
    pub kind: MetricType,
    /// Each point's sample name suffix (`_bucket`, `_sum`, `_count` or empty), labels and value.
    pub points: Vec<(&'static str, PointLabels, f64)>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; DURATION_BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Telltale's own counters, shared by every handler.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (handler, code) → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// handler → duration histogram.
    durations: Mutex<BTreeMap<String, Histogram>>,
    /// protocol → samples stored.
    ingested: Mutex<BTreeMap<&'static str, u64>>,
    /// reason → samples refused.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// protocol → (log lines, line bytes) stored.
    log_lines: Mutex<BTreeMap<&'static str, (u64, u64)>>,
    /// reason → log lines refused or shortened (`truncated`, `duplicate`, `rate_limited`, ...).
    log_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// protocol → (spans stored, spans refused).
    spans: Mutex<BTreeMap<&'static str, (u64, u64)>>,
    /// Audit events that could not be written.
    audit_write_failures: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave a counter map inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Counts one finished request.
    pub fn observe_request(&self, handler: &str, code: u16, took: Duration) {
        *lock(&self.requests).entry((handler.to_string(), code)).or_default() += 1;
        let mut durations = lock(&self.durations);
        let h = durations.entry(handler.to_string()).or_default();
        let secs = took.as_secs_f64();
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Counts samples stored through `protocol` (`prometheus_remote_write`, `influx`, ...).
    pub fn add_ingested(&self, protocol: &'static str, n: usize) {
        if n > 0 {
            *lock(&self.ingested).entry(protocol).or_default() += n as u64;
        }
    }

    /// Counts samples refused for `reason` (`out_of_order`, `too_old`, `duplicate_timestamp`, ...).
    pub fn add_rejected(&self, reason: &'static str, n: usize) {
        if n > 0 {
            *lock(&self.rejected).entry(reason).or_default() += n as u64;
        }
    }

    /// Counts log lines (and their bytes) stored through `protocol` (`loki`, `elasticsearch`, ...).
    pub fn add_log_lines(&self, protocol: &'static str, lines: usize, bytes: usize) {
        if lines > 0 {
            let mut m = lock(&self.log_lines);
            let e = m.entry(protocol).or_default();
            e.0 += lines as u64;
            e.1 += bytes as u64;
        }
    }

    /// Counts spans stored and refused through `protocol` (`otlp`, `zipkin`).
    pub fn add_spans(&self, protocol: &'static str, stored: u64, refused: u64) {
        if stored + refused > 0 {
            let mut m = lock(&self.spans);
            let e = m.entry(protocol).or_default();
            e.0 += stored;
            e.1 += refused;
        }
    }

    /// Counts log lines refused or shortened for `reason`.
    pub fn add_log_rejected(&self, reason: &'static str, n: usize) {
        if n > 0 {
            *lock(&self.log_rejected).entry(reason).or_default() += n as u64;
        }
    }

    /// Counts an audit event that could not be written.
    pub fn add_audit_write_failure(&self) {
        self.audit_write_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every family: the registry's own plus `stats` from the store and process numbers.
    pub fn families(&self, stats: &[Stat]) -> Vec<Family> {
        let mut out = Vec::new();
        let counter = |name: &str, help: &str, points: Vec<Point>| Family {
            name: name.to_string(),
            help: help.to_string(),
            kind: MetricType::Counter,
            points: points.into_iter().map(|(l, v)| ("", l, v)).collect(),
        };
        let requests = lock(&self.requests)
            .iter()
            .map(|((h, c), n)| (vec![("handler", h.clone()), ("code", c.to_string())], *n as f64))
            .collect();
        out.push(counter(
            "telltale_http_requests_total",
            "HTTP requests served, by handler and status code.",
            requests,
        ));

        let mut points = Vec::new();
        for (handler, h) in lock(&self.durations).iter() {
            for (le, n) in DURATION_BUCKETS.iter().zip(h.buckets) {
                points.push(("_bucket", vec![("handler", handler.clone()), ("le", fmt_float(*le))], n as f64));
            }
            points.push(("_bucket", vec![("handler", handler.clone()), ("le", "+Inf".into())], h.count as f64));
            points.push(("_sum", vec![("handler", handler.clone())], h.sum));
            points.push(("_count", vec![("handler", handler.clone())], h.count as f64));
        }
        out.push(Family {
            name: "telltale_http_request_duration_seconds".into(),
            help: "Time to the response's headers, by handler.".into(),
            kind: MetricType::Histogram,
            points,
        });

        let ingested =
            lock(&self.ingested).iter().map(|(p, n)| (vec![("protocol", p.to_string())], *n as f64)).collect();
        out.push(counter("telltale_samples_ingested_total", "Samples stored, by write protocol.", ingested));
        let rejected = lock(&self.rejected).iter().map(|(r, n)| (vec![("reason", r.to_string())], *n as f64)).collect();
        out.push(counter("telltale_samples_rejected_total", "Samples refused, by reason.", rejected));
        let logs = lock(&self.log_lines);
        let lines = logs.iter().map(|(p, n)| (vec![("protocol", p.to_string())], n.0 as f64)).collect();
        let bytes = logs.iter().map(|(p, n)| (vec![("protocol", p.to_string())], n.1 as f64)).collect();
        drop(logs);
        out.push(counter("telltale_logs_ingested_lines_total", "Log lines stored, by write protocol.", lines));
        out.push(counter("telltale_logs_ingested_bytes_total", "Bytes of log lines stored, by write protocol.", bytes));
        let rejected =
            lock(&self.log_rejected).iter().map(|(r, n)| (vec![("reason", r.to_string())], *n as f64)).collect();
        out.push(counter(
            "telltale_logs_rejected_lines_total",
            "Log lines refused (rate_limited, too_old, limits) or changed (truncated, duplicate dropped), by reason.",
            rejected,
        ));

        let spans = lock(&self.spans);
        let stored = spans.iter().map(|(p, n)| (vec![("protocol", p.to_string())], n.0 as f64)).collect();
        let refused = spans.iter().map(|(p, n)| (vec![("protocol", p.to_string())], n.1 as f64)).collect();
        drop(spans);
        out.push(counter("telltale_spans_ingested_total", "Spans stored, by write protocol.", stored));
        out.push(counter("telltale_spans_rejected_total", "Spans refused (invalid ids), by write protocol.", refused));

        out.push(counter(
            "telltale_audit_write_failures_total",
            "Audit events that could not be written to the audit log (the actions happened).",
            vec![(vec![], self.audit_write_failures.load(std::sync::atomic::Ordering::Relaxed) as f64)],
        ));

        if let Some(rss) = resident_memory_bytes() {
            out.push(Family {
                name: "process_resident_memory_bytes".into(),
                help: "Resident memory size in bytes.".into(),
                kind: MetricType::Gauge,
                points: vec![("", vec![], rss)],
            });
        }
        // Stores may report the same number (telltale_storage_corrupt_files): one series, summed.
        let mut merged: Vec<Stat> = Vec::with_capacity(stats.len());
        for s in stats {
            match merged.iter_mut().find(|m| m.name == s.name) {
                Some(m) => m.value += s.value,
                None => merged.push(s.clone()),
            }
        }
        for s in &merged {
            out.push(Family {
                name: s.name.to_string(),
                help: s.help.to_string(),
                kind: s.kind,
                points: vec![("", vec![], s.value)],
            });
        }
        out
    }
}

/// Renders `families` in the Prometheus text exposition format 0.0.4.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for (suffix, labels, v) in &f.points {
            out.push_str(&f.name);
            out.push_str(suffix);
            write_labels(&mut out, labels.iter().map(|(k, v)| (&k[..], &v[..])));
            let _ = writeln!(out, " {}", fmt_float(*v));
        }
    }
    out
}

/// Appends `{a="1",b="2"}` (nothing for no labels) with the exposition format's escaping.
pub(crate) fn write_labels<'a>(out: &mut String, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut first = true;
    for (k, val) in labels {
        out.push(if first { '{' } else { ',' });
        first = false;
        let escaped = val.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{k}=\"{escaped}\"");
    }
    if !first {
        out.push('}');
    }
}

/// The same numbers as a batch at time `t`, every series carrying `extra` labels
/// (`job`, `instance`), so they can be queried from the store like scraped data.
pub fn to_batch(families: &[Family], t: Timestamp, extra: &[(&str, &str)]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for f in families {
        for (suffix, labels, v) in &f.points {
            let full = format!("{}{suffix}", f.name);
            let mut b = LabelsBuilder::new();
            b.push("__name__", &full);
            for (k, val) in labels {
                b.push(k, val);
            }
            for (k, val) in extra {
                b.set(k, val);
            }
            // Names and values here are ours and valid; a failure would be a bug, so skip the point.
            if let Ok(l) = b.build() {
                batch.push_sample(l, Sample::new(t, *v));
            }
        }
    }
    batch
}

/// Formats a float as Prometheus does (`+Inf`, `-Inf`, `NaN`, shortest round-trip otherwise).
pub(crate) fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // serde_json (ryu) gives the shortest representation that round-trips.
        let s = serde_json::Number::from_f64(v).map(|n| n.to_string()).unwrap_or_default();
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
}

fn resident_memory_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe_request("/api/v1/write", 204, Duration::from_millis(3));
        m.observe_request("/api/v1/write", 204, Duration::from_millis(30));
        m.add_ingested("influx", 5);
        m.add_rejected("out_of_order", 0);
        let text = render(&m.families(&[]));
        assert!(text.contains("telltale_http_requests_total{handler=\"/api/v1/write\",code=\"204\"} 2\n"), "{text}");
        assert!(
            text.contains("telltale_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",le=\"0.005\"} 1\n")
        );
        assert!(
            text.contains("telltale_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",le=\"+Inf\"} 2\n")
        );
        assert!(text.contains("telltale_samples_ingested_total{protocol=\"influx\"} 5\n"));
        assert!(!text.contains("reason=\"out_of_order\""), "zero adds create no series");
        assert!(text.contains("# TYPE telltale_http_request_duration_seconds histogram\n"));
    }

    #[test]
    fn batch_carries_job_and_instance() {
        let m = Metrics::default();
        m.add_ingested("influx", 5);
        let b = to_batch(&m.families(&[]), 1000, &[("job", "telltale"), ("instance", "127.0.0.1:7070")]);
        let (l, s) = b.iter().find(|(l, _)| l.metric_name() == Some("telltale_samples_ingested_total")).unwrap();
        assert_eq!(l.get("job"), Some("telltale"));
        assert_eq!(l.get("instance"), Some("127.0.0.1:7070"));
        assert_eq!(l.get("protocol"), Some("influx"));
        assert_eq!(s, [Sample::new(1000, 5.0)]);
    }

    #[test]
    fn floats() {
        assert_eq!(fmt_float(1.0), "1");
        assert_eq!(fmt_float(0.25), "0.25");
        assert_eq!(fmt_float(1e300), "1e+300");
        assert_eq!(fmt_float(f64::INFINITY), "+Inf");
        assert_eq!(fmt_float(f64::NAN), "NaN");
    }
}
