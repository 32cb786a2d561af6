//! The dashboards API (`/api/v1/dashboards`) and the status endpoints the web UI reads,
//! against the real binary.

use serde_json::{json, Value};

use super::{json, start};

fn send(s: &telltale_testkit::TestServer, method: &str, path: &str, body: &Value) -> telltale_testkit::Response {
    s.request(method, path, &[("content-type", "application/json")], body.to_string().as_bytes())
}

#[test]
fn dashboards_are_created_updated_with_versions_and_deleted() {
    let s = start("");
    let list = json(&s.get("/api/v1/dashboards"));
    assert_eq!(list["data"][0]["uid"], "overview");
    assert_eq!(list["data"][0]["builtin"], true);

    let doc = json!({"title": "Web servers", "rows": [{"title": "", "panels": [
        {"id": 1, "type": "timeseries", "title": "Load", "targets": [{"expr": "node_load1", "legend": "{{instance}}"}]}]}]});
    let r = send(&s, "POST", "/api/v1/dashboards", &doc);
    assert_eq!(r.status, 201, "{}", r.text());
    let saved = json(&r)["data"].clone();
    assert_eq!((saved["uid"].as_str(), saved["version"].as_u64()), (Some("web-servers"), Some(1)));

    let mut edit = saved.clone();
    edit["title"] = json!("Web");
    let r = send(&s, "PUT", "/api/v1/dashboards/web-servers", &edit);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["data"]["version"], 2);
    // The same (now stale) copy again is a conflict, in the Prometheus error shape.
    let r = send(&s, "PUT", "/api/v1/dashboards/web-servers", &edit);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(json(&r)["errorType"], "conflict");
    assert!(json(&r)["error"].as_str().unwrap().contains("version 2, yours 1"));
    let r = send(&s, "PUT", "/api/v1/dashboards/web-servers?overwrite=true", &edit);
    assert_eq!(json(&r)["data"]["version"], 3);

    let r = send(&s, "PUT", "/api/v1/dashboards/overview", &json!({"title": "mine"}));
    assert_eq!(r.status, 400);
    assert!(json(&r)["error"].as_str().unwrap().contains("read-only"), "{}", r.text());
    let r = send(&s, "POST", "/api/v1/dashboards", &json!({"title": "x", "rows": [{"panels": [{"type": "pie"}]}]}));
    assert_eq!(r.status, 400);
    assert!(json(&r)["error"].as_str().unwrap().contains("rows[0].panels[0].type"), "{}", r.text());
    let r = s.post("/api/v1/dashboards", "application/json", b"{not json");
    assert_eq!(r.status, 400);

    assert_eq!(s.request("DELETE", "/api/v1/dashboards/web-servers", &[], &[]).status, 204);
    assert_eq!(s.get("/api/v1/dashboards/web-servers").status, 404);
    assert_eq!(s.request("DELETE", "/api/v1/dashboards/web-servers", &[], &[]).status, 404);
}

#[test]
fn a_saved_dashboard_survives_kill_9() {
    let mut s = start("");
    let r = send(&s, "POST", "/api/v1/dashboards", &json!({"title": "Kept", "tags": ["a"]}));
    assert_eq!(r.status, 201, "{}", r.text());
    s.kill9();
    s.restart();
    let r = s.get("/api/v1/dashboards/kept");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["data"]["tags"], json!(["a"]));
}

#[test]
fn dashboard_limits_come_from_the_config() {
    let s = start("dashboards:\n  max_size: 200B\n  max_count: 1\n");
    let r = send(&s, "POST", "/api/v1/dashboards", &json!({"title": "x".repeat(300)}));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(json(&r)["error"].as_str().unwrap().contains("dashboards.max_size (200B)"), "{}", r.text());
    assert_eq!(send(&s, "POST", "/api/v1/dashboards", &json!({"title": "one"})).status, 201);
    let r = send(&s, "POST", "/api/v1/dashboards", &json!({"title": "two"}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(json(&r)["error"].as_str().unwrap().contains("dashboards.max_count"), "{}", r.text());
}

#[test]
fn status_config_and_tsdb_answer_in_prometheus_shapes() {
    let s = start(
        "server:\n  max_body_size: 2MiB\ncollectors:\n  enabled: false\nscrape_configs:\n  - job_name: app\n    \
         basic_auth: {username: ops, password: hunter2}\n    static_configs: [{targets: ['127.0.0.1:1']}]\n  \
         - job_name: api\n    authorization: {type: Bearer, credentials: s3cr3t-token}\n    static_configs: [{targets: ['127.0.0.1:2']}]\n",
    );
    let r = s.get("/api/v1/status/config");
    assert_eq!(r.status, 200);
    let yaml = json(&r)["data"]["yaml"].as_str().unwrap().to_string();
    assert!(yaml.contains("max_body_size: 2MiB") && yaml.contains("retention_time: 2w1d"), "{yaml}");
    assert!(yaml.contains("username: ops") && yaml.contains("type: Bearer"), "{yaml}");
    assert!(!yaml.contains("hunter2") && !yaml.contains("s3cr3t-token"), "secrets leak: {yaml}");
    assert_eq!(yaml.matches("<secret>").count(), 2, "{yaml}");
    let r = s.get("/api/v1/status/tsdb?limit=3");
    assert_eq!(r.status, 200, "{}", r.text());
    let d = json(&r)["data"].clone();
    assert!(d["headStats"]["numSeries"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["seriesCountByMetricName"].as_array().unwrap().len(), 3, "{d}");
    assert_eq!(d["telltale"]["retention"], "2w1d");
    let stats = d["telltale"]["stats"].as_array().unwrap();
    assert!(stats.iter().any(|x| x["name"] == "telltale_storage_wal_bytes"), "{d}");
}

#[test]
fn the_ui_is_served_beside_the_apis() {
    let s = start("");
    let r = s.request("GET", "/", &[("accept", "text/html")], &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<title>Telltale</title>"));
    let r = s.get("/ui/lib/chart.js");
    assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"));
    // API routes keep precedence, and unknown API paths stay JSON 404s.
    assert_eq!(s.get("/api/v1/labels").status, 200);
    assert_eq!(json(&s.get("/api/v1/nope"))["errorType"], "not_found");
}
