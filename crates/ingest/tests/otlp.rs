//! OTLP metrics decoding against payloads captured from real SDK exporters
//! (`testdata/otlp/make_fixtures.py`), hand-built edge cases, and property tests.
//!
//! Snapshots: each fixture's decoded batch is rendered as text next to it (`*.snap`). After a
//! deliberate change, regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p telltale-ingest --test otlp`
//! and review the diff.

use std::collections::BTreeSet;
use std::path::PathBuf;

use proptest::prelude::*;
use prost::Message;
use telltale_ingest::otlp::proto::{
    any_value, metric, number_data_point, summary_data_point::ValueAtQuantile, AggregationTemporality, AnyValue,
    ExportMetricsServiceRequest, Gauge, Histogram, HistogramDataPoint, InstrumentationScope, KeyValue, Metric,
    NumberDataPoint, Resource, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use telltale_ingest::otlp::{
    decode_metrics_json, decode_metrics_proto, Decoded, DeltaTemporality, Dropped, OtlpLimits, OtlpOptions,
    TranslationStrategy,
};
use telltale_model::{is_stale_nan, ErrorKind, Labels, MetricType};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/otlp").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).unwrap_or_else(|e| panic!("cannot read fixture {name}: {e}"))
}

fn decode_file(name: &str, opts: &OtlpOptions) -> Decoded {
    let body = read(name);
    let limits = OtlpLimits::default();
    let res = if name.ends_with(".json") {
        decode_metrics_json(&body, opts, &limits)
    } else {
        decode_metrics_proto(&body, opts, &limits)
    };
    res.unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fmt_value(v: f64) -> String {
    if is_stale_nan(v) {
        "stale".into()
    } else {
        v.to_string()
    }
}

/// A stable text rendering: dropped counts, metadata, then each series in batch order.
fn render(d: &Decoded) -> String {
    let mut out = format!("# dropped: {}\n", d.dropped.message().unwrap_or_else(|| "nothing".into()));
    for m in &d.batch.metadata {
        out += &format!("# {} {} unit={:?} help={:?}\n", m.kind.as_str(), m.metric_family, m.unit, m.help);
    }
    for (labels, samples) in d.batch.iter() {
        let s: Vec<String> = samples.iter().map(|s| format!("{} @{}", fmt_value(s.v), s.t)).collect();
        out += &format!("{labels} {}\n", s.join(", "));
    }
    out
}

fn check_snapshot(fixture: &str, variant: &str, d: &Decoded) {
    let path = testdata(&format!("{fixture}{variant}.snap"));
    let got = render(d);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing snapshot {}: {e}; run with UPDATE_SNAPSHOTS=1", path.display()));
    if got != want {
        let diff: Vec<String> =
            want.lines().zip(got.lines()).filter(|(w, g)| w != g).take(5).map(|(w, g)| format!("-{w}\n+{g}")).collect();
        panic!(
            "snapshot {} differs ({} vs {} lines):\n{}\n(UPDATE_SNAPSHOTS=1 to accept)",
            path.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

/// Adding a case is adding a file: every `*.pb` and `*.json` body in `testdata/otlp/` must decode
/// with the default options to exactly its `<file>.snap`.
#[test]
fn every_fixture_matches_its_snapshot() {
    let mut seen = 0;
    for entry in std::fs::read_dir(testdata("")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".pb") || name.ends_with(".json") {
            check_snapshot(&name, "", &decode_file(&name, &OtlpOptions::default()));
            seen += 1;
        }
    }
    assert!(seen >= 5, "fixtures missing: {seen}");
}

#[test]
fn python_sdk_protobuf_snapshot() {
    let d = decode_file("python_cumulative.pb", &OtlpOptions::default());
    assert_eq!(d.dropped, Dropped::default());
    // Spot checks of the mapping, independent of the snapshot file.
    let find = |name: &str, extra: &[(&str, &str)]| -> f64 {
        let (_, s) = d
            .batch
            .iter()
            .find(|(l, _)| l.metric_name() == Some(name) && extra.iter().all(|(n, v)| l.get(n) == Some(*v)))
            .unwrap_or_else(|| panic!("no series {name} {extra:?}"));
        s[0].v
    };
    let get = [("http_request_method", "GET"), ("http_response_status_code", "200")];
    assert_eq!(find("http_server_requests_total", &get), 4.0);
    assert_eq!(find("network_io_bytes_total", &[]), 1536.5);
    assert_eq!(find("queue_items", &[("queue", "orders")]), 3.0);
    assert_eq!(find("system_memory_utilization_ratio", &[("state", "used")]), 0.42);
    assert_eq!(find("http_server_request_duration_seconds_bucket", &[("le", "0.01")]), 1.0);
    assert_eq!(find("http_server_request_duration_seconds_bucket", &[("le", "0.1")]), 2.0);
    assert_eq!(find("http_server_request_duration_seconds_bucket", &[("le", "1")]), 4.0);
    assert_eq!(find("http_server_request_duration_seconds_bucket", &[("le", "5")]), 4.0);
    assert_eq!(find("http_server_request_duration_seconds_bucket", &[("le", "+Inf")]), 5.0);
    assert_eq!(find("http_server_request_duration_seconds_count", &[]), 5.0);
    assert!((find("http_server_request_duration_seconds_sum", &[]) - 8.025).abs() < 1e-9);
    let odd = [("a_b", "dot;under"), ("key_0key", "zero"), ("flag", "true"), ("ratio", "0.5")];
    assert_eq!(find("odd_name_with_slash_milliseconds_total", &odd), 7.0);

    let (req, _) = d.batch.iter().find(|(l, _)| l.metric_name() == Some("http_server_requests_total")).unwrap();
    assert_eq!(req.get("job"), Some("shop/checkout"));
    assert_eq!(req.get("instance"), Some("pod-1"));
    assert_eq!(req.get("otel_scope_name"), Some("checkout.http"));
    assert_eq!(req.get("otel_scope_version"), Some("1.2.3"));
    assert_eq!(req.get("host_name"), None, "resource attributes are not promoted by default");

    let (ti, _) = d.batch.iter().find(|(l, _)| l.metric_name() == Some("target_info")).unwrap();
    assert_eq!(ti.get("host_name"), Some("node-a"));
    assert_eq!(ti.get("deployment_environment_name"), Some("test"));
    assert_eq!(ti.get("telemetry_sdk_language"), Some("python"));
    assert_eq!(ti.get("service_name"), None, "identifying attributes become job and instance only");
    assert_eq!(ti.get("otel_scope_name"), None);

    let kind = |family: &str| d.batch.metadata.iter().find(|m| m.metric_family == family).map(|m| m.kind);
    assert_eq!(kind("http_server_requests_total"), Some(MetricType::Counter));
    assert_eq!(kind("queue_items"), Some(MetricType::Gauge));
    assert_eq!(kind("http_server_request_duration_seconds"), Some(MetricType::Histogram));
}

#[test]
fn python_sdk_delta_is_dropped_and_counted() {
    let d = decode_file("python_delta.pb", &OtlpOptions::default());
    // Counters (2 + 1 + 1 points) and the histogram (1 point) were delta; the up-down counter
    // and the gauge stay cumulative.
    assert_eq!(d.dropped.delta_points, 5);
    assert_eq!(d.dropped.rejected_data_points(), 5);
    let names: BTreeSet<_> = d.batch.iter().filter_map(|(l, _)| l.metric_name().map(String::from)).collect();
    assert_eq!(
        names,
        BTreeSet::from(["queue_items".into(), "system_memory_utilization_ratio".into(), "target_info".into()])
    );

    let ingest = OtlpOptions { delta_temporality: DeltaTemporality::Ingest, ..Default::default() };
    let d = decode_file("python_delta.pb", &ingest);
    assert_eq!(d.dropped, Dropped::default());
    let meta = d.batch.metadata.iter().find(|m| m.metric_family == "http_server_requests_total").unwrap();
    assert_eq!(meta.kind, MetricType::Unknown);
    assert!(d.batch.iter().any(|(l, _)| l.metric_name() == Some("http_server_request_duration_seconds_bucket")));
}

/// Series identities without timestamps and SDK-specific resource attributes.
fn identities(d: &Decoded) -> BTreeSet<String> {
    d.batch
        .iter()
        .filter(|(l, _)| l.metric_name() != Some("target_info"))
        .map(|(l, s)| format!("{l} {}", s.iter().map(|s| fmt_value(s.v)).collect::<Vec<_>>().join(",")))
        .collect()
}

#[test]
fn js_sdk_json_and_protobuf_agree() {
    let json = decode_file("js_cumulative.json", &OtlpOptions::default());
    let pb = decode_file("js_cumulative.pb", &OtlpOptions::default());
    // Two runs of the same SDK script, one per encoding: identical but for the timestamps.
    assert_eq!(identities(&json), identities(&pb), "the JSON and protobuf exports must decode alike");
    assert_eq!(json.batch.metadata, pb.batch.metadata);
    // Two SDKs, same instruments: same series and values (the JS SDK reports integral counter
    // sums as doubles, which does not matter once they are f64 samples).
    let py = decode_file("python_cumulative.pb", &OtlpOptions::default());
    assert_eq!(identities(&json), identities(&py));
}

#[test]
fn spec_example_json() {
    // The OTLP repository's own examples/metrics.json: delta temporality throughout, plus an
    // exponential histogram, so only the gauge is stored.
    let d = decode_file("spec_example.json", &OtlpOptions::default());
    assert_eq!(
        d.dropped,
        Dropped { delta_points: 2, exponential_histogram_points: 1, ..Default::default() },
        "{:?}",
        d.dropped.message()
    );
    // What the API answers: an OTLP partial success, in the request's encoding.
    let resp = telltale_ingest::otlp::proto::ExportMetricsServiceResponse::decode(&d.response_proto()[..]).unwrap();
    let partial = resp.partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 3);
    assert_eq!(Some(partial.error_message.clone()), d.dropped.message());
    let json: serde_json::Value = serde_json::from_slice(&d.response_json()).unwrap();
    assert_eq!(json["partialSuccess"]["rejectedDataPoints"], "3");
    assert_eq!(json["partialSuccess"]["errorMessage"], partial.error_message.as_str());
    let all_stored = decode_file("python_cumulative.pb", &OtlpOptions::default());
    assert!(all_stored.response_proto().is_empty());
    assert_eq!(all_stored.response_json(), b"{}");

    let ingest = OtlpOptions { delta_temporality: DeltaTemporality::Ingest, ..Default::default() };
    let d = decode_file("spec_example.json", &ingest);
    check_snapshot("spec_example.json", ".delta_ingest", &d);
    assert_eq!(d.dropped.rejected_data_points(), 1);
}

#[test]
fn bad_bodies_are_one_line_errors() {
    let (o, l) = (OtlpOptions::default(), OtlpLimits::default());
    let cases: [&[u8]; 4] =
        [b"\xff\xff\xff", b"\x0a\x05\x0a\x03", b"not protobuf at all", &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]];
    for body in cases {
        let e = decode_metrics_proto(body, &o, &l).expect_err(&format!("{body:?}"));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let msg = e.to_string();
        assert!(msg.starts_with("invalid otlp protobuf body: ") && !msg.contains('\n'), "{msg}");
    }
    let cases: [&[u8]; 6] = [
        b"",
        b"{",
        b"[]",
        br#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "histogram": {"dataPoints": [{"count": "1x"}]}}]}]}]}"#,
        br#"{"resourceMetrics": "nope"}"#,
        b"{\"resourceMetrics\": [{\"resource\": {\"attributes\": [{\"key\": \"k\", \"value\": {\"intValue\": \"a\nb\"}}]}}]}",
    ];
    for body in cases {
        let e = decode_metrics_json(body, &o, &l).expect_err(&String::from_utf8_lossy(body));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let msg = e.to_string();
        assert!(msg.starts_with("invalid otlp json body: ") && !msg.contains('\n'), "{msg}");
    }
    // Malformed values anywhere are errors too, also inside oneofs (where the serde code
    // generated by opentelemetry-proto would read them as absent).
    let bad_values = [
        r#"{"name": "x", "gauge": {"dataPoints": [{"asInt": "1x"}]}}"#,
        r#"{"name": "x", "gauge": {"dataPoints": [{"asDouble": "one"}]}}"#,
        r#"{"name": "x", "sum": {"dataPoints": "oops"}}"#,
        r#"{"name": "x", "sum": {"aggregationTemporality": "CUMULATIVE"}}"#,
        r#"{"name": "x", "gauge": {"dataPoints": [{"attributes": [{"key": "k", "value": {"bytesValue": "!!"}}]}]}}"#,
        r#"{"name": "x", "histogram": {"dataPoints": [{"bucketCounts": [-1]}]}}"#,
    ];
    for m in bad_values {
        let body = format!(r#"{{"resourceMetrics": [{{"scopeMetrics": [{{"metrics": [{m}]}}]}}]}}"#);
        let e = decode_metrics_json(body.as_bytes(), &o, &l).expect_err(m);
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    // `null` means "not set", as in proto3 JSON; non-finite doubles come as strings.
    let body = br#"{"resourceMetrics": [{"resource": null, "scopeMetrics": [{"metrics": [
        {"name": "x", "gauge": {"dataPoints": [{"asDouble": null, "timeUnixNano": null}, {"asDouble": "NaN"},
          {"asDouble": "-Infinity", "attributes": [{"key": "k", "value": null}]}]}}]}]}]}"#;
    let d = decode_metrics_json(body, &o, &l).unwrap();
    assert_eq!(d.dropped, Dropped { points_without_value: 1, ..Default::default() });
    assert_eq!(series(&d), ["x NaN", "x -inf"]);
}

