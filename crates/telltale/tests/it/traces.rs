//! Traces end to end: real tracing clients against the real binary. The OpenTelemetry Python
//! SDK over OTLP/HTTP and OTLP/gRPC (every span read back byte-equal to what the SDK encodes),
//! the OpenTelemetry JS SDK's OTLP/JSON exporter, py-zipkin, and two instrumented Flask
//! services whose RED metrics, service graph, latency quantiles and trace-correlated logs are
//! checked against what the load script sent. Then trace by id with ranges it must ignore,
//! kill -9 during ingest, bad bodies, and the requests Grafana's Tempo and Jaeger data sources
//! send. `scripts/test.sh` installs the clients (the venv `.venv-test`, and `npm ci` in
//! `tests/clients/node`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use telltale_testkit::{eventually, free_port, TestServer};

use super::logs::{enc, logql};
use super::{json, start};

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/");

/// A server with RED metrics written every second and the OTLP/gRPC listener on `grpc`
/// (`host:port`, or empty for none: the default 4317 would clash between tests); `server` holds
/// more lines of the `server:` section.
fn config(grpc: &str, server: &str) -> String {
    format!(
        "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n{server}traces:\n  collect_interval: 1s\n  grpc_listen: \"{grpc}\"\n"
    )
}

fn python() -> PathBuf {
    let p = std::env::var_os("TELLTALE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-test/bin/python")));
    assert!(p.is_file(), "{} is missing: run scripts/test.sh, which creates the test venv", p.display());
    p
}

/// Runs `program` with `args`; returns the JSON its last stdout line holds.
fn run_json(program: &std::ffi::OsStr, args: &[String]) -> Value {
    let started = std::time::Instant::now();
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program:?}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?} failed ({}):\n{stdout}\n{stderr}", out.status);
    eprintln!("{:?} took {:?}", args.first(), started.elapsed());
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

/// Runs a Python client from `tests/clients/` with the server's URL first.
fn python_client(script: &str, s: &TestServer, args: &[&str]) -> Value {
    let mut all = vec![format!("{CLIENTS}{script}"), s.url().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    run_json(python().as_os_str(), &all)
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// Ids no other test or run repeats: the clock's nanoseconds mixed with `n`.
fn unique_ids(n: u64) -> (String, String) {
    let t = now_ns() as u64;
    let hi = t.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
    (format!("{hi:016x}{:016x}", t ^ n.wrapping_mul(0xff51_afd7_ed55_8ccd)), format!("{:016x}", (t ^ n) | 1))
}

/// One OTLP/JSON span: hex ids, `kind` as OTLP's number, times in ns.
fn span_json(trace: &str, id: &str, parent: &str, name: &str, kind: u8, start: i64, len: i64) -> Value {
    json!({
        "traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": kind,
        "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + len).to_string(),
        "attributes": [{"key": "test.case", "value": {"stringValue": name}}],
    })
}

/// An OTLP/JSON `ExportTraceServiceRequest` with `spans` under one resource and scope.
fn otlp_json(service: &str, spans: Vec<Value>) -> Vec<u8> {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "telltale-tests"}, "spans": spans}],
    }]})
    .to_string()
    .into_bytes()
}

/// Posts one trace of `names` (a root and its children) for `service`; returns the trace id.
fn post_trace(s: &TestServer, service: &str, names: &[&str], start: i64) -> (String, Vec<String>) {
    let (trace, _) = unique_ids(start as u64);
    let ids: Vec<String> = (0..names.len()).map(|i| unique_ids(i as u64 + 7).1).collect();
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let parent = if i == 0 { String::new() } else { ids[0].clone() };
            let kind = if i == 0 { 2 } else { 3 };
            span_json(&trace, &ids[i], &parent, name, kind, start + i as i64 * 1_000_000, 5_000_000)
        })
        .collect();
    let r = s.post("/v1/traces", "application/json", &otlp_json(service, spans));
    assert_eq!(r.status, 200, "{}", r.text());
    (trace, ids)
}

/// A Jaeger span's tag `key`, as `(type, value)`.
fn jaeger_tag<'a>(span: &'a Value, key: &str) -> Option<(&'a str, &'a Value)> {
    let tags = span["tags"].as_array()?;
    tags.iter().find(|t| t["key"] == key).map(|t| (t["type"].as_str().unwrap_or(""), &t["value"]))
}

/// The CHILD_OF parent of a Jaeger span ("" for a root).
fn jaeger_parent(span: &Value) -> String {
    let refs = span["references"].as_array().cloned().unwrap_or_default();
    refs.iter()
        .find(|r| r["refType"] == "CHILD_OF")
        .map(|r| r["spanID"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// One trace through Jaeger's `GET /api/traces/{id}`: `data[0]`.
fn jaeger_trace(s: &TestServer, id: &str) -> Value {
    let r = s.get(&format!("/api/traces/{id}"));
    assert_eq!(r.status, 200, "jaeger trace {id}: {}", r.text());
    let v = json(&r);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
    v["data"][0].clone()
}

/// Every span of a Tempo v2 JSON trace with its resource's `service.name`.
fn tempo_spans(s: &TestServer, id: &str) -> Vec<(String, Value)> {
    let r = s.get(&format!("/api/v2/traces/{id}"));
    assert_eq!(r.status, 200, "tempo trace {id}: {}", r.text());
    let v = json(&r);
    let mut out = Vec::new();
    for rs in v["trace"]["resourceSpans"].as_array().unwrap_or_else(|| panic!("no resourceSpans: {v}")) {
        let service = otlp_attrs(&rs["resource"]["attributes"])["service.name"].clone();
        for ss in rs["scopeSpans"].as_array().unwrap() {
            for span in ss["spans"].as_array().unwrap() {
                out.push((service.as_str().unwrap_or_default().to_string(), span.clone()));
            }
        }
    }
    out
}

/// OTLP/JSON attributes as a map of plain JSON values (int64 strings become numbers).
fn otlp_attrs(attrs: &Value) -> BTreeMap<String, Value> {
    fn plain(v: &Value) -> Value {
        if let Some(s) = v.get("stringValue") {
            s.clone()
        } else if let Some(i) = v.get("intValue") {
            json!(i.as_str().map(|s| s.parse::<i64>().unwrap()).or(i.as_i64()))
        } else if let Some(d) = v.get("doubleValue") {
            d.clone()
        } else if let Some(b) = v.get("boolValue") {
            b.clone()
        } else if let Some(a) = v.get("arrayValue") {
            Value::Array(a["values"].as_array().map(|a| a.iter().map(plain).collect()).unwrap_or_default())
        } else {
            json!({"unknown": v})
        }
    }
    let list = attrs.as_array().cloned().unwrap_or_default();
    list.iter().map(|kv| (kv["key"].as_str().unwrap().to_string(), plain(&kv["value"]))).collect()
}

/// The one number a PromQL instant query answers, `None` while it has no series.
fn promql(s: &TestServer, q: &str) -> Option<f64> {
    let r = s.get(&format!("/api/v1/query?query={}", enc(q)));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v = json(&r);
    v["data"]["result"][0]["value"][1].as_str().and_then(|x| x.parse().ok())
}

/// Waits until `q` answers `want`; panics with the last answer otherwise.
fn wait_promql(s: &TestServer, q: &str, want: f64) {
    let mut last = None;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(&format!("{q} == {want}"), Duration::from_millis(250), || {
            last = promql(s, q);
            (last == Some(want)).then_some(())
        })
    }));
    assert!(waited.is_ok(), "{q}: last answer {last:?}, want {want}");
}

