use std::collections::BTreeMap;
use std::fmt::Write;

use proptest::prelude::*;
use telltale_ingest::exposition::{self, Format};
use telltale_ingest::Limits;
use telltale_model::{ErrorKind, Labels, MetricType};

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Go's formatting of special floats, as client libraries write them.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

#[derive(Debug, Clone)]
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    v: f64,
    t: Option<i64>,
}

fn lines(max_t: i64) -> impl Strategy<Value = Vec<Line>> {
    let line = (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,15}",
        prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9_]{0,8}", "(\\PC|[\\\\\"\n]){1,12}", 0..6),
        prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
        prop::option::of(0..max_t),
    );
    prop::collection::vec(line.prop_map(|(name, labels, v, t)| Line { name, labels, v, t }), 1..20)
}

fn check(batch: &telltale_model::WriteBatch, input: &[Line], default_ts: i64) -> Result<(), TestCaseError> {
    prop_assert_eq!(batch.series_count(), input.len());
    for ((labels, samples), l) in batch.iter().zip(input) {
        let mut pairs: Vec<(&str, &str)> = l.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        pairs.push(("__name__", &l.name));
        prop_assert_eq!(labels, &Labels::from_pairs(pairs).unwrap());
        prop_assert_eq!(samples[0].t, l.t.unwrap_or(default_ts));
        prop_assert!(samples[0].v.to_bits() == l.v.to_bits() || (samples[0].v.is_nan() && l.v.is_nan()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn prometheus_text_round_trip(input in lines(i64::MAX)) {
        let mut text = String::new();
        for l in &input {
            text.push_str(&l.name);
            if !l.labels.is_empty() {
                text.push('{');
                for (n, v) in &l.labels {
                    write!(text, "{n}=\"{}\",", escape(v)).unwrap();
                }
                text.push('}');
            }
            write!(text, " {}", value(l.v)).unwrap();
            if let Some(t) = l.t {
                write!(text, " {t}").unwrap();
            }
            text.push('\n');
        }
        let batch = exposition::decode_format(text.as_bytes(), Format::Prometheus, 42, &Limits::unlimited())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        check(&batch, &input, 42)?;
    }

    #[test]
    fn openmetrics_round_trip(input in lines(4_000_000_000_000)) {
        let mut text = String::new();
        for l in &input {
            let labels: Vec<String> = l.labels.iter().map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect();
            write!(text, "{}{{{}}} {}", l.name, labels.join(","), value(l.v)).unwrap();
            if let Some(t) = l.t {
                write!(text, " {}.{:03}", t / 1000, t % 1000).unwrap();
            }
            text.push('\n');
        }
        text.push_str("# EOF\n");
        let batch = exposition::decode(text.as_bytes(), 42, &Limits::unlimited())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        check(&batch, &input, 42)?;
    }

    #[test]
    fn garbage_never_panics(text in "(\\PC|[{}\"=,# \n\\\\]){0,200}") {
        let _ = exposition::decode_format(text.as_bytes(), Format::Prometheus, 0, &Limits::default());
        let _ = exposition::decode_format(text.as_bytes(), Format::OpenMetrics, 0, &Limits::default());
    }
}

#[test]
fn node_exporter_style_scrape() {
    let text = "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
# TYPE node_cpu_seconds_total counter\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 2.18587395e+06\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 45123.27\n\
# HELP node_load1 1m load average.\n\
# TYPE node_load1 gauge\n\
node_load1 0.42\n\
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.\n\
# TYPE node_filesystem_avail_bytes gauge\n\
node_filesystem_avail_bytes{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"} 1.2345e+10\n";
    let b = exposition::decode(text.as_bytes(), 5, &Limits::default()).unwrap();
    assert_eq!(b.series_count(), 4);
    assert!(b.iter().all(|(_, s)| s[0].t == 5));
    let kinds: Vec<_> = b.metadata.iter().map(|m| (m.metric_family.as_str(), m.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("node_cpu_seconds_total", MetricType::Counter),
            ("node_load1", MetricType::Gauge),
            ("node_filesystem_avail_bytes", MetricType::Gauge)
        ]
    );
}

#[test]
fn limits_reject_with_the_config_key() {
    let limits = Limits { max_label_name_length: 8, ..Limits::default() };
    let e = exposition::decode(b"m{short=\"1\",too_long_\"2\"} 1\n", 0, &limits).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = exposition::decode(b"m 1\nm{short=\"1\",too_long_=\"2\"} 1\n", 0, &limits).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert_eq!(
        e.to_string(),
        "max_label_name_length (8) exceeded by label name \"too_long_\" (9 bytes) of series \"m\" on line 2"
    );
}