#[test]
fn json_quirks_of_the_otlp_encoding() {
    // 64-bit integers as strings or numbers, enums as integers, hex trace ids, unknown keys.
    let body = br#"{
      "resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}], "futureField": 1},
        "scopeMetrics": [{
          "scope": {"name": "s"},
          "metrics": [
            {"name": "ints", "unknownKey": {"a": [1, 2]}, "sum": {"aggregationTemporality": 2, "isMonotonic": true,
              "dataPoints": [
                {"asInt": "9007199254740993", "timeUnixNano": "1700000000000000000",
                 "attributes": [{"key": "n", "value": {"intValue": "12"}}],
                 "exemplars": [{"asDouble": 1, "timeUnixNano": "1700000000000000000",
                   "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}]},
                {"asInt": 7, "timeUnixNano": 1700000000001000000,
                 "attributes": [{"key": "n", "value": {"intValue": 13}}]}
              ]}},
            {"name": "h", "histogram": {"aggregationTemporality": 2, "dataPoints": [
              {"timeUnixNano": "1700000000000000000", "count": "3", "bucketCounts": ["1", 2], "explicitBounds": [0.5]}]}},
            {"name": "q", "summary": {"dataPoints": [
              {"timeUnixNano": "1700000000000000000", "count": "2", "sum": 3.5,
               "quantileValues": [{"quantile": 0.5, "value": 1}, {"quantile": 1, "value": 2.5}]}]}}
          ]
        }]
      }]
    }"#;
    let d = decode_metrics_json(body, &OtlpOptions::default(), &OtlpLimits::default()).unwrap();
    let got = render(&d);
    let want = r#"# dropped: dropped 1 exemplars (not stored yet)
# counter ints_total unit="" help=""
# histogram h unit="" help=""
# summary q unit="" help=""
ints_total{job="api", n="12", otel_scope_name="s"} 9007199254740992 @1700000000000
ints_total{job="api", n="13", otel_scope_name="s"} 7 @1700000000001
h_count{job="api", otel_scope_name="s"} 3 @1700000000000
h_bucket{job="api", le="0.5", otel_scope_name="s"} 1 @1700000000000
h_bucket{job="api", le="+Inf", otel_scope_name="s"} 3 @1700000000000
q_sum{job="api", otel_scope_name="s"} 3.5 @1700000000000
q_count{job="api", otel_scope_name="s"} 2 @1700000000000
q{job="api", otel_scope_name="s", quantile="0.5"} 1 @1700000000000
q{job="api", otel_scope_name="s", quantile="1"} 2.5 @1700000000000
"#;
    assert_eq!(got, want);
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    }
}

