//! The notification pipeline end to end: Debian's real `amtool` posts alerts and adds,
//! queries and expires silences; a local HTTP receiver gets the webhook and checks it
//! against Alertmanager's documented payload; silences and the notification log survive a
//! restart, so no second page goes out inside repeat_interval.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use telltale_testkit::TestServer;

use crate::{json, BIN};

/// One request the hook received: path, headers, body.
type Received = (String, Vec<(String, String)>, Vec<u8>);

/// A minimal HTTP server on loopback: answers 200 to every POST and hands over
/// (path, headers, body).
pub(crate) struct Hook {
    pub(crate) url: String,
    rx: Receiver<Received>,
}

impl Hook {
    pub(crate) fn start() -> Hook {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { break };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let n: usize =
                    headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; n];
                let _ = r.read_exact(&mut body);
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                if tx.send((path, headers, body)).is_err() {
                    break;
                }
            }
        });
        Hook { url, rx }
    }

    pub(crate) fn next(&self) -> (String, Vec<(String, String)>, serde_json::Value) {
        let (p, h, b) = self.rx.recv_timeout(Duration::from_secs(30)).expect("a notification within 30s");
        let v = serde_json::from_slice(&b)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {}", String::from_utf8_lossy(&b)));
        (p, h, v)
    }

    fn nothing_pending(&self) -> bool {
        self.rx.try_recv().is_err()
    }
}

