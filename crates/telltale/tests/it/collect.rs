//! Host collectors, scraping and `telltale agent`, end to end with the real binary and real
//! peers (Debian's node_exporter as a scrape target).

use std::time::Duration;

use serde_json::Value;
use telltale_testkit::{eventually, free_port, Peer, TestServer};

use super::{json, start};

fn query(s: &TestServer, q: &str) -> Vec<Value> {
    let enc: String = q
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let v = json(&s.get(&format!("/api/v1/query?query={enc}")));
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn node_exporter() -> (Peer, String) {
    let port = free_port();
    let ne = Peer::start("prometheus-node-exporter", &[format!("--web.listen-address=127.0.0.1:{port}")]);
    (ne, format!("127.0.0.1:{port}"))
}

#[test]
fn host_metrics_are_stored_with_node_exporter_names() {
    let s = start("collectors:\n  interval: 1s\n  instance: myhost\n");
    let r = eventually("host metrics", Duration::from_millis(100), || {
        let r = query(&s, "node_load1");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(r[0]["metric"]["job"], "node");
    assert_eq!(r[0]["metric"]["instance"], "myhost");
    let cpu = query(&s, "count by (mode) (node_cpu_seconds_total)");
    assert_eq!(cpu.len(), 8, "{cpu:?}");
    let ok = query(&s, "node_scrape_collector_success{collector=\"meminfo\"}");
    assert_eq!(ok[0]["value"][1], "1");
    assert!(!query(&s, "node_filesystem_avail_bytes{mountpoint=\"/\"}").is_empty());
    // Telltale's own process is among the top processes by memory.
    let procs = query(&s, "telltale_process_resident_memory_bytes");
    assert!(!procs.is_empty() && procs.len() <= 20, "{procs:?}");
    let meta = json(&s.get("/api/v1/metadata?metric=node_cpu_seconds_total"));
    assert_eq!(meta["data"]["node_cpu_seconds_total"][0]["type"], "counter", "{meta}");
}

#[test]
fn collectors_can_be_turned_off() {
    let off = start("collectors:\n  enabled: false\n  interval: 1s\nserver:\n  self_scrape_interval: 0s\n");
    assert!(off.log().contains("host collectors off"), "{}", off.log());
    // A server started after it, collecting every second, has host series: by then the first
    // would have them too, had it collected.
    let on = start("collectors:\n  interval: 1s\nserver:\n  self_scrape_interval: 0s\n");
    eventually("host series on the server that collects", Duration::from_millis(100), || {
        (!query(&on, "node_load1").is_empty()).then_some(())
    });
    let r = off.get("/api/v1/label/__name__/values");
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
}

#[test]
fn scrapes_targets_lists_them_and_ends_their_series_on_reload() {
    let (_ne, addr) = node_exporter();
    let down = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n\
         scrape_configs:\n  - job_name: ne\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{addr}', '{down}']\n        labels: {{env: test}}\n    \
         relabel_configs:\n      - source_labels: [__address__]\n        regex: '.*:(\\d+)'\n        target_label: port\n    \
         metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'go_.*'\n        action: drop\n"
    );
    let s = start(&config);
    eventually("both targets scraped", Duration::from_millis(100), || {
        let t = json(&s.get("/api/v1/targets"));
        let a = t["data"]["activeTargets"].as_array()?.clone();
        (a.len() == 2 && a.iter().all(|x| x["health"] != "unknown")).then_some(())
    });
    let t = json(&s.get("/api/v1/targets?state=active"));
    let active = t["data"]["activeTargets"].as_array().unwrap();
    let up = active.iter().find(|x| x["labels"]["instance"] == addr.as_str()).unwrap();
    assert_eq!(up["health"], "up", "{up}");
    assert_eq!(up["scrapePool"], "ne");
    assert_eq!(up["scrapeUrl"], format!("http://{addr}/metrics"));
    assert_eq!(up["labels"]["env"], "test");
    assert_eq!(up["labels"]["job"], "ne");
    assert_eq!(up["discoveredLabels"]["__address__"], addr.as_str());
    assert_eq!(up["scrapeInterval"], "1s");
    assert!(up["lastScrapeDuration"].as_f64().unwrap() > 0.0);
    let dn = active.iter().find(|x| x["labels"]["instance"] == down.as_str()).unwrap();
    assert_eq!(dn["health"], "down");
    assert!(dn["lastError"].as_str().unwrap().contains("Get \"http://"), "{dn}");
    assert_eq!(t["data"]["droppedTargets"], serde_json::json!([]), "state=active lists no dropped targets");
    assert_eq!(t["data"]["droppedTargetCounts"], Value::Null);

    let ups = query(&s, "up{job=\"ne\"}");
    let v = |inst: &str| ups.iter().find(|x| x["metric"]["instance"] == inst).map(|x| x["value"][1].clone());
    assert_eq!(v(&addr), Some(Value::from("1")));
    assert_eq!(v(&down), Some(Value::from("0")));
    let port = addr.rsplit(':').next().unwrap();
    let load = query(&s, "node_load1{job=\"ne\"}");
    assert_eq!(load[0]["metric"]["port"], port, "{load:?}");
    assert!(query(&s, "go_goroutines").is_empty(), "metric_relabel_configs drop");
    let scraped = query(&s, &format!("scrape_samples_scraped{{instance=\"{addr}\"}}"));
    let post = query(&s, &format!("scrape_samples_post_metric_relabeling{{instance=\"{addr}\"}}"));
    let n = |r: &[Value]| r[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap();
    assert!(n(&scraped) > n(&post) && n(&post) > 100.0, "{scraped:?} {post:?}");
    assert!(!query(&s, "scrape_series_added").is_empty());

    // The job goes away: its series end at once (stale markers), not after the lookback.
    std::fs::write(s.config_path(), "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n").unwrap();
    let r = s.request("POST", "/-/reload", &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    eventually("stale markers for the removed job", Duration::from_millis(100), || {
        (query(&s, "up").is_empty() && query(&s, "node_load1").is_empty()).then_some(())
    });
    let t = json(&s.get("/api/v1/targets"));
    assert_eq!(t["data"]["activeTargets"], serde_json::json!([]));
    // The samples before the end are still there.
    assert!(!query(&s, "count_over_time(up[1m])").is_empty());
}

#[test]
fn file_sd_and_dropped_targets() {
    let (_ne, addr) = node_exporter();
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("targets.json");
    std::fs::write(&sd, format!(r#"[{{"targets":["{addr}","drop.me:1"],"labels":{{"team":"a"}}}}]"#)).unwrap();
    let config = format!(
        "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n\
         scrape_configs:\n  - job_name: sd\n    scrape_interval: 1s\n    file_sd_configs:\n      - files: ['{}/*.json']\n        refresh_interval: 1s\n    \
         relabel_configs:\n      - source_labels: [__address__]\n        regex: 'drop.*'\n        action: drop\n",
        dir.path().display()
    );
    let s = start(&config);
    let t = eventually("the file target up", Duration::from_millis(100), || {
        let t = json(&s.get("/api/v1/targets"));
        (t["data"]["activeTargets"][0]["health"] == "up").then_some(t)
    });
    assert_eq!(t["data"]["activeTargets"][0]["labels"]["team"], "a");
    assert_eq!(t["data"]["activeTargets"][0]["discoveredLabels"]["__meta_filepath"], sd.display().to_string());
    assert_eq!(t["data"]["droppedTargets"][0]["discoveredLabels"]["__address__"], "drop.me:1");
    assert_eq!(t["data"]["droppedTargetCounts"]["sd"], 1);
    // The file changes: the target goes, and so do its series.
    std::fs::write(&sd, "[]").unwrap();
    eventually("the target removed", Duration::from_millis(200), || {
        let t = json(&s.get("/api/v1/targets"));
        (t["data"]["activeTargets"] == serde_json::json!([]) && query(&s, "up").is_empty()).then_some(())
    });
}

/// The issue's required test: with the agent shipping every second, the server is stopped for
/// 60 s and started again; every sample from the outage arrives, none twice.
#[test]
fn agent_buffers_a_60s_outage_and_delivers_every_sample_once() {
    let mut s = start("collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n");
    s.pin_address();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.yml");
    std::fs::write(
        &cfg,
        "collectors:\n  interval: 1s\n  instance: agent-host\n  disabled: [processes]\nagent:\n  max_backoff: 1s\n  drain_timeout: 30s\n",
    )
    .unwrap();
    let mut agent = super::start_agent(s.url(), &cfg, &dir.path().join("data"));
    let count = |s: &TestServer| -> usize {
        let r = query(s, "count_over_time(node_load1{instance=\"agent-host\"}[10m])");
        r.first().and_then(|x| x["value"][1].as_str()?.parse().ok()).unwrap_or(0)
    };
    eventually("the agent's first samples", Duration::from_millis(200), || (count(&s) >= 3).then_some(()));
    assert_eq!(s.terminate().code(), Some(0));
    let (_keep, pause) = std::sync::mpsc::channel::<()>();
    let _ = pause.recv_timeout(Duration::from_secs(60));
    s.start_again();
    eventually("the outage's samples", Duration::from_millis(500), || (count(&s) >= 66).then_some(()));
    let status = agent.terminate();
    assert!(status.success(), "agent exited {status}\n{}", agent.log());
    let log = eventually("the agent's last line", Duration::from_millis(100), || {
        let l = agent.log();
        l.lines().any(|x| x.contains(" stopped")).then_some(l)
    });
    let line = log.lines().find(|x| x.contains(" stopped")).unwrap().to_string();
    let field = |name: &str| -> u64 {
        let i = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("{name} in {line}"));
        line[i + name.len() + 1..].split(' ').next().unwrap().parse().unwrap()
    };
    assert!(field("retries") > 0, "the outage caused retries: {line}");
    assert_eq!(field("dropped_full") + field("dropped_rejected"), 0, "{line}");
    assert_eq!(field("sent_samples"), field("enqueued_samples"), "everything queued was sent: {line}");

    // Every node_load1 sample, one per second with no gap: the outage is filled in.
    let text = s.get("/api/v1/export?match[]=%7Binstance%3D%22agent-host%22%7D").text();
    let mut stored = 0u64;
    let mut load_ts: Vec<i64> = Vec::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let ts = v["timestamps"].as_array().unwrap();
        stored += ts.len() as u64;
        if v["metric"]["__name__"] == "node_load1" {
            // Without the stale marker (null) written when the agent stops.
            let vals = v["values"].as_array().unwrap();
            load_ts = ts.iter().zip(vals).filter(|(_, v)| !v.is_null()).map(|(t, _)| t.as_i64().unwrap()).collect();
        }
    }
    let gaps: Vec<i64> = load_ts.windows(2).map(|w| w[1] - w[0]).filter(|&d| !(500..=1600).contains(&d)).collect();
    assert!(gaps.is_empty(), "node_load1 spacing outside 0.5-1.6 s: {gaps:?} over {} samples", load_ts.len());
    assert!(load_ts.len() >= 66, "{}", load_ts.len());
    // Sent once each: what the agent sent is exactly what the server holds (the server drops
    // an identical duplicate silently, so a resend would make sent exceed stored). The agent's
    // own series (job="telltale-agent") have the same instance and are counted above.
    assert_eq!(stored, field("sent_samples"), "{line}");
}

/// bcrypt of "s3cret" (made with Python's `crypt.crypt("s3cret", crypt.mksalt(METHOD_BLOWFISH))`),
/// for Prometheus's `basic_auth_users`.
const S3CRET_BCRYPT: &str = "$2b$12$AF00arKi4gSO.naakS4jPOTD064om52FDQYHCwL/CPLm/dzazgdo.";

/// `telltale agent` remote-writes over TLS (`agent.tls_config` with a client certificate) and
/// with basic auth (`agent.basic_auth`, the password from a file) to a real Prometheus whose
/// remote-write receiver requires both.
#[test]
fn agent_remote_writes_over_tls_with_a_client_certificate() {
    let pki = telltale_testkit::pki::Pki::new();
    pki.server("server", &["IP:127.0.0.1"]);
    let p = |f: &str| pki.path(f).display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n\
             basic_auth_users:\n  agent: '{S3CRET_BCRYPT}'\n",
            p("server.crt"),
            p("server.key"),
            p("ca.crt")
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), "global:\n  scrape_interval: 1m\n").unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let basic = "Basic YWdlbnQ6czNjcmV0"; // agent:s3cret
    let port = free_port();
    let _prom = Peer::start(
        "prometheus",
        &[
            format!("--config.file={}", dir.path().join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.path().join("prom").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.config.file={}", web.display()),
            "--web.enable-remote-write-receiver".into(),
        ],
    );
    let tls: telltale_collect::tls::TlsConfig = serde_yaml_ng::from_str(&format!(
        "ca_file: {}\ncert_file: {}\nkey_file: {}\n",
        p("ca.crt"),
        p("client.crt"),
        p("client.key")
    ))
    .unwrap();
    let client = telltale_collect::tls::agent(
        &tls,
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build(),
    )
    .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    eventually("Prometheus ready over TLS", Duration::from_millis(200), || {
        client
            .get(format!("{base}/-/ready"))
            .header("Authorization", basic)
            .call()
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    });
    assert_eq!(client.get(format!("{base}/-/ready")).call().unwrap().status(), 401, "basic auth is required");
    let cfg = dir.path().join("agent.yml");
    std::fs::write(
        &cfg,
        format!(
            "collectors:\n  interval: 1s\n  instance: tls-agent\n  disabled: [processes]\n\
             agent:\n  max_backoff: 1s\n  tls_config:\n    ca_file: {}\n    cert_file: {}\n    key_file: {}\n  \
             basic_auth:\n    username: agent\n    password_file: {}\n  headers:\n    X-Scope-OrgID: team-a\n",
            p("ca.crt"),
            p("client.crt"),
            p("client.key"),
            password.display()
        ),
    )
    .unwrap();
    let mut agent = super::start_agent(&base, &cfg, &dir.path().join("agent"));
    let query = |q: &str| -> Vec<Value> {
        let mut r =
            client.get(format!("{base}/api/v1/query")).header("Authorization", basic).query("query", q).call().unwrap();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    };
    let r = eventually("the agent's samples in Prometheus", Duration::from_millis(200), || {
        let log = agent.log();
        // A config error ends the agent at once ("telltale: <file>: <key>: ...").
        assert!(!log.contains("remote write failed") && !log.starts_with("telltale: "), "{log}");

        let r = query("node_load1{instance=\"tls-agent\"}");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(r[0]["metric"]["job"], "node", "{r:?}");
    // Without the client certificate Prometheus refuses the connection.
    let plain = telltale_collect::tls::agent(
        &serde_yaml_ng::from_str(&format!("ca_file: {}\n", p("ca.crt"))).unwrap(),
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build(),
    )
    .unwrap();
    let err = plain.get(format!("{base}/-/ready")).call().unwrap_err().to_string();
    assert!(err.contains("alert"), "{err}");
    let status = agent.terminate();
    assert!(status.success(), "agent exited {status}\n{}", agent.log());
    assert!(!agent.log().contains("remote write failed"), "{}", agent.log());
}