fn number(t_ms: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t_ms * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn request(
    resource: Vec<KeyValue>,
    scope: Option<InstrumentationScope>,
    metrics: Vec<Metric>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_metrics: vec![ScopeMetrics { scope, metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge { data_points: points })),
        ..Default::default()
    }
}

fn decode(req: &ExportMetricsServiceRequest, opts: &OtlpOptions) -> Decoded {
    decode_metrics_proto(&req.encode_to_vec(), opts, &OtlpLimits::default()).unwrap()
}

fn series(d: &Decoded) -> Vec<String> {
    d.batch
        .iter()
        .map(|(l, s)| format!("{l} {}", s.iter().map(|s| fmt_value(s.v)).collect::<Vec<_>>().join(",")))
        .collect()
}

#[test]
fn no_recorded_value_is_a_stale_marker_and_nan_is_not() {
    let mut stale = number(1000, 0.0, vec![]);
    stale.flags = 1;
    stale.value = None;
    let nan_bits = NumberDataPoint {
        value: Some(number_data_point::Value::AsDouble(f64::from_bits(telltale_model::STALE_NAN_BITS))),
        ..number(1000, 0.0, vec![kv("k", "nan")])
    };
    let hist = HistogramDataPoint {
        time_unix_nano: 2_000_000_000,
        count: 4,
        sum: Some(1.0),
        bucket_counts: vec![1, 3],
        explicit_bounds: vec![1.0],
        flags: 1,
        ..Default::default()
    };
    let summary = SummaryDataPoint {
        time_unix_nano: 2_000_000_000,
        count: 2,
        sum: 1.0,
        quantile_values: vec![ValueAtQuantile { quantile: 0.99, value: 1.0 }],
        flags: 1,
        ..Default::default()
    };
    let req = request(
        vec![],
        None,
        vec![
            gauge("g", "", vec![stale, nan_bits]),
            Metric {
                name: "h".into(),
                data: Some(metric::Data::Histogram(Histogram { data_points: vec![hist], aggregation_temporality: 2 })),
                ..Default::default()
            },
            Metric {
                name: "s".into(),
                data: Some(metric::Data::Summary(Summary { data_points: vec![summary] })),
                ..Default::default()
            },
        ],
    );
    let d = decode(&req, &OtlpOptions::default());
    assert_eq!(
        series(&d),
        [
            "g stale",
            r#"g{k="nan"} NaN"#,
            "h_sum stale",
            "h_count stale",
            r#"h_bucket{le="1"} stale"#,
            r#"h_bucket{le="+Inf"} stale"#,
            "s_sum stale",
            "s_count stale",
            r#"s{quantile="0.99"} stale"#,
        ]
    );
    assert_eq!(d.batch.iter().next().unwrap().1[0].t, 1000);
    assert_eq!(d.batch.iter().nth(2).unwrap().1[0].t, 2000);
}