fn amtool(s: &TestServer, args: &[&str]) -> String {
    let url = format!("--alertmanager.url={}", s.url());
    let out = Command::new("amtool").arg(&url).args(args).output().expect("amtool is installed (scripts/test.sh)");
    assert!(
        out.status.success(),
        "amtool {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Alertmanager's webhook payload, field by field
/// (<https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>).
fn check_webhook_schema(v: &serde_json::Value) {
    for k in ["version", "groupKey", "status", "receiver", "externalURL"] {
        assert!(v[k].is_string(), "{k} must be a string: {v}");
    }
    assert_eq!(v["version"], "4");
    assert!(v["truncatedAlerts"].is_u64(), "{v}");
    for k in ["groupLabels", "commonLabels", "commonAnnotations"] {
        assert!(v[k].is_object(), "{k}: {v}");
    }
    for a in v["alerts"].as_array().expect("alerts") {
        for k in ["status", "startsAt", "endsAt", "generatorURL", "fingerprint"] {
            assert!(a[k].is_string(), "alert {k}: {a}");
        }
        assert!(a["labels"].is_object() && a["annotations"].is_object(), "{a}");
        assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16, "{a}");
    }
}

fn config(hook: &str) -> String {
    format!(
        "alerting:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    group_wait: 1s\n    group_interval: 1s\n    repeat_interval: 1h\n  receivers:\n    - name: hook\n      webhook_configs:\n        - url: {hook}/alerts\n"
    )
}

#[test]
fn amtool_drives_alerts_and_silences_and_a_restart_does_not_page_again() {
    let hook = Hook::start();
    let mut s = TestServer::start(BIN, &config(&hook.url));

    amtool(
        &s,
        &["alert", "add", "alertname=DiskFull", "instance=db1", "severity=page", "--annotation=summary=disk is full"],
    );
    let (path, headers, v) = hook.next();
    assert_eq!(path, "/alerts");
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
    check_webhook_schema(&v);
    assert_eq!((v["status"].as_str(), v["receiver"].as_str()), (Some("firing"), Some("hook")));
    assert_eq!(v["groupLabels"]["alertname"], "DiskFull");
    assert_eq!(v["alerts"][0]["labels"]["instance"], "db1");
    assert_eq!(v["alerts"][0]["annotations"]["summary"], "disk is full");
    assert_eq!(v["groupKey"], "{}:{alertname=\"DiskFull\"}");

    let listed: serde_json::Value = serde_json::from_str(&amtool(&s, &["alert", "query", "-o", "json"])).unwrap();
    assert_eq!(listed[0]["labels"]["alertname"], "DiskFull", "{listed}");
    assert_eq!(listed[0]["status"]["state"], "active");

    // Silence it with amtool; the API shows the alert suppressed by that silence.
    let id = amtool(
        &s,
        &["silence", "add", "alertname=DiskFull", "--comment=replacing the disk", "--author=ops", "--duration=2h"],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let q = amtool(&s, &["silence", "query", "-o", "json"]);
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert_eq!(q[0]["id"], id.as_str());
    assert_eq!(q[0]["status"]["state"], "active");
    assert_eq!(q[0]["createdBy"], "ops");
    assert_eq!(q[0]["matchers"][0]["name"], "alertname");
    let alerts = json(&s.get("/api/v2/alerts"));
    assert_eq!(alerts[0]["status"]["state"], "suppressed");
    assert_eq!(alerts[0]["status"]["silencedBy"][0], id.as_str());
    let ids = amtool(&s, &["silence", "query", "-q"]);
    assert_eq!(ids.trim(), id);

    // Restart: the silence is still there.
    s.restart();
    let q: serde_json::Value = serde_json::from_str(&amtool(&s, &["silence", "query", "-o", "json"])).unwrap();
    assert_eq!(q[0]["id"], id.as_str(), "silence survives the restart");
    amtool(&s, &["silence", "expire", &id]);
    let q: serde_json::Value =
        serde_json::from_str(&amtool(&s, &["silence", "query", "--expired", "-o", "json"])).unwrap();
    assert_eq!(q[0]["status"]["state"], "expired");
    assert_eq!(s.request("DELETE", &format!("/api/v2/silence/{id}"), &[], &[]).status, 400, "already expired");
    assert_eq!(s.get("/api/v2/silence/00000000-0000-4000-8000-000000000000").status, 404);

    // The same alert again after the restart: the notification log says the receiver knows
    // it, so no page. A new alert in another group is notified, after any repeat would be.
    amtool(
        &s,
        &["alert", "add", "alertname=DiskFull", "instance=db1", "severity=page", "--annotation=summary=disk is full"],
    );
    amtool(&s, &["alert", "add", "alertname=Other", "instance=db2"]);
    let (_, _, v) = hook.next();
    assert_eq!(v["groupLabels"]["alertname"], "Other", "DiskFull must not page again inside repeat_interval: {v}");
    assert!(hook.nothing_pending());

    // Status and receivers in Alertmanager's shapes; secrets are redacted.
    let st = json(&s.get("/api/v2/status"));
    assert_eq!(st["cluster"]["status"], "disabled");
    let original = st["config"]["original"].as_str().unwrap();
    assert!(original.contains("<secret>") && !original.contains(&hook.url), "{original}");
    assert_eq!(json(&s.get("/api/v2/receivers"))[0]["name"], "hook");
    let groups = json(&s.get("/api/v2/alerts/groups"));
    assert!(groups
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["labels"]["alertname"] == "Other" && g["receiver"]["name"] == "hook"));
    let m = s.get("/metrics").text();
    assert!(m.contains("telltale_notifications_total{integration=\"webhook\"} 1\n"), "{m}");
    assert!(m.contains("telltale_rule_evaluations_total{rule_group=\"builtin:node.yml;telltale-node\"}"), "{m}");

    // Bad input gets a 400 with the reason as a JSON string.
    let r = s.post("/api/v2/alerts", "application/json", br#"[{"labels":{}}]"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "\"invalid alert: at least one label pair required\"");
    let r = s.post("/api/v2/silences", "application/json", b"{");
    assert_eq!(r.status, 400);
}

#[test]
fn firing_rules_reach_the_webhook_with_a_link_to_the_graph() {
    let hook = Hook::start();
    let rules = "groups:\n- name: t\n  interval: 1s\n  rules:\n  - alert: Hot\n    expr: vector(42)\n    annotations: {summary: 'at {{ $value }}'}\n";
    let cfg =
        format!("rule_files: [data/rules.yml]\nserver:\n  external_url: http://tt.example:7070\n{}", config(&hook.url));
    let s = TestServer::start_with(BIN, &cfg, |d| std::fs::write(d.join("rules.yml"), rules).unwrap());
    let (_, _, v) = hook.next();
    check_webhook_schema(&v);
    let a = &v["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "Hot");
    assert_eq!(a["annotations"]["summary"], "at 42");
    assert_eq!(a["generatorURL"], "http://tt.example:7070/explore?query=vector%2842%29&tab=graph");
    assert_eq!(v["externalURL"], "http://tt.example:7070");
    drop(s);
}

#[test]
fn failures_are_counted_and_logged_and_the_config_reloads() {
    // Nothing listens on the first URL: three attempts, then a failure in the log.
    let dead = format!("http://127.0.0.1:{}", telltale_testkit::free_port());
    let s = TestServer::start(BIN, &config(&dead));
    let r = s.post("/api/v2/alerts", "application/json", br#"[{"labels":{"alertname":"X"}}]"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let entry = telltale_testkit::eventually("a failed notification in the log", Duration::from_millis(100), || {
        let j = json(&s.get("/api/v1/notifications"));
        j["data"].as_array().and_then(|a| a.first().cloned()).filter(|e| e["error"].is_string())
    });
    assert_eq!(entry["receiver"], "hook");
    assert_eq!(entry["integration"], "webhook[0]");
    assert_eq!(entry["lastNotified"], serde_json::Value::Null);
    assert!(!entry["error"].as_str().unwrap().contains(&dead), "the URL is a secret: {entry}");
    let m = s.get("/metrics").text();
    assert!(m.contains("telltale_notifications_failed_total{integration=\"webhook\"} 1\n"), "{m}");
    assert!(!s.log().contains(&dead), "the URL is a secret and never logged");

    // Reload with a working receiver: the next group interval delivers.
    let hook = Hook::start();
    std::fs::write(s.config_path(), config(&hook.url)).unwrap();
    let r = s.request("POST", "/-/reload", &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("alerting"), "{}", r.text());
    let (_, _, v) = hook.next();
    assert_eq!(v["alerts"][0]["labels"]["alertname"], "X");
    // A bad alerting config is refused and the running one stays.
    std::fs::write(s.config_path(), "alerting:\n  route: {receiver: nope}\n").unwrap();
    let r = s.request("POST", "/-/reload", &[], &[]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("undefined receiver \"nope\""), "{}", r.text());
}

#[test]
fn a_real_prometheus_uses_telltale_as_its_alertmanager() {
    let hook = Hook::start();
    let s = TestServer::start(BIN, &config(&hook.url));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: p\n  rules:\n  - alert: FromPrometheus\n    expr: vector(1)\n    labels: {severity: ticket}\n    annotations: {summary: sent by a real Prometheus}\n",
    )
    .unwrap();
    let target = s.url().trim_start_matches("http://").to_string();
    let cfg = format!(
        "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n        - targets: ['{target}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), cfg).unwrap();
    let port = telltale_testkit::free_port();
    let _prom = telltale_testkit::Peer::start(
        "prometheus",
        &[
            format!("--config.file={}", dir.path().join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            // Its first send can come before it has discovered Telltale (and is dropped);
            // the resend is then 1 s away rather than a minute.
            "--rules.alert.resend-delay=1s".to_string(),
        ],
    );
    let (_, _, v) = hook.next();
    check_webhook_schema(&v);
    let a = &v["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "FromPrometheus");
    assert_eq!(a["labels"]["severity"], "ticket");
    assert_eq!(a["annotations"]["summary"], "sent by a real Prometheus");
    assert!(a["generatorURL"].as_str().unwrap().contains("/graph?g0.expr="), "{a}");
    let alerts = json(&s.get("/api/v2/alerts"));
    assert_eq!(alerts[0]["labels"]["alertname"], "FromPrometheus");
}

#[test]
fn a_restart_keeps_firing_rule_alerts_and_does_not_page_again() {
    let hook = Hook::start();
    let rules = "groups:\n- name: t\n  interval: 1s\n  rules:\n  - alert: Hot\n    expr: vector(42)\n";
    let cfg = format!("rule_files: [data/rules.yml]\n{}", config(&hook.url));
    let mut s = TestServer::start_with(BIN, &cfg, |d| std::fs::write(d.join("rules.yml"), rules).unwrap());
    let (_, _, v) = hook.next();
    assert_eq!(v["alerts"][0]["labels"]["alertname"], "Hot");
    let before = json(&s.get("/api/v1/alerts"))["data"]["alerts"][0].clone();
    s.restart();
    // Firing at once after the restart, with the same activeAt, in both APIs.
    let after = json(&s.get("/api/v1/alerts"))["data"]["alerts"][0].clone();
    assert_eq!((after["state"].as_str(), &after["activeAt"]), (Some("firing"), &before["activeAt"]));
    telltale_testkit::eventually("Hot back in the pipeline", Duration::from_millis(100), || {
        json(&s.get("/api/v2/alerts")).as_array().filter(|a| !a.is_empty()).cloned()
    });
    // A new alert after that is the next notification: Hot did not page again.
    std::fs::write(s.data_dir().join("rules.yml"), format!("{rules}  - alert: AfterRestart\n    expr: vector(1)\n"))
        .unwrap();
    assert_eq!(s.request("POST", "/-/reload", &[], &[]).status, 200);
    let (_, _, v) = hook.next();
    assert_eq!(v["alerts"][0]["labels"]["alertname"], "AfterRestart", "Hot paged again: {v}");
}