// ---------------------------------------------------------------------------------------------
// 1, 2: the OpenTelemetry Python SDK, OTLP/HTTP protobuf and OTLP/gRPC

/// Runs otlp_traces.py and checks its verdict: every span read back from Tempo's protobuf API
/// equals, byte for byte, what the SDK's encoder makes of it, with its resource and scope.
fn python_sdk_round_trip(s: &TestServer, n: usize, protocol: &str, compression: &str, grpc: &str) -> Value {
    let v = python_client("otlp_traces.py", s, &[&n.to_string(), protocol, compression, grpc]);
    assert_eq!(v["traces"].as_array().map(Vec::len), Some(n), "{v}");
    assert_eq!(v["spans"], n * 5, "{v}");
    assert_eq!(v["mismatch_count"], 0, "{protocol} {compression}: spans read back differ:\n{:#}", v["mismatches"]);
    assert_eq!(v["compared"], n * 5, "{v}");
    v
}

/// The JSON reads of trace 0 (an error) and trace 1 (linked to trace 0's root) of a run.
fn python_sdk_json_reads(s: &TestServer, run: &Value) {
    let service = run["service"].as_str().unwrap();
    let (t0, t1) = (run["traces"][0].as_str().unwrap(), run["traces"][1].as_str().unwrap());
    let trace = jaeger_trace(s, t0);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 5, "{trace}");
    let by_name = |name: &str| spans.iter().find(|sp| sp["operationName"] == name).unwrap_or_else(|| panic!("{name}"));
    let root = by_name("GET /checkout/0");
    assert_eq!(trace["processes"][root["processID"].as_str().unwrap()]["serviceName"], service);
    for (key, ty, value) in [
        ("order.id", "int64", json!(0)),
        ("order.total", "float64", json!(12.5)),
        ("order.gift", "bool", json!(true)),
        ("order.note", "string", json!("ünïcode ✓ \"quoted\"")),
        ("span.kind", "string", json!("server")),
        ("error", "bool", json!(true)),
        ("otel.status_code", "string", json!("ERROR")),
        ("otel.status_description", "string", json!("checkout failed")),
        ("otel.scope.name", "string", json!("checkout")),
    ] {
        assert_eq!(jaeger_tag(root, key), Some((ty, &value)), "tag {key} of {root}");
    }
    assert_eq!(jaeger_parent(root), "");
    let logs = root["logs"].as_array().unwrap();
    assert!(logs.iter().any(|l| l["fields"][0]["value"] == "cache miss"), "{root}");
    let client = by_name("charge-card");
    assert_eq!(jaeger_parent(client), root["spanID"].as_str().unwrap());
    let validate = by_name("validate");
    assert_eq!(jaeger_parent(validate), client["spanID"].as_str().unwrap());
    let exception = &validate["logs"][0]["fields"];
    let field = |k: &str| exception.as_array().unwrap().iter().find(|f| f["key"] == k).map(|f| f["value"].clone());
    assert_eq!(field("event"), Some(json!("exception")), "{validate}");
    assert_eq!(field("exception.type"), Some(json!("ValueError")), "{validate}");
    assert_eq!(field("exception.message"), Some(json!("card 0 declined ✗")), "{validate}");
    // Trace 1's client span links to trace 0's root: a FOLLOWS_FROM reference.
    let next = jaeger_trace(s, t1);
    let linked = next["spans"].as_array().unwrap().iter().find(|sp| sp["operationName"] == "charge-card").unwrap();
    let follows: Vec<&Value> =
        linked["references"].as_array().unwrap().iter().filter(|r| r["refType"] == "FOLLOWS_FROM").collect();
    assert_eq!(follows.len(), 1, "{linked}");
    assert_eq!((&follows[0]["traceID"], &follows[0]["spanID"]), (&json!(t0), &root["spanID"]), "{linked}");

    // Tempo v2 JSON: kinds and status as OTLP numbers, arrays as arrayValue, the scope.
    let spans = tempo_spans(s, t0);
    assert_eq!(spans.len(), 5);
    let (svc, root) = spans.iter().find(|(_, sp)| sp["name"] == "GET /checkout/0").unwrap();
    assert_eq!(svc, service);
    assert_eq!((&root["kind"], &root["status"]["code"]), (&json!(2), &json!(2)), "{root}");
    let attrs = otlp_attrs(&root["attributes"]);
    assert_eq!(attrs["order.items"], json!(["apple", "pear"]));
    assert_eq!(attrs["order.counts"], json!([1, 2, 3]));
    assert_eq!(attrs["order.weights"], json!([0.5, 1.25]));
    assert_eq!(attrs["order.flags"], json!([true, false]));
    assert_eq!(attrs["order.id"], json!(0));

    // Search: every third trace is an error; both APIs find exactly those.
    let n = run["traces"].as_array().unwrap().len();
    let errors: BTreeSet<String> = (0..n).step_by(3).map(|i| run["traces"][i].as_str().unwrap().to_string()).collect();
    let q = format!("{{ resource.service.name = \"{service}\" && status = error && kind = server }}");
    let r = s.get(&format!("/api/search?q={}&limit=1000", enc(&q)));
    assert_eq!(r.status, 200, "{}", r.text());
    let found: BTreeSet<String> =
        json(&r)["traces"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap().to_string()).collect();
    assert_eq!(found, errors, "TraceQL {q}");
    let r = s.get(&format!("/api/traces?service={service}&tags={}&limit=1000", enc(r#"{"error":"true"}"#)));
    assert_eq!(r.status, 200, "{}", r.text());
    let found: BTreeSet<String> =
        json(&r)["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap().to_string()).collect();
    assert_eq!(found, errors, "Jaeger search for errors");
}

#[test]
fn python_sdk_otlp_http_protobuf_spans_read_back_byte_equal() {
    let s = start(&config("", ""));
    let plain = python_sdk_round_trip(&s, 30, "http", "none", "");
    let gzip = python_sdk_round_trip(&s, 30, "http", "gzip", "");
    python_sdk_json_reads(&s, &plain);
    python_sdk_json_reads(&s, &gzip);
}

#[test]
fn python_sdk_otlp_grpc_spans_read_back_byte_equal() {
    let grpc = format!("127.0.0.1:{}", free_port());
    let s = start(&config(&grpc, ""));
    let plain = python_sdk_round_trip(&s, 6, "grpc", "none", &grpc);
    let gzip = python_sdk_round_trip(&s, 6, "grpc", "gzip", &grpc);
    python_sdk_json_reads(&s, &plain);
    python_sdk_json_reads(&s, &gzip);
}

// ---------------------------------------------------------------------------------------------
// 3: the OpenTelemetry JS SDK, OTLP/HTTP JSON

#[test]
fn js_sdk_otlp_http_json_spans_read_back() {
    let dir = PathBuf::from(format!("{CLIENTS}node"));
    assert!(
        dir.join("node_modules/@opentelemetry/sdk-trace-base").is_dir(),
        "the Node test clients are not installed: run scripts/test.sh (npm ci in {})",
        dir.display()
    );
    let s = start(&config("", ""));
    let script = dir.join("otlp_traces.js").display().to_string();
    let v = run_json(std::ffi::OsStr::new("node"), &[script, s.url().to_string(), "12".into()]);
    let traces = v["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 12, "{v}");
    for t in traces {
        let id = t["trace_id"].as_str().unwrap();
        let got = tempo_spans(&s, id);
        assert_eq!(got.len(), 3, "{id}: {got:?}");
        for want in t["spans"].as_array().unwrap() {
            let (service, span) = got
                .iter()
                .find(|(_, sp)| sp["spanId"] == want["span_id"])
                .unwrap_or_else(|| panic!("span {} of {id} not read back", want["span_id"]));
            assert_eq!(service, "node-shop");
            assert_eq!(span["name"], want["name"]);
            assert_eq!(span["parentSpanId"].as_str().unwrap_or(""), want["parent_span_id"].as_str().unwrap());
            let kind = ["", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"]
                [span["kind"].as_u64().unwrap() as usize];
            assert_eq!(kind, want["kind"], "{span}");
            let want_attrs: BTreeMap<String, Value> =
                want["attributes"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_eq!(otlp_attrs(&span["attributes"]), want_attrs, "{span}");
        }
    }
    // Trace 0's database span is an error; Jaeger's model says so, the process carries the resource.
    let t0 = jaeger_trace(&s, traces[0]["trace_id"].as_str().unwrap());
    let db = t0["spans"].as_array().unwrap().iter().find(|sp| sp["operationName"] == "SELECT carts").unwrap();
    assert_eq!(jaeger_tag(db, "error"), Some(("bool", &json!(true))), "{db}");
    assert_eq!(jaeger_tag(db, "otel.status_description"), Some(("string", &json!("connection reset"))));
    let process = &t0["processes"][db["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], "node-shop");
    assert!(process["tags"].as_array().unwrap().iter().any(|t| t["key"] == "host.name" && t["value"] == "node-box"));
    let ops = json(&s.get("/api/services/node-shop/operations"));
    let mut names: Vec<&str> = ops["data"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["GET /cart/0", "GET /cart/1", "GET /cart/2", "SELECT carts", "render"]);
}

// ---------------------------------------------------------------------------------------------
// 4: Zipkin

#[test]
fn py_zipkin_v2_json_spans_read_back_through_jaeger() {
    let s = start(&config("", ""));
    let v = python_client("zipkin_spans.py", &s, &["6"]);
    let sent = v["spans"].as_array().unwrap();
    assert_eq!(sent.len(), 24, "{v}");
    let mut traces: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for sp in sent {
        traces.entry(sp["traceId"].as_str().unwrap()).or_default().push(sp);
    }
    assert_eq!(traces.len(), 6);
    assert!(traces.keys().any(|t| t.len() == 16) && traces.keys().any(|t| t.len() == 32), "64- and 128-bit ids");
    for (id, want) in &traces {
        let trace = jaeger_trace(&s, id);
        assert_eq!(trace["traceID"], *id, "Jaeger prints the id as sent");
        let got = trace["spans"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{trace}");
        for w in want {
            let g = got.iter().find(|g| g["spanID"] == w["id"]).unwrap_or_else(|| panic!("{w} not in {trace}"));
            assert_eq!(g["operationName"], w["name"], "{g}");
            assert_eq!(trace["processes"][g["processID"].as_str().unwrap()]["serviceName"], w["service"], "{g}");
            assert_eq!(jaeger_parent(g), w["parentId"].as_str().unwrap_or(""), "{g}");
            if let Some(kind) = w["kind"].as_str() {
                assert_eq!(jaeger_tag(g, "span.kind").map(|t| t.1.clone()), Some(json!(kind.to_lowercase())), "{g}");
            }
        }
        let db = got.iter().find(|g| g["operationName"] == "db select").unwrap();
        assert!(jaeger_tag(db, "db.statement").is_some_and(|t| t.1.as_str().unwrap().starts_with("select ")), "{db}");
        let root = got.iter().find(|g| g["operationName"] == "GET /orders").unwrap();
        assert_eq!(root["logs"][0]["fields"][0]["value"], "order validated", "{root}");
    }
    let services = json(&s.get("/api/services"));
    let mut services: Vec<&str> = services["data"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    services.sort();
    assert_eq!(services, ["inventory", "web"]);
    let ops = json(&s.get("/api/services/web/operations"));
    let mut ops: Vec<&str> = ops["data"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    ops.sort();
    assert_eq!(ops, ["GET /orders", "call inventory"]);
}

// ---------------------------------------------------------------------------------------------
// 5: two instrumented Flask services: RED metrics, service graph, quantiles, logs by trace

/// The exact `q` quantile of `sorted` (nearest rank).
fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The p50, p95 and p99 in seconds of `service`'s server spans from the RED generator's
/// native (exponential) histograms, `GET /api/v1/services/latency`. The quantile check within
/// 2 % of the exact values goes through here: when the TSDB stores native histograms, point
/// this at `histogram_quantile(q, sum(rate(traces_spanmetrics_latency{service=...}[5m])))`.
fn native_histogram_quantiles(s: &TestServer, service: &str) -> (f64, f64, f64) {
    let r = s.get(&format!("/api/v1/services/latency?service={service}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    let g = &v["data"]["groups"][0];
    let f = |k: &str| g[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"));
    (f("p50"), f("p95"), f("p99"))
}

#[test]
fn instrumented_flask_services_give_red_metrics_service_graph_quantiles_and_logs_by_trace() {
    let s = start(&config("", ""));
    let v = python_client("flask_load.py", &s, &["300"]);
    let (sent, errors) = (v["sent"].as_f64().unwrap(), v["errors"].as_f64().unwrap());
    assert_eq!((sent, errors), (300.0, 30.0), "the load script's own count");
    let requests = v["requests"].as_array().unwrap();

    let front = r#"traces_spanmetrics_calls_total{service="front",span_kind="SPAN_KIND_SERVER"}"#;
    wait_promql(&s, &format!("sum({front})"), sent);
    let failed = r#"{service="front",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}"#;
    wait_promql(&s, &format!("sum(traces_spanmetrics_calls_total{failed})"), errors);
    wait_promql(&s, r#"sum(traces_spanmetrics_calls_total{service="back",span_kind="SPAN_KIND_SERVER"})"#, sent);
    wait_promql(&s, r#"sum(traces_spanmetrics_calls_total{service="front",span_kind="SPAN_KIND_CLIENT"})"#, sent);
    wait_promql(&s, r#"sum(traces_service_graph_request_total{client="front",server="back"})"#, sent);
    wait_promql(&s, r#"sum(traces_service_graph_request_failed_total{client="front",server="back"})"#, errors);
    let r = s.get(&format!("/api/v1/series?match[]={}", enc("traces_service_graph_request_total")));
    let edges = json(&r)["data"].clone();
    assert!(edges.as_array().unwrap().iter().all(|e| e.get("connection_type").is_none()), "plain HTTP: {edges}");

    // Every trace read back: front's server span, its client span, back's server span under it.
    let mut durations = Vec::new();
    for req in requests {
        let id = req["trace_id"].as_str().unwrap();
        let spans = tempo_spans(&s, id);
        let find = |service: &str, kind: u64| {
            spans
                .iter()
                .find(|(svc, sp)| svc == service && sp["kind"] == kind)
                .map(|(_, sp)| sp)
                .unwrap_or_else(|| panic!("trace {id}: no kind {kind} span of {service}: {spans:?}"))
        };
        let (server, client, back) = (find("front", 2), find("front", 3), find("back", 2));
        assert_eq!(client["parentSpanId"], server["spanId"], "{id}");
        assert_eq!(back["parentSpanId"], client["spanId"], "{id}");
        let error = req["status"] == 500;
        assert_eq!(server["status"]["code"] == 2, error, "{id}: {server}");
        assert_eq!(back["status"]["code"] == 2, error, "{id}: {back}");
        let ns = |k: &str| server[k].as_str().unwrap().parse::<i64>().unwrap();
        durations.push((ns("endTimeUnixNano") - ns("startTimeUnixNano")) as f64 / 1e9);
    }
    durations.sort_by(f64::total_cmp);
    let exact: Vec<f64> = [0.5, 0.95, 0.99].iter().map(|q| exact_quantile(&durations, *q)).collect();

    // Classic buckets (powers of two from 2 ms) place p99 only within its bucket: a loose check.
    let q = r#"histogram_quantile(0.99, sum by (le) (rate(traces_spanmetrics_latency_bucket{service="front",span_kind="SPAN_KIND_SERVER"}[5m])))"#;
    let classic = promql(&s, q).unwrap_or_else(|| panic!("{q}: no answer"));
    assert!(classic > exact[2] / 2.0 && classic < exact[2] * 2.0, "{q} = {classic}, exact p99 {}", exact[2]);
    let (p50, p95, p99) = native_histogram_quantiles(&s, "front");
    for (name, got, want) in [("p50", p50, exact[0]), ("p95", p95, exact[1]), ("p99", p99, exact[2])] {
        assert!((got - want).abs() <= want * 0.02, "{name}: native histogram {got} s, exact {want} s");
    }

    // Exemplars point at traces the services sent.
    let sent_ids: BTreeSet<&str> = requests.iter().map(|r| r["trace_id"].as_str().unwrap()).collect();
    let end = now_ns() / 1_000_000_000 + 60;
    let r = s.get(&format!(
        "/api/v1/query_exemplars?query={}&start={}&end={end}",
        enc(r#"traces_spanmetrics_latency_bucket{service="front"}"#),
        end - 600
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let ex = json(&r);
    let ex_ids: Vec<&str> = ex["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|sr| sr["exemplars"].as_array().unwrap().iter())
        .map(|e| e["labels"]["trace_id"].as_str().unwrap_or(""))
        .collect();
    assert!(!ex_ids.is_empty() && ex_ids.iter().all(|t| sent_ids.contains(t)), "{ex}");

    // Logs: one line per request, found by its trace id.
    for req in [&requests[3], &requests[4]] {
        let id = req["trace_id"].as_str().unwrap();
        let q = format!(r#"{{service_name="front"}} | trace_id="{id}""#);
        let lines = eventually(&q, Duration::from_millis(200), || {
            let got = logql(&s, &q);
            (!got.is_empty()).then_some(got)
        });
        let text: Vec<&str> = lines.iter().map(|l| l.2.as_str()).collect();
        assert_eq!(text, [format!("order {} handled status={}", req["i"], req["status"])], "{q}");
    }
    assert_eq!(logql(&s, r#"{service_name="front"}"#).len(), 300);
}

// ---------------------------------------------------------------------------------------------
// 6: trace by id with a range it must ignore

#[test]
fn trace_by_id_ignores_a_missing_future_or_misunit_range() {
    let s = start(&config("", ""));
    let at = now_ns() - 2_000_000_000;
    let (id, span_ids) = post_trace(&s, "ranged", &["GET /ranged", "lookup"], at);
    let future_s = at / 1_000_000_000 + 86_400 * 30;
    let (at_ms, at_s) = (at / 1_000_000, at / 1_000_000_000);
    let jaeger_ranges = [
        String::new(),
        format!("?start={}&end={}", future_s * 1_000_000, (future_s + 3600) * 1_000_000),
        format!("?start={}&end={}", at_ms - 60_000, at_ms + 60_000),
        format!("?start={}&end={}", (at_s - 3600) * 1_000_000, (at_s - 1800) * 1_000_000),
    ];
    for range in &jaeger_ranges {
        let r = s.get(&format!("/api/traces/{id}{range}"));
        assert_eq!(r.status, 200, "jaeger {range}: {}", r.text());
        let got: BTreeSet<String> = json(&r)["data"][0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sp| sp["spanID"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, span_ids.iter().cloned().collect(), "jaeger {range}");
    }
    let tempo_ranges = [
        String::new(),
        format!("?start={future_s}&end={}", future_s + 3600),
        format!("?start={}&end={}", at_ms - 60_000, at_ms + 60_000),
        format!("?start={}&end={}", at_s - 7200, at_s - 3600),
    ];
    for range in &tempo_ranges {
        let r = s.get(&format!("/api/v2/traces/{id}{range}"));
        assert_eq!(r.status, 200, "tempo v2 {range}: {}", r.text());
        let spans = json(&r)["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap().len();
        assert_eq!(spans, 2, "tempo v2 {range}");
        let r = s.request("GET", &format!("/api/traces/{id}{range}"), &[("accept", "application/protobuf")], &[]);
        assert_eq!(r.status, 200, "tempo v1 protobuf {range}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/protobuf"));
        assert!(r.body.len() > 40, "tempo v1 protobuf {range}: {} bytes", r.body.len());
    }
    // Jaeger's search by trace id (traceID=) ignores the range too.
    let future_us = future_s * 1_000_000;
    let r = s.get(&format!("/api/traces?traceID={id}&start={future_us}&end={}", future_us + 1));
    assert_eq!(json(&r)["data"].as_array().map(Vec::len), Some(1), "{}", r.text());
    // An unknown id is a 404 on both, a malformed one a 400.
    let (unknown, _) = unique_ids(42);
    assert_eq!(s.get(&format!("/api/traces/{unknown}")).status, 404);
    assert_eq!(s.get(&format!("/api/v2/traces/{unknown}")).status, 404);
    assert_eq!(s.get("/api/traces/not-hex").status, 400);
    assert_eq!(s.get("/api/v2/traces/not-hex").status, 400);
}

// ---------------------------------------------------------------------------------------------
// 7: kill -9 during ingest

#[test]
fn acknowledged_spans_survive_kill_9_during_ingest() {
    let mut s = start(&config("", ""));
    const SENDERS: u64 = 2;
    let (acks_tx, acks_rx) = mpsc::channel::<(String, Vec<String>)>();
    let mut acked: Vec<(String, Vec<String>)> = Vec::new();
    std::thread::scope(|scope| {
        for w in 0..SENDERS {
            let (s, tx) = (&s, acks_tx.clone());
            scope.spawn(move || {
                for i in 0..100_000u64 {
                    let (trace, _) = unique_ids(w << 32 | i);
                    let ids: Vec<String> = (0..3).map(|k| unique_ids(w << 40 | i << 2 | k).1).collect();
                    let start = now_ns();
                    let spans = (0..3)
                        .map(|k| {
                            let parent = if k == 0 { "" } else { &ids[0] };
                            span_json(&trace, &ids[k], parent, &format!("op{k}"), 2, start, 1_000_000)
                        })
                        .collect();
                    let body = otlp_json(&format!("crash-{w}"), spans);
                    match s.try_request("POST", "/v1/traces", &[("content-type", "application/json")], &body) {
                        Ok(r) if r.status == 200 => {
                            if tx.send((trace, ids)).is_err() {
                                return;
                            }
                        }
                        // After the kill: refused or reset. Nothing more is acknowledged.
                        _ => return,
                    }
                }
            });
        }
        drop(acks_tx);
        while let Ok(ack) = acks_rx.recv() {
            acked.push(ack);
            if acked.len() == 300 {
                s.signal("KILL");
            }
        }
    });
    s.kill9();
    s.restart();
    assert!(acked.len() >= 300);
    let mut lost = Vec::new();
    for (trace, ids) in &acked {
        let r = s.get(&format!("/api/v2/traces/{trace}"));
        let got: BTreeSet<String> =
            if r.status == 200 { tempo_spans_of(&json(&r)).into_iter().collect() } else { BTreeSet::new() };
        for id in ids {
            if !got.contains(id) {
                lost.push(format!("{trace}/{id}"));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged spans lost, e.g. {:?}",
        lost.len(),
        acked.len() * 3,
        &lost[..lost.len().min(5)]
    );
}

/// The span ids of a Tempo v2 JSON answer.
fn tempo_spans_of(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rs in v["trace"]["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for sp in ss["spans"].as_array().into_iter().flatten() {
                out.push(sp["spanId"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 8: bad bodies

/// `google.rpc.Status { int32 code = 1; string message = 2; }` read from protobuf.
fn rpc_status(body: &[u8]) -> (u64, String) {
    fn varint(b: &[u8], at: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[*at];
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let (mut at, mut code, mut message) = (0, 0, String::new());
    while at < body.len() {
        let key = varint(body, &mut at);
        match (key >> 3, key & 7) {
            (1, 0) => code = varint(body, &mut at),
            (_, 0) => {
                varint(body, &mut at);
            }
            (field, 2) => {
                let len = varint(body, &mut at) as usize;
                if field == 2 {
                    message = String::from_utf8(body[at..at + len].to_vec()).expect("utf-8 message");
                }
                at += len;
            }
            other => panic!("unexpected wire type {other:?} in {body:?}"),
        }
    }
    (code, message)
}

fn one_line(what: &str, reason: &str) {
    assert!(!reason.trim().is_empty() && !reason.contains('\n'), "{what}: reason {reason:?} is not one line");
}

#[test]
fn bad_trace_bodies_get_4xx_with_a_one_line_reason() {
    let s = start(&config("", "  max_body_size: 4KiB\n"));
    // Garbage protobuf: 400 with a google.rpc.Status in protobuf.
    let r = s.post("/v1/traces", "application/x-protobuf", b"\x0a\xff\xff\xff\xff\x0fnot a span");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    let (code, message) = rpc_status(&r.body);
    assert_eq!(code, 3, "INVALID_ARGUMENT: {message}");
    one_line("garbage protobuf", &message);
    assert!(message.contains("protobuf"), "{message}");
    // Bad JSON: 400 with the Status as JSON.
    for body in [&b"{\"resourceSpans\": ["[..], b"[1, 2]", br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AAECAwQFBgcICQoLDA0ODw==","spanId":"0001020304050607","name":"x"}]}]}]}"#] {
        let r = s.post("/v1/traces", "application/json", body);
        assert_eq!(r.status, 400, "{}: {}", String::from_utf8_lossy(body), r.text());
        let v = json(&r);
        one_line("bad json", v["message"].as_str().unwrap_or_else(|| panic!("no message: {v}")));
    }
    // Wrong content type: 415, on both intake paths.
    for (path, ct) in [("/v1/traces", "text/plain"), ("/v1/traces", "application/xml"), ("/api/v2/spans", "text/plain")]
    {
        let r = s.post(path, ct, b"{}");
        assert_eq!(r.status, 415, "{path} {ct}: {}", r.text());
        one_line("wrong content type", &reason(&r));
    }
    // Over the size limit, plain and as a gzip body that inflates past it: 413.
    let (trace, _) = unique_ids(1);
    // Only a few KiB over: the server answers 413 from Content-Length without reading the body,
    // and this test's client (ureq), which writes a whole body before reading, gets a broken pipe
    // on a large one (curl and Python's requests read the 413 either way).
    let big: Vec<Value> =
        (0..20u64).map(|i| span_json(&trace, &unique_ids(i).1, "", &"x".repeat(100), 1, now_ns(), 1000)).collect();
    let body = otlp_json("big", big);
    assert!(body.len() > 4 * 1024 && body.len() < 16 * 1024, "{}", body.len());
    let r = s.post("/v1/traces", "application/json", &body);
    assert_eq!(r.status, 413, "{}", r.text());
    one_line("too large", &reason(&r));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &body).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 4 * 1024);
    let r = s.request("POST", "/v1/traces", &[("content-type", "application/json"), ("content-encoding", "gzip")], &gz);
    assert_eq!(r.status, 413, "{}", r.text());
    // Zipkin garbage: 400, JSON and protobuf.
    for (ct, body) in [
        ("application/json", &b"not json at all"[..]),
        ("application/json", b"{\"id\": 1}"),
        ("application/x-protobuf", b"\x0a\xff\xff\xff\xff\x0f"),
    ] {
        let r = s.post("/api/v2/spans", ct, body);
        assert_eq!(r.status, 400, "zipkin {ct}: {}", r.text());
        one_line("zipkin garbage", &reason(&r));
    }
    // Nothing of it was stored.
    let services = json(&s.get("/api/services"));
    assert_eq!(services["data"], json!([]), "{services}");
}

/// The reason a 4xx gives: `message` or `error` of a JSON body, else the text.
fn reason(r: &telltale_testkit::Response) -> String {
    let text = r.text();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => ["message", "error", "errors"]
            .iter()
            .find_map(|k| match &v[k] {
                Value::String(s) => Some(s.clone()),
                Value::Array(a) if !a.is_empty() => Some(a[0]["msg"].as_str().unwrap_or(&a[0].to_string()).to_string()),
                _ => None,
            })
            .unwrap_or(text),
        Err(_) => text.trim_end_matches('\n').to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// 9: Grafana's Tempo and Jaeger data sources, replayed (Grafana is not packaged for this machine)

/// Every key path of `v` with its JSON type (array elements as `[]`), as in prometheus.rs.
fn shape(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.insert(format!("{path}: {kind}"));
    match v {
        Value::Object(m) => {
            if path.ends_with("serviceStats") || path.ends_with("processes") {
                // Keyed by data (service names, process ids): the values' shape only.
                for x in m.values() {
                    shape(x, &format!("{path}.*"), out);
                }
                return;
            }
            for (k, x) in m {
                shape(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// Asserts `res` is a 200 JSON answer whose shape holds every line of `want`.
fn assert_shape(what: &str, res: &telltale_testkit::Response, want: &[&str]) -> Value {
    assert_eq!(res.status, 200, "{what}: {}", res.text());
    assert!(res.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{what}: {:?}", res.headers);
    let v = json(res);
    let mut got = BTreeSet::new();
    shape(&v, "", &mut got);
    let missing: Vec<&&str> = want.iter().filter(|w| !got.contains(**w)).collect();
    assert!(missing.is_empty(), "{what}: missing {missing:?}\ngot {got:#?}");
    v
}

/// Two services' traces for the data sources to find: `grafana-app` calling `grafana-db`.
fn grafana_fixture(s: &TestServer) -> (String, i64) {
    let at = now_ns() - 5_000_000_000;
    let (trace, _) = unique_ids(99);
    let (root, child, db) = (unique_ids(1).1, unique_ids(2).1, unique_ids(3).1);
    let mut app = vec![
        span_json(&trace, &root, "", "GET /api/items", 2, at, 40_000_000),
        span_json(&trace, &child, &root, "SELECT items", 3, at + 1_000_000, 30_000_000),
    ];
    app[0]["attributes"] = json!([{"key": "http.route", "value": {"stringValue": "/api/items"}}]);
    app[1]["status"] = json!({"code": 2, "message": "timeout"});
    assert_eq!(s.post("/v1/traces", "application/json", &otlp_json("grafana-app", app)).status, 200);
    let dbs = vec![span_json(&trace, &db, &child, "query items", 2, at + 2_000_000, 25_000_000)];
    assert_eq!(s.post("/v1/traces", "application/json", &otlp_json("grafana-db", dbs)).status, 200);
    (trace, at)
}

#[test]
fn grafana_tempo_data_source_requests() {
    let s = start(&config("", ""));
    let (trace, at) = grafana_fixture(&s);
    let (start_s, end_s) = (at / 1_000_000_000 - 3600, at / 1_000_000_000 + 3600);
    // "Save & test" and the version probe.
    let r = s.get("/api/echo");
    assert_eq!((r.status, r.text().as_str()), (200, "echo"));
    let v = assert_shape("buildinfo", &s.get("/api/status/buildinfo"), &[".version: string", ".revision: string"]);
    assert!(v["version"].as_str().unwrap().starts_with("2."), "{v}");
    // Trace by id: Grafana asks for protobuf at v2 (TraceByIDResponse: field 1 is the Trace).
    let r = s.request("GET", &format!("/api/v2/traces/{trace}"), &[("accept", "application/protobuf")], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/protobuf"));
    assert_eq!(r.body[0], 0x0a, "field 1, length-delimited");
    assert_shape(
        "trace by id v2 json",
        &s.get(&format!("/api/v2/traces/{trace}?start={start_s}&end={end_s}")),
        &[
            ".trace.resourceSpans[].resource.attributes[].key: string",
            ".trace.resourceSpans[].resource.attributes[].value.stringValue: string",
            ".trace.resourceSpans[].scopeSpans[].scope.name: string",
            ".trace.resourceSpans[].scopeSpans[].spans[].traceId: string",
            ".trace.resourceSpans[].scopeSpans[].spans[].spanId: string",
            ".trace.resourceSpans[].scopeSpans[].spans[].parentSpanId: string",
            ".trace.resourceSpans[].scopeSpans[].spans[].name: string",
            ".trace.resourceSpans[].scopeSpans[].spans[].kind: number",
            ".trace.resourceSpans[].scopeSpans[].spans[].startTimeUnixNano: string",
            ".trace.resourceSpans[].scopeSpans[].spans[].endTimeUnixNano: string",
            ".trace.resourceSpans[].scopeSpans[].spans[].status: object",
        ],
    );
    // The search tab: TraceQL with the time picker's range (seconds), limit and spans per set.
    let q = enc(r#"{resource.service.name="grafana-app" && status=error}"#);
    let v = assert_shape(
        "traceql search",
        &s.get(&format!("/api/search?q={q}&limit=20&spss=3&start={start_s}&end={end_s}")),
        &[
            ".traces[].traceID: string",
            ".traces[].rootServiceName: string",
            ".traces[].rootTraceName: string",
            ".traces[].startTimeUnixNano: string",
            ".traces[].durationMs: number",
            ".traces[].spanSets[].spans[].spanID: string",
            ".traces[].spanSets[].spans[].startTimeUnixNano: string",
            ".traces[].spanSets[].spans[].durationNanos: string",
            ".traces[].spanSets[].matched: number",
            ".traces[].spanSet.matched: number",
            ".traces[].serviceStats.*.spanCount: number",
            ".metrics.inspectedTraces: number",
        ],
    );
    assert_eq!(v["traces"][0]["traceID"], json!(trace));
    assert_eq!(
        (&v["traces"][0]["rootServiceName"], &v["traces"][0]["rootTraceName"]),
        (&json!("grafana-app"), &json!("GET /api/items"))
    );
    assert_eq!(v["traces"][0]["durationMs"], 40);
    // The query editor's autocomplete: scopes and tags, then values, narrowed by the query so far.
    let v = assert_shape(
        "tags v2",
        &s.get(&format!("/api/v2/search/tags?scope=all&start={start_s}&end={end_s}")),
        &[".scopes[].name: string", ".scopes[].tags[]: string"],
    );
    let scope = |name: &str| v["scopes"].as_array().unwrap().iter().find(|x| x["name"] == name).cloned();
    assert!(scope("resource").is_some_and(|r| r["tags"].as_array().unwrap().contains(&json!("service.name"))), "{v}");
    assert!(scope("span").is_some_and(|r| r["tags"].as_array().unwrap().contains(&json!("http.route"))), "{v}");
    assert!(scope("intrinsic").is_some(), "{v}");
    let v = assert_shape(
        "tag values v2",
        &s.get(&format!("/api/v2/search/tag/resource.service.name/values?q={}&start={start_s}&end={end_s}", enc("{}"))),
        &[".tagValues[].type: string", ".tagValues[].value: string"],
    );
    let mut values: Vec<&str> =
        v["tagValues"].as_array().unwrap().iter().map(|x| x["value"].as_str().unwrap()).collect();
    values.sort();
    assert_eq!(values, ["grafana-app", "grafana-db"]);
    let v = assert_shape("span names", &s.get("/api/v2/search/tag/name/values"), &[".tagValues[].value: string"]);
    assert_eq!(v["tagValues"].as_array().unwrap().len(), 3, "{v}");
    let v =
        assert_shape("intrinsic status", &s.get("/api/v2/search/tag/status/values"), &[".tagValues[].type: string"]);
    assert!(v["tagValues"].as_array().unwrap().iter().any(|x| x["value"] == "error"), "{v}");
    // Older Grafana: v1 tags and values, and the legacy search with tags= and durations.
    let v = assert_shape("tags v1", &s.get("/api/search/tags"), &[".tagNames[]: string"]);
    assert!(v["tagNames"].as_array().unwrap().contains(&json!("http.route")), "{v}");
    assert_shape("tag values v1", &s.get("/api/search/tag/service.name/values"), &[".tagValues[]: string"]);
    let v = assert_shape(
        "legacy search",
        &s.get(&format!(
            "/api/search?tags={}&minDuration=10ms&limit=20&start={start_s}&end={end_s}",
            enc("service.name=grafana-db")
        )),
        &[".traces[].traceID: string"],
    );
    assert_eq!(v["traces"].as_array().unwrap().len(), 1, "{v}");
    // A bad query is a 400 with the parser's reason, not a 500.
    let r = s.get(&format!("/api/search?q={}", enc("{ .a = }")));
    assert_eq!(r.status, 400, "{}", r.text());
    one_line("bad traceql", r.text().trim_end_matches('\n'));
}

#[test]
fn grafana_jaeger_data_source_requests() {
    let s = start(&config("", ""));
    let (trace, at) = grafana_fixture(&s);
    let (start_us, end_us) = (at / 1000 - 3_600_000_000, at / 1000 + 3_600_000_000);
    let envelope = [".data: array", ".total: number", ".limit: number", ".offset: number", ".errors: null"];
    // "Save & test" lists services; the query editor lists a service's operations.
    let v = assert_shape("services", &s.get("/api/services"), &[&envelope[..], &[".data[]: string"]].concat());
    let mut services: Vec<&str> = v["data"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    services.sort();
    assert_eq!(services, ["grafana-app", "grafana-db"]);
    let v = assert_shape("operations", &s.get("/api/services/grafana-app/operations"), &[".data[]: string"]);
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let v = assert_shape(
        "operations with kinds",
        &s.get("/api/operations?service=grafana-app&spanKind=server"),
        &[".data[].name: string", ".data[].spanKind: string"],
    );
    assert_eq!(v["data"], json!([{"name": "GET /api/items", "spanKind": "server"}]));
    // Search, as the query editor sends it: µs range, tags as JSON, Go durations, limit.
    let span_shape = [
        ".data[].traceID: string",
        ".data[].spans[].traceID: string",
        ".data[].spans[].spanID: string",
        ".data[].spans[].operationName: string",
        ".data[].spans[].references[].refType: string",
        ".data[].spans[].startTime: number",
        ".data[].spans[].duration: number",
        ".data[].spans[].tags[].key: string",
        ".data[].spans[].tags[].type: string",
        ".data[].spans[].logs: array",
        ".data[].spans[].processID: string",
        ".data[].spans[].flags: number",
        ".data[].processes.*.serviceName: string",
        ".data[].processes.*.tags: array",
    ];
    let search = format!(
        "/api/traces?service=grafana-app&operation={}&tags={}&minDuration=20ms&maxDuration=1s&limit=20&start={start_us}&end={end_us}&lookback=custom",
        enc("SELECT items"),
        enc(r#"{"error":"true"}"#)
    );
    let v = assert_shape("search", &s.get(&search), &span_shape);
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"][0]["traceID"], json!(trace));
    assert_eq!(v["data"][0]["spans"].as_array().unwrap().len(), 3, "the whole trace, not the matching span");
    // Nothing outside the range, nothing with a stricter duration.
    let r = s.get(&format!("/api/traces?service=grafana-app&start={}&end={}", end_us + 1, end_us + 2));
    assert_eq!(json(&r)["data"], json!([]), "{}", r.text());
    let r = s.get(&format!("/api/traces?service=grafana-app&minDuration=1s&start={start_us}&end={end_us}"));
    assert_eq!(json(&r)["data"], json!([]), "{}", r.text());
    // Trace by id, plain and with the range Grafana adds when "time shift" is set.
    for path in [format!("/api/traces/{trace}"), format!("/api/traces/{trace}?start={start_us}&end={end_us}")] {
        let v = assert_shape("trace by id", &s.get(&path), &span_shape);
        let spans = v["data"][0]["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 3, "{path}");
        let db = spans.iter().find(|sp| sp["operationName"] == "query items").unwrap();
        assert_eq!(v["data"][0]["processes"][db["processID"].as_str().unwrap()]["serviceName"], "grafana-db");
        let client = spans.iter().find(|sp| sp["operationName"] == "SELECT items").unwrap();
        assert_eq!(jaeger_parent(db), client["spanID"].as_str().unwrap());
        assert_eq!(client["duration"], 30_000, "µs");
    }
    // Errors keep Jaeger's envelope: data null, errors with code and msg.
    let r = s.get("/api/traces?limit=20");
    assert_eq!(r.status, 400, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["errors"][0]["code"], 400, "{v}");
    one_line("jaeger error", v["errors"][0]["msg"].as_str().unwrap_or_default());
    let r = s.get(&format!("/api/traces/{}", unique_ids(5).0));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(json(&r)["errors"][0]["code"], 404);
    // The counters Grafana's service map and Jaeger's Monitor tab query come from these spans.
    wait_promql(&s, r#"sum(traces_service_graph_request_total{client="grafana-app",server="grafana-db"})"#, 1.0);
    wait_promql(&s, r#"sum(traces_service_graph_request_failed_total{client="grafana-app",server="grafana-db"})"#, 1.0);
    let q = r#"sum by (service_name) (traces_span_metrics_calls_total{service_name="grafana-app"})"#;
    wait_promql(&s, q, 2.0);
}