#[test]
fn labels_precedence_and_promotion() {
    let resource = vec![
        kv("service.name", "api"),
        kv("service.namespace", "prod"),
        kv("service.instance.id", "i-1"),
        kv("cloud.region", "eu"),
        kv("k8s.pod.name", "p"),
    ];
    let scope = InstrumentationScope {
        name: "lib".into(),
        version: "2".into(),
        attributes: vec![kv("lib.flavour", "x")],
        ..Default::default()
    };
    // A point attribute named like a promoted resource attribute wins over it; one named `job`
    // loses to the resource's job.
    let point = number(5, 1.0, vec![kv("cloud.region", "us"), kv("job", "mine"), kv("a.b", "1"), kv("a-b", "2")]);
    let req = request(resource, Some(scope), vec![gauge("g", "", vec![point])]);

    let opts = OtlpOptions {
        promote_resource_attributes: vec!["cloud.region".into(), "k8s.pod.name".into()],
        ..Default::default()
    };
    let d = decode(&req, &opts);
    assert_eq!(
        series(&d),
        [
            r#"g{a_b="2;1", cloud_region="us", instance="i-1", job="prod/api", k8s_pod_name="p", otel_scope_lib_flavour="x", otel_scope_name="lib", otel_scope_version="2"} 1"#,
            r#"target_info{cloud_region="eu", instance="i-1", job="prod/api", k8s_pod_name="p"} 1"#,
        ]
    );

    let opts = OtlpOptions {
        promote_all_resource_attributes: true,
        ignore_resource_attributes: vec!["k8s.pod.name".into(), "service.name".into()],
        promote_scope_metadata: false,
        target_info: false,
        ..Default::default()
    };
    let d = decode(&req, &opts);
    assert_eq!(
        series(&d),
        [
            r#"g{a_b="2;1", cloud_region="us", instance="i-1", job="prod/api", service_instance_id="i-1", service_namespace="prod"} 1"#
        ]
    );

    let opts =
        OtlpOptions { keep_identifying_resource_attributes: true, promote_scope_metadata: false, ..Default::default() };
    let d = decode(&req, &opts);
    assert_eq!(
        series(&d)[1],
        r#"target_info{cloud_region="eu", instance="i-1", job="prod/api", k8s_pod_name="p", service_instance_id="i-1", service_name="api", service_namespace="prod"} 1"#
    );
}

