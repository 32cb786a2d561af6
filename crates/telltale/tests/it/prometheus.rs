//! Side by side with Debian's real Prometheus: Prometheus scrapes Telltale's `/metrics` and
//! remote-writes what it scraped to Telltale; then the same PromQL queries at the same
//! times must give the same answers from both, and metadata must have arrived.

use std::time::Duration;

use serde_json::Value;
use telltale_testkit::{eventually, free_port, Peer, TestServer};

use super::{json, start};

/// Queries over what Prometheus scraped from Telltale (counters, gauges, a histogram).
const QUERIES: &[&str] = &[
    "up",
    "scrape_samples_scraped",
    "count({job=\"telltale\"})",
    "sum by (handler) (telltale_http_requests_total)",
    "telltale_http_requests_total{handler=\"/metrics\"} * 2",
    "max_over_time(scrape_duration_seconds[10s]) > 0",
    "histogram_quantile(0.9, sum by (le) (telltale_http_request_duration_seconds_bucket))",
    "count_over_time(up[10s])",
    "timestamp(up)",
    "label_replace(up, \"port\", \"$1\", \"instance\", \".*:(.*)\")",
];

fn prometheus_get(base: &str, path: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut res = agent.get(format!("{base}{path}")).call().unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    let body = res.body_mut().read_to_string().unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The result with series sorted, so order differences do not count.
fn sorted_result(v: &Value) -> Value {
    let mut data = v["data"].clone();
    if let Some(list) = data["result"].as_array_mut() {
        list.sort_by_key(|s| s["metric"].to_string());
    }
    data
}

fn encode(q: &str) -> String {
    q.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The newest `up` sample Telltale holds, in milliseconds.
fn newest_up(s: &TestServer) -> Option<i64> {
    let r = s.get("/api/v1/query?query=timestamp(up)");
    let v = json(&r);
    let ts = v["data"]["result"][0]["value"][1].as_str()?.parse::<f64>().ok()?;
    Some((ts * 1000.0) as i64)
}

#[test]
fn answers_match_a_real_prometheus_fed_by_remote_write() {
    let telltale = start("collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n");
    let target = telltale.url().trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: telltale\n    static_configs:\n      - targets: ['{target}']\n\
         remote_write:\n  - url: {url}/api/v1/write\n    queue_config:\n      batch_send_deadline: 200ms\n      \
         min_backoff: 50ms\n    metadata_config:\n      send_interval: 1s\n",
        url = telltale.url()
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let prom_url = format!("http://127.0.0.1:{port}");
    let prom = Peer::start(
        "prometheus",
        &[
            format!("--config.file={}", dir.path().join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
    );

    // Wait until Telltale has received several seconds of scrapes by remote write.
    let first = eventually("the first remote-written sample", Duration::from_millis(200), || newest_up(&telltale));
    let t = eventually("eight more seconds of samples", Duration::from_millis(200), || {
        newest_up(&telltale).filter(|&n| n >= first + 8000)
    });
    // Evaluate a few seconds back, so every series' samples up to then have arrived.
    let at = t - 3000;
    let (at_s, start_s) = (at as f64 / 1000.0, (at - 5000) as f64 / 1000.0);
    for q in QUERIES {
        let path = format!("/api/v1/query?query={}&time={at_s}", encode(q));
        let ours = json(&telltale.get(&path));
        let theirs = prometheus_get(&prom_url, &path);
        assert_eq!(ours["status"], "success", "{q}: {ours}");
        assert!(ours["data"]["result"].as_array().is_some_and(|r| !r.is_empty()), "{q}: empty result {ours}");
        assert_eq!(sorted_result(&ours), sorted_result(&theirs), "instant query {q} at {at_s}\n{}", prom.log());
        if q.contains("[10s]") {
            continue;
        }
        let path = format!("/api/v1/query_range?query={}&start={start_s}&end={at_s}&step=1", encode(q));
        let ours = json(&telltale.get(&path));
        let theirs = prometheus_get(&prom_url, &path);
        assert_eq!(sorted_result(&ours), sorted_result(&theirs), "range query {q} ending {at_s}");
    }
    let ours = json(&telltale.get("/api/v1/query?query=count(up)"));
    assert_eq!(ours["data"]["result"][0]["value"][1], "1", "{ours}");

    // Remote write carries metadata; /api/v1/metadata serves it as Prometheus does.
    let meta = eventually("metadata sent by Prometheus", Duration::from_millis(200), || {
        let v = json(&telltale.get("/api/v1/metadata?metric=telltale_http_requests_total"));
        v["data"]["telltale_http_requests_total"].as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(meta[0]["type"], "counter", "{meta:?}");
    assert!(meta[0]["help"].as_str().is_some_and(|h| !h.is_empty()), "{meta:?}");
}
