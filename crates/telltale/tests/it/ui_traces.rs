//! The Traces and Services pages in headless Chromium, against a server holding real OTLP
//! traces of two services (front calling back, some requests failing) and the logs of one
//! request: search, the waterfall with its critical path and the trace's logs, a log line's
//! link to its trace, the services table, one service's endpoints, and the service map.

use std::time::Duration;

use serde_json::{json, Value};
use telltale_testkit::browser::Browser;
use telltale_testkit::{eventually, TestServer};

use super::{json as body_json, start};

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn kv(k: &str, v: &str) -> Value {
    json!({"key": k, "value": {"stringValue": v}})
}

/// Request `i`: front's server span, its client call to back, back's server span (an error
/// when `fail`), as two resources in one OTLP/JSON request.
fn request(i: u32, fail: bool, t0: u128) -> (String, Value) {
    let trace = format!("{:032x}", 0xabc000 + i);
    let sid = |n: u32| format!("{:016x}", (i << 4) + n);
    let span = |id: u32, parent: Option<u32>, name: &str, kind: u8, start: u128, ms: u128, err: bool| {
        let mut s = json!({"traceId": trace, "spanId": sid(id), "name": name, "kind": kind,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + ms * 1_000_000).to_string(),
            "attributes": [kv("http.route", name)]});
        if let Some(p) = parent {
            s["parentSpanId"] = json!(sid(p));
        }
        if err {
            s["status"] = json!({"code": 2, "message": "boom"});
        }
        s
    };
    let start = t0 + i as u128 * 10_000_000;
    let res = |svc: &str, spans: Vec<Value>| {
        json!({"resource": {"attributes": [kv("service.name", svc), kv("service.instance.id", &format!("{svc}-1"))]},
            "scopeSpans": [{"scope": {"name": "ui-test"}, "spans": spans}]})
    };
    let body = json!({"resourceSpans": [
        res("front", vec![span(1, None, "GET /checkout", 2, start, 40, fail), span(2, Some(1), "POST /charge", 3, start + 2_000_000, 30, fail)]),
        res("back", vec![span(3, Some(2), "POST /charge", 2, start + 3_000_000, 25, fail)]),
    ]});
    (trace, body)
}

fn seed(s: &TestServer) -> String {
    let t0 = now_ns() - 60_000_000_000;
    let mut first = String::new();
    for i in 0..20 {
        let (trace, body) = request(i, i % 5 == 0, t0);
        let r = s.post("/v1/traces", "application/json", body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        if i == 0 {
            first = trace;
        }
    }
    // One log line of the first request, with its trace id, as the OTel SDKs send it.
    let logs = json!({"resourceLogs": [{"resource": {"attributes": [kv("service.name", "front")]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": (t0 + 1_000_000).to_string(), "severityText": "ERROR",
            "body": {"stringValue": "charge failed for order 42"}, "traceId": first, "spanId": "0000000000000001"}]}]}]});
    let r = s.post("/v1/logs", "application/json", logs.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    first
}

#[test]
fn the_traces_and_services_pages_search_show_the_waterfall_logs_and_the_service_map() {
    let s = start("collectors:\n  enabled: false\ntraces:\n  collect_interval: 1s\n  grpc_listen: \"\"\n");
    let first = seed(&s);
    // The RED metrics reach the TSDB within a collect interval.
    eventually("the span metrics", Duration::from_millis(300), || {
        let v = body_json(&s.get("/api/v1/query?query=sum(traces_spanmetrics_calls_total%7Bservice%3D%22front%22%7D)"));
        (v["data"]["result"][0]["value"][1] == "40").then_some(())
    });
    let b = Browser::start();
    b.goto(&format!("{}/traces?q=%7B%20status%20%3D%20error%20%7D&from=now-3h", s.url()));
    let rows = b.wait_for("document.querySelectorAll('table.traces tbody tr').length", "the error traces");
    assert_eq!(rows, json!(4));
    b.wait_for("document.querySelectorAll('table.traces .badge.err').length === 4", "error marks");

    b.click_text("table.traces a", &first);
    b.wait_for(
        "location.pathname.startsWith('/traces/') && document.querySelectorAll('.waterfall .wf-row').length === 3",
        "the waterfall of 3 spans",
    );
    assert_eq!(b.execute("return document.querySelectorAll('.wf-row.critical').length", json!([])), json!(3));
    b.click_text(".wf-row .wf-name", "back");
    b.wait_for("document.querySelector('.span-detail h2')?.textContent === 'POST /charge' && document.querySelector('.span-detail').textContent.includes('boom')", "the span's details");
    b.wait_for(
        "document.querySelector('.loglines')?.textContent.includes('charge failed for order 42')",
        "the trace's log line",
    );

    // From the log line in the Logs page back to its trace.
    b.goto(&format!("{}/logs?q=%7Bservice_name%3D%22front%22%7D&from=now-3h", s.url()));
    b.click_text(".loglines .logline .msg", "charge failed");
    b.click_text(".logline .detail a", "View trace");
    b.wait_for(&format!("location.pathname === '/traces/{first}'"), "the trace of the log line");

    b.goto(&format!("{}/services", s.url()));
    b.wait_for(
        "[...document.querySelectorAll('table.services tbody tr td:first-child')].map((x) => x.textContent).sort().join(',') === 'back,front'",
        "both services",
    );
    // front → back with its 20 calls, 4 failed (and, once root spans wait out their pairing,
    // Tempo's virtual `user` node calling front).
    b.wait_for(
        "(() => { const t = [...document.querySelectorAll('.svcmap g text')].map((x) => x.textContent); \
           return t.includes('front') && t.includes('back') && t.includes('20 (4 failed)'); })()",
        "the service map",
    );
    b.click_text("table.services a", "front");
    b.wait_for(
        "location.search === '?service=front' && [...document.querySelectorAll('table.services tbody td:first-child')].some((x) => x.textContent === 'GET /checkout')",
        "front's endpoints",
    );
    let errors: Vec<String> = b.console_errors().into_iter().map(|e| e.message).collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
