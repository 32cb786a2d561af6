//! End-to-end tests: the real `telltale` binary, started by `telltale_testkit::TestServer`
//! on an ephemeral port with a temp data dir, spoken to over HTTP.

use std::process::Command;

use telltale_testkit::TestServer;

mod write;

const BIN: &str = env!("CARGO_BIN_EXE_telltale");

/// Starts `telltale agent` remote-writing to `base` (a server's URL) with `config` and its
/// queue in `data`.
fn start_agent(base: &str, config: &std::path::Path, data: &std::path::Path) -> telltale_testkit::Peer {
    let args = [
        "agent".to_string(),
        "--remote-write".into(),
        format!("{base}/api/v1/write"),
        "--config".into(),
        config.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
    ];
    telltale_testkit::Peer::start(BIN, &args)
}

fn start(config: &str) -> TestServer {
    TestServer::start(BIN, config)
}

/// A webhook receiver on loopback: answers every request 200 and keeps the bodies.
fn webhook_sink() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the webhook sink");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            kept.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

fn json(res: &telltale_testkit::Response) -> serde_json::Value {
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", res.text()))
}

#[test]
fn ready_healthy_and_own_metrics() {
    let s = start("");
    let r = s.get("/-/ready");
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
    assert_eq!(s.get("/-/healthy").status, 200);
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    assert!(text.contains("telltale_http_requests_total{handler=\"/-/healthy\",code=\"200\"} 1\n"), "{text}");
    assert!(text.contains("# TYPE telltale_http_request_duration_seconds histogram\n"), "{text}");
    assert!(text.contains("\ntelltale_storage_corrupt_files 0\n"), "{text}");
}

#[test]
fn own_metrics_are_stored_with_job_and_instance() {
    let s = start("");
    let r = s.get("/api/v1/series?match[]=%7Bjob%3D%22telltale%22%7D");
    assert_eq!(r.status, 200, "{}", r.text());
    let data = json(&r)["data"].as_array().cloned().unwrap();
    let instance = s.url().trim_start_matches("http://");
    assert!(
        data.iter().any(|l| l["__name__"] == "telltale_storage_corrupt_files" && l["instance"] == instance),
        "{data:?}"
    );
}

#[test]
fn self_scrape_can_be_turned_off() {
    let s = start("collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n");
    let r = s.get("/api/v1/label/__name__/values");
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
}

#[test]
fn read_errors_are_prometheus_json_with_400() {
    let s = start("");
    let r = s.get("/api/v1/series");
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["error"], "no match[] parameter provided");
    let r = s.get("/api/v1/export?match[]=%7Ba%3D%22%22%7D");
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["errorType"], "bad_data");
    assert!(json(&r)["error"].as_str().unwrap().contains("at least one non-empty matcher"));
    let r = s.get("/api/v1/labels?start=1&end=0");
    assert_eq!(r.status, 400);
}

#[test]
fn check_config_accepts_the_example_and_names_bad_keys() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../telltale.example.yml");
    let out = Command::new(BIN).args(["check", "config", example]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("SUCCESS: "));

    let bad = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/config/unknown_key.bad.yml");
    let out = Command::new(BIN).args(["check", "config", bad]).env_remove("TELLTALE_LISTEN").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("FAILED: ") && err.contains(": server.lisen: unknown field `lisen`"), "{err}");

    let out = Command::new(BIN).args(["check", "config", "/nonexistent.yml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn serve_refuses_a_bad_config_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("t.yml");
    std::fs::write(&cfg, "server:\n  max_body_size: lots\n").unwrap();
    let out = Command::new(BIN).arg("serve").arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.max_body_size: invalid size \"lots\""));
}

#[test]
fn reload_over_http_applies_limits_and_names_restart_settings() {
    let s = start("server:\n  max_body_size: 1MiB\n");
    std::fs::write(s.config_path(), "server:\n  max_body_size: 2MiB\n  self_scrape_interval: 1m\n").unwrap();
    let r = s.request("POST", "/-/reload", &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "config reloaded; applied: server.max_body_size; needs a restart: server.self_scrape_interval\n"
    );
    std::fs::write(s.config_path(), "server:\n  max_body_size: nope\n").unwrap();
    let r = s.request("POST", "/-/reload", &[], &[]);
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("config not reloaded: "), "{}", r.text());
    assert!(r.text().contains("server.max_body_size"), "{}", r.text());
}

#[test]
fn sighup_reloads_the_config() {
    let s = start("server:\n  max_body_size: 1MiB\n");
    let line = s.reload_with_signal("server:\n  max_body_size: 3MiB\n");
    assert!(line.contains("config reloaded") && line.contains("server.max_body_size"), "{line}");
    let line = s.reload_with_signal("server: [\n");
    assert!(line.contains("config not reloaded"), "{line}");
    assert_eq!(s.get("/-/ready").status, 200, "a bad reload keeps the server running");
}

#[test]
fn sigterm_shuts_down_gracefully_with_exit_0() {
    let mut s = start("");
    let status = s.terminate();
    assert!(status.success(), "{status}\n{}", s.log());
    let log = s.log();
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
    s.restart();
    assert_eq!(s.get("/-/ready").status, 200);
}

#[test]
fn unknown_paths_are_404() {
    let s = start("");
    assert_eq!(s.get("/nope").status, 404);
}

#[test]
fn bodies_over_max_body_size_get_413_naming_the_limit() {
    let s = start("server:\n  max_body_size: 1KiB\n");
    let form = format!("match[]=up&x={}", "a".repeat(2000));
    let r = s.post("/api/v1/series", "application/x-www-form-urlencoded", form.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(json(&r)["error"], "request body exceeds server.max_body_size (1KiB)");
    // Reloading raises the limit without a restart.
    std::fs::write(s.config_path(), "server:\n  max_body_size: 1MiB\n").unwrap();
    assert_eq!(s.request("POST", "/-/reload", &[], &[]).status, 200);
    let r = s.post("/api/v1/series", "application/x-www-form-urlencoded", form.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

mod alerting;
mod collect;
mod dashboards;
mod durability;
mod grpc;
mod logclients;
mod logs;
mod notify;
mod prometheus;
mod secrets;
mod security;
mod traces;
mod ui;
mod ui_traces;