#[test]
fn target_info_spans_the_resource_samples() {
    let req = request(
        vec![kv("service.name", "api"), kv("host.name", "h")],
        None,
        vec![gauge("g", "", vec![number(3000, 1.0, vec![]), number(1000, 2.0, vec![kv("x", "y")])])],
    );
    let d = decode(&req, &OtlpOptions::default());
    let (l, s) = d.batch.iter().last().unwrap();
    assert_eq!(l.to_string(), r#"target_info{host_name="h", job="api"}"#);
    assert_eq!(s.iter().map(|s| s.t).collect::<Vec<_>>(), [1000, 3000]);
    // No service.name nor service.instance.id: no job or instance to join on.
    let req = request(vec![kv("host.name", "h")], None, vec![gauge("g", "", vec![number(1, 1.0, vec![])])]);
    assert_eq!(series(&decode(&req, &OtlpOptions::default())), ["g 1"]);
    // Only service.name: nothing left for target_info.
    let req = request(vec![kv("service.name", "api")], None, vec![gauge("g", "", vec![number(1, 1.0, vec![])])]);
    assert_eq!(series(&decode(&req, &OtlpOptions::default())), [r#"g{job="api"} 1"#]);
}

#[test]
fn translation_strategies() {
    let counter = Metric {
        name: "http.requests".into(),
        unit: "{request}".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![number(1, 2.0, vec![kv("http.method", "GET")])],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let req = request(vec![], None, vec![counter, gauge("mem.use", "By", vec![number(1, 3.0, vec![])])]);
    let with = |s| decode(&req, &OtlpOptions { translation_strategy: s, ..Default::default() });
    assert_eq!(
        series(&with(TranslationStrategy::UnderscoreEscapingWithSuffixes)),
        [r#"http_requests_total{http_method="GET"} 2"#, "mem_use_bytes 3"]
    );
    assert_eq!(
        series(&with(TranslationStrategy::UnderscoreEscapingWithoutSuffixes)),
        [r#"http_requests{http_method="GET"} 2"#, "mem_use 3"]
    );
    assert_eq!(
        series(&with(TranslationStrategy::NoUtf8EscapingWithSuffixes)),
        [r#"http.requests_total{http.method="GET"} 2"#, "mem.use_bytes 3"]
    );
    assert_eq!(
        series(&with(TranslationStrategy::NoTranslation)),
        [r#"http.requests{http.method="GET"} 2"#, "mem.use 3"]
    );
}

#[test]
fn untranslatable_names_and_odd_points_are_counted() {
    let no_value = NumberDataPoint { value: None, ..number(1, 0.0, vec![]) };
    let bad_key = number(1, 1.0, vec![kv("..", "x")]);
    let empty_key = number(1, 1.0, vec![kv("", "x")]);
    let req = request(
        vec![],
        None,
        vec![
            gauge("...", "", vec![number(1, 1.0, vec![]), number(2, 1.0, vec![])]),
            gauge("ok", "", vec![no_value, bad_key, empty_key, number(1, 1.0, vec![])]),
            Metric { name: "nodata".into(), ..Default::default() },
            Metric {
                name: "unspecified".into(),
                data: Some(metric::Data::Sum(Sum { data_points: vec![number(1, 1.0, vec![])], ..Default::default() })),
                ..Default::default()
            },
        ],
    );
    let d = decode(&req, &OtlpOptions::default());
    assert_eq!(series(&d), ["ok 1"]);
    assert_eq!(
        d.dropped,
        Dropped {
            invalid_name_points: 4,
            points_without_value: 1,
            metrics_without_data: 1,
            invalid_temporality_points: 1,
            ..Default::default()
        }
    );
    assert_eq!(d.dropped.rejected_data_points(), 6);
    assert_eq!(
        d.dropped.message().unwrap(),
        "dropped 1 points with unspecified aggregation temporality, 1 number points without a value, \
         4 points whose metric or attribute name is not translatable, 1 metrics without data"
    );
}

#[test]
fn limits_refuse_the_whole_request() {
    let points = (0..10).map(|i| number(i, 1.0, vec![kv("i", &i.to_string())])).collect();
    let req = request(vec![], None, vec![gauge("g", "", points)]).encode_to_vec();
    let o = OtlpOptions::default();
    let limits = OtlpLimits { max_samples_per_request: 9, ..OtlpLimits::unlimited() };
    let e = decode_metrics_proto(&req, &o, &limits).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert_eq!(e.to_string(), r#"otlp request exceeds max_samples_per_request: 10 > 9 (metric "g")"#);
    assert!(
        decode_metrics_proto(&req, &o, &OtlpLimits { max_samples_per_request: 10, ..OtlpLimits::unlimited() }).is_ok()
    );

    let long = request(vec![], None, vec![gauge("g", "", vec![number(1, 1.0, vec![kv("k", &"v".repeat(100))])])])
        .encode_to_vec();
    let e = decode_metrics_proto(&long, &o, &OtlpLimits { max_label_value_length: 99, ..OtlpLimits::unlimited() })
        .unwrap_err();
    assert!(e.to_string().contains("max_label_value_length: 100 > 99"), "{e}");
    let e = decode_metrics_proto(&long, &o, &OtlpLimits { max_labels_per_series: 1, ..OtlpLimits::unlimited() })
        .unwrap_err();
    assert!(e.to_string().contains("max_labels_per_series: 2 > 1"), "{e}");
}

#[test]
fn options_parse_with_prometheus_key_names_and_reject_unknown_keys() {
    let o: OtlpOptions = serde_json::from_str(
        r#"{"translation_strategy": "NoUTF8EscapingWithSuffixes", "promote_resource_attributes": ["a"],
            "delta_temporality": "ingest"}"#,
    )
    .unwrap();
    assert_eq!(o.translation_strategy, TranslationStrategy::NoUtf8EscapingWithSuffixes);
    assert_eq!(o.delta_temporality, DeltaTemporality::Ingest);
    assert!(o.promote_scope_metadata && o.target_info);
    let e = serde_json::from_str::<OtlpOptions>(r#"{"promote_resource_attribute": []}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
    assert!(o.validate().is_ok());
    let both = OtlpOptions { promote_all_resource_attributes: true, ..o };
    assert_eq!(both.validate().unwrap_err().kind(), ErrorKind::InvalidInput);
    let ignore = OtlpOptions { ignore_resource_attributes: vec!["a".into()], ..Default::default() };
    assert!(ignore.validate().is_err());
}

// ---- property tests ----

fn arb_attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    // Distinct keys that stay distinct after translation: lowercase letters only.
    proptest::collection::btree_map("[a-z]{1,6}", "[ -~]{0,8}", 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| kv(&k, &v)).collect())
}

fn arb_numbers() -> impl Strategy<Value = Vec<NumberDataPoint>> {
    proptest::collection::vec((arb_attrs(), any::<f64>(), 0u64..1 << 62), 0..4).prop_map(|ps| {
        ps.into_iter()
            .map(|(a, v, t)| NumberDataPoint {
                attributes: a,
                time_unix_nano: t,
                value: Some(number_data_point::Value::AsDouble(v)),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    })
}

/// A metric and the number of samples it must produce (`None` value: unique series names are
/// guaranteed by indexing the metric name).
fn arb_metric(i: usize) -> impl Strategy<Value = (Metric, usize)> {
    let name = format!("m{i}.x");
    let hist_points = proptest::collection::vec(
        (arb_attrs(), proptest::collection::vec(0u64..1000, 0..6), proptest::option::of(any::<f64>())),
        0..3,
    )
    .prop_map(|ps| {
        ps.into_iter()
            .map(|(a, counts, sum)| HistogramDataPoint {
                attributes: a,
                time_unix_nano: 1,
                count: counts.iter().sum(),
                sum,
                explicit_bounds: (1..counts.len()).map(|b| b as f64 / 4.0).collect(),
                bucket_counts: counts,
                ..Default::default()
            })
            .collect::<Vec<_>>()
    });
    prop_oneof![
        arb_numbers().prop_map({
            let name = name.clone();
            move |ps| {
                let n = ps.len();
                (gauge(&name, "s", ps), n)
            }
        }),
        (arb_numbers(), any::<bool>()).prop_map({
            let name = name.clone();
            move |(ps, mono)| {
                let n = ps.len();
                let sum = Sum { data_points: ps, aggregation_temporality: 2, is_monotonic: mono };
                (
                    Metric {
                        name: name.clone(),
                        unit: "By".into(),
                        data: Some(metric::Data::Sum(sum)),
                        ..Default::default()
                    },
                    n,
                )
            }
        }),
        hist_points.prop_map(move |ps| {
            // _sum if present, _count, one bucket per finite bound, +Inf.
            let n = ps.iter().map(|p| usize::from(p.sum.is_some()) + 1 + p.explicit_bounds.len() + 1).sum();
            let h = Histogram { data_points: ps, aggregation_temporality: 2 };
            (Metric { name: name.clone(), data: Some(metric::Data::Histogram(h)), ..Default::default() }, n)
        }),
    ]
}

fn arb_request() -> impl Strategy<Value = (ExportMetricsServiceRequest, usize)> {
    (0usize..5).prop_flat_map(|n| (0..n).map(arb_metric).collect::<Vec<_>>()).prop_map(|ms| {
        let expected = ms.iter().map(|(_, n)| n).sum();
        let metrics = ms.into_iter().map(|(m, _)| m).collect();
        let req = request(
            vec![kv("service.name", "svc")],
            Some(InstrumentationScope { name: "s".into(), ..Default::default() }),
            metrics,
        );
        (req, expected)
    })
}

/// A minimal OTLP/JSON writer for what `arb_request` generates, written from the spec rather
/// than with the decoder's own structs: 64-bit integers as strings (or numbers), non-finite
/// doubles as `"NaN"`/`"Infinity"`, enums as integers.
fn to_otlp_json(req: &ExportMetricsServiceRequest, ints_as_strings: bool) -> serde_json::Value {
    use serde_json::{json, Value};
    let int = |v: u64| if ints_as_strings { Value::String(v.to_string()) } else { json!(v) };
    let double = |v: f64| {
        if v.is_nan() {
            json!("NaN")
        } else if v.is_infinite() {
            json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            json!(v)
        }
    };
    let attrs = |kvs: &[KeyValue]| -> Value {
        kvs.iter()
            .map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => json!({"key": kv.key, "value": {"stringValue": s}}),
                other => panic!("writer does not handle {other:?}"),
            })
            .collect()
    };
    let number = |p: &NumberDataPoint| {
        let mut o = json!({"attributes": attrs(&p.attributes), "timeUnixNano": int(p.time_unix_nano)});
        match p.value {
            Some(number_data_point::Value::AsDouble(v)) => o["asDouble"] = double(v),
            Some(number_data_point::Value::AsInt(v)) => o["asInt"] = json!(v.to_string()),
            None => {}
        }
        o
    };
    let metric = |m: &Metric| {
        let mut o = json!({"name": m.name, "unit": m.unit, "description": m.description});
        match m.data.as_ref().expect("generated metrics have data") {
            metric::Data::Gauge(g) => {
                o["gauge"] = json!({"dataPoints": g.data_points.iter().map(number).collect::<Vec<_>>()})
            }
            metric::Data::Sum(s) => {
                o["sum"] = json!({
                    "dataPoints": s.data_points.iter().map(number).collect::<Vec<_>>(),
                    "aggregationTemporality": s.aggregation_temporality,
                    "isMonotonic": s.is_monotonic,
                })
            }
            metric::Data::Histogram(h) => {
                let points: Vec<Value> = h
                    .data_points
                    .iter()
                    .map(|p| {
                        let mut o = json!({
                            "attributes": attrs(&p.attributes),
                            "timeUnixNano": int(p.time_unix_nano),
                            "count": int(p.count),
                            "bucketCounts": p.bucket_counts.iter().map(|c| int(*c)).collect::<Vec<_>>(),
                            "explicitBounds": p.explicit_bounds.iter().map(|b| double(*b)).collect::<Vec<_>>(),
                        });
                        if let Some(s) = p.sum {
                            o["sum"] = double(s);
                        }
                        o
                    })
                    .collect();
                o["histogram"] = json!({"dataPoints": points, "aggregationTemporality": h.aggregation_temporality});
            }
            other => panic!("writer does not handle {other:?}"),
        }
        o
    };
    let rms: Vec<Value> = req
        .resource_metrics
        .iter()
        .map(|rm| {
            json!({
                "resource": {"attributes": attrs(&rm.resource.as_ref().unwrap().attributes)},
                "scopeMetrics": rm.scope_metrics.iter().map(|sm| json!({
                    "scope": {"name": sm.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default()},
                    "metrics": sm.metrics.iter().map(metric).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"resourceMetrics": rms})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn well_formed_requests_decode_with_the_expected_sample_count((req, expected) in arb_request(), ints_as_strings in any::<bool>()) {
        let d = decode_metrics_proto(&req.encode_to_vec(), &OtlpOptions::default(), &OtlpLimits::unlimited()).unwrap();
        // No target_info: the resource has only service.name.
        prop_assert_eq!(d.batch.sample_count(), expected);
        prop_assert_eq!(d.dropped, Dropped::default());
        for (labels, _) in d.batch.iter() {
            prop_assert_eq!(labels.get("job"), Some("svc"));
            prop_assert!(Labels::from_encoded(labels.as_bytes()).is_ok());
        }
        // The same request as OTLP/JSON decodes to the very same batch.
        let json = to_otlp_json(&req, ints_as_strings).to_string();
        let dj = decode_metrics_json(json.as_bytes(), &OtlpOptions::default(), &OtlpLimits::unlimited()).unwrap();
        prop_assert_eq!(render(&dj), render(&d));
    }

    #[test]
    fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let (o, l) = (OtlpOptions::default(), OtlpLimits::default());
        if let Err(e) = decode_metrics_proto(&body, &o, &l) {
            prop_assert!(!e.to_string().contains('\n'));
        }
        if let Err(e) = decode_metrics_json(&body, &o, &l) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn mutated_fixtures_never_panic(pos in 0usize..1183, byte in any::<u8>()) {
        let mut body = read("python_cumulative.pb");
        let i = pos % body.len();
        body[i] = byte;
        let _ = decode_metrics_proto(&body, &OtlpOptions::default(), &OtlpLimits::default());
    }
}

#[test]
fn many_colliding_attributes_merge_in_key_order() {
    // 30,000 keys translating to 10 names: merging must not be quadratic, and the order of the
    // joined values is the order of the original keys.
    let attrs: Vec<KeyValue> =
        (0..30_000).map(|i| kv(&format!("k{}{}", i % 10, [".", "-", "/"][i % 3]), "v")).collect();
    let req = request(vec![], None, vec![gauge("g", "", vec![number(1, 1.0, attrs)])]);
    let d = decode(&req, &OtlpOptions::default());
    let (labels, _) = d.batch.iter().next().unwrap();
    assert_eq!(labels.len(), 11);
    assert_eq!(labels.get("k0_").unwrap().len(), 3_000 * 2 - 1);
    let two = request(
        vec![],
        None,
        vec![gauge("g", "", vec![number(1, 1.0, vec![kv("x/y", "slash"), kv("x-y", "dash"), kv("x.y", "dot")])])],
    );
    assert_eq!(series(&decode(&two, &OtlpOptions::default())), [r#"g{x_y="dash;dot;slash"} 1"#]);
}
