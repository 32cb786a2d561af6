//! Integration tests of the PromQL engine over `MemStore`, and the promqltest conformance run.

use std::path::PathBuf;
use std::time::Duration;

use telltale_model::{Labels, Sample, WriteBatch};
use telltale_promql::{Engine, EngineOptions, Error, Value};
use telltale_storage::{MemStore, MetricWriter};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

/// Three series: `x{a="b",i="0"}` and `x{a="b",i="1"}` every 15 s for 2 hours, `y{a="c"}` once.
fn store() -> MemStore {
    let s = MemStore::new();
    let mut b = WriteBatch::new();
    for i in 0..2 {
        let samples: Vec<Sample> = (0..480).map(|k| Sample::new(k * 15_000, (k * (i + 1)) as f64)).collect();
        b.push(labels(&[("__name__", "x"), ("a", "b"), ("i", &i.to_string())]), &samples);
    }
    b.push(labels(&[("__name__", "y"), ("a", "c")]), &[Sample::new(7_000_000, 1.0)]);
    s.write(&b).unwrap();
    s
}

fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(s) => s.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[test]
fn checker_queries_work() {
    let s = store();
    let e = Engine::default();
    let at = 7_100_000;
    assert_eq!(vector(e.instant(&s, r#"count({__name__=~".+"})"#, at).unwrap()), [("{}".to_string(), 3.0)]);
    // 3700 s back from 7100 s: samples after 3400 s, i.e. k in 227..=473 (247 per series).
    assert_eq!(
        vector(e.instant(&s, r#"sum(count_over_time({__name__="x"}[3700s]))"#, at).unwrap()),
        [("{}".to_string(), 494.0)]
    );
    let mut by_name = vector(e.instant(&s, r#"count by (__name__) ({__name__=~".+"})"#, at).unwrap());
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(by_name, [("x".to_string(), 2.0), ("y".to_string(), 1.0)]);

    let Value::Matrix(m) = e.instant(&s, r#"{a="b",i="1"}[3700s]"#, at).unwrap() else { panic!("not a matrix") };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].samples.len(), 247);
    assert_eq!(m[0].samples[0], Sample::new(227 * 15_000, 454.0));
    assert_eq!(m[0].labels.metric_name(), Some("x"));
}

#[test]
fn range_query_and_json() {
    let s = store();
    let e = Engine::default();
    let v = e.range(&s, "sum by (a) (rate(x[1m]))", 600_000, 660_000, 30_000).unwrap();
    let json = v.to_prometheus_json();
    assert_eq!(json["resultType"], "matrix");
    assert_eq!(json["result"][0]["metric"], serde_json::json!({"a": "b"}));
    // x{i=0} grows 1 per 15 s, x{i=1} 2 per 15 s: 0.2/s together.
    assert_eq!(json["result"][0]["values"][0][0], serde_json::json!(600));
    let v: f64 = json["result"][0]["values"][0][1].as_str().unwrap().parse().unwrap();
    assert!((v - 0.2).abs() < 1e-12, "{v}");
    assert_eq!(json["result"][0]["values"].as_array().unwrap().len(), 3);
    let scalar = e.instant(&s, "1 / 0", 1_500).unwrap().to_prometheus_json();
    assert_eq!(scalar, serde_json::json!({"resultType": "scalar", "result": [1.5, "+Inf"]}));
}

#[test]
fn limits_fail_with_clear_errors() {
    let s = store();
    let small = Engine::new(EngineOptions { max_samples: 100, ..Default::default() });
    let err = small.instant(&s, "x[1h]", 7_000_000).unwrap_err();
    assert!(matches!(err, Error::TooManySamples { limit: 100, .. }), "{err}");
    assert_eq!(err.kind(), telltale_model::ErrorKind::LimitExceeded);

    let few_series = Engine::new(EngineOptions { max_series: 1, ..Default::default() });
    assert!(matches!(few_series.instant(&s, "x", 1_000).unwrap_err(), Error::TooManySeries { .. }));

    let hurried = Engine::new(EngineOptions { timeout: Duration::from_nanos(1), ..Default::default() });
    let err = hurried.instant(&s, "sum(x)", 1_000).unwrap_err();
    assert_eq!(err.kind(), telltale_model::ErrorKind::Timeout, "{err}");

    let bad = Engine::default().instant(&s, "sum(", 0).unwrap_err();
    assert_eq!(bad.kind(), telltale_model::ErrorKind::InvalidInput);
    let err = Engine::default().range(&s, "x[5m]", 0, 10, 1).unwrap_err();
    assert!(err.to_string().contains("range vector"), "{err}");
}

/// The core set of Prometheus's own test scripts, as listed in the conformance README.
const CORE: &[&str] = &[
    "aggregators",
    "at_modifier",
    "collision",
    "functions",
    "histograms",
    "literals",
    "limit",
    "name_label_dropping",
    "operators",
    "range_queries",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
];

/// Passing cases recorded so far; raise it as the engine improves. The test fails if the
/// count drops below it.
const CORE_PASS_THRESHOLD: usize = 904;

/// `TELLTALE_CONFORMANCE_DIR`, else `shared/conformance/promql` beside the project (or any
/// ancestor), else the copy of the core set in `testdata/prometheus`.
fn conformance_dir() -> PathBuf {
    if let Ok(d) = std::env::var("TELLTALE_CONFORMANCE_DIR") {
        return PathBuf::from(d);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/conformance/promql"))
        .find(|d| d.try_exists().unwrap_or(false))
        .unwrap_or_else(|| manifest.join("testdata/prometheus"))
}

#[test]
fn promqltest_core_conformance() {
    let dir = conformance_dir();
    if !dir.try_exists().unwrap_or(false) {
        panic!("conformance scripts not found at {}", dir.display());
    }
    let mut passed = 0;
    let mut report = String::new();
    for name in CORE {
        let r = telltale_promql::promqltest::run_file(&dir.join(format!("{name}.test")));
        passed += r.passed;
        report.push_str(&format!("{name}: {} passed, {} failed, {} skipped\n", r.passed, r.failed, r.skipped));
    }
    assert!(passed >= CORE_PASS_THRESHOLD, "conformance regressed: {passed} < {CORE_PASS_THRESHOLD}\n{report}");
}

#[test]
fn own_scripts_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let r = telltale_promql::promqltest::run_file(&f);
        assert!(r.failed == 0 && r.passed > 0, "{}: {:#?}", r.name, r.failures);
    }
}
