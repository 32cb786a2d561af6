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
    prometheus_request(base, "GET", path, "").1
}

/// A GET, or a form-encoded POST when `form` is not empty, to Prometheus: status and JSON.
fn prometheus_request(base: &str, method: &str, path: &str, form: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{base}{path}");
    let res = if method == "POST" {
        agent.post(&url).header("content-type", "application/x-www-form-urlencoded").send(form.as_bytes())
    } else {
        agent.get(&url).call()
    };
    let mut res = res.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status().as_u16();
    let body = res.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
}

/// The same request to Telltale.
fn telltale_request(s: &TestServer, method: &str, path: &str, form: &str) -> (u16, Value) {
    let r =
        if method == "POST" { s.post(path, "application/x-www-form-urlencoded", form.as_bytes()) } else { s.get(path) };
    (r.status, json(&r))
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

    grafana_requests_answer_as_prometheus_does(&telltale, &prom_url, start_s, at_s);
}

/// What Grafana's Prometheus data source sends (Grafana itself is not packaged for this
/// machine, so its requests are replayed): the version probe, the "Save & test" health check
/// (POST, Grafana's default method), the metrics browser's label, value, series and metadata
/// lookups, a graph's range query and the exemplars it asks for beside it. Each answer must
/// have Prometheus's status and structure, and the same data where both hold the same series.
fn grafana_requests_answer_as_prometheus_does(s: &TestServer, prom: &str, start_s: f64, at_s: f64) {
    let build = json(&s.get("/api/v1/status/buildinfo"));
    let version = build["data"]["version"].as_str().unwrap_or("");
    assert!(version.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= 2), "{build}");
    let window = format!("start={start_s}&end={at_s}");
    // No range selector: Prometheus 2.42's windows are closed on the left, 3.x's open.
    let range = format!("query=sum%20by%20(handler)%20(telltale_http_requests_total)&{window}&step=1");
    // How much of the answer must agree: all of it, Telltale's list within Prometheus's (whose
    // head also lists series that appeared after the window), or the structure only.
    #[derive(Clone, Copy, PartialEq)]
    enum Agree {
        Same,
        Within,
        Shape,
    }
    use Agree::*;
    let requests: Vec<(&str, String, String, Agree)> = vec![
        ("POST", "/api/v1/query".into(), format!("query=1%2B1&time={at_s}"), Same),
        ("GET", format!("/api/v1/labels?{window}"), String::new(), Within),
        ("POST", "/api/v1/labels".into(), format!("match%5B%5D=up&{window}"), Same),
        ("GET", format!("/api/v1/label/__name__/values?{window}"), String::new(), Within),
        ("GET", format!("/api/v1/label/job/values?match%5B%5D=up&{window}"), String::new(), Same),
        ("GET", format!("/api/v1/series?match%5B%5D=up&{window}"), String::new(), Same),
        ("POST", "/api/v1/series".into(), format!("match%5B%5D=scrape_samples_scraped&{window}"), Same),
        ("GET", "/api/v1/metadata?metric=telltale_http_requests_total".into(), String::new(), Shape),
        ("POST", "/api/v1/query_range".into(), range, Same),
        ("POST", "/api/v1/query_exemplars".into(), format!("query=up&{window}"), Shape),
        ("POST", "/api/v1/query".into(), format!("query=sum(rate(up%5B1m%5D&time={at_s}"), Shape),
    ];
    let data = |v: &Value| -> Vec<String> {
        let d = if v["data"]["result"].is_array() { &v["data"]["result"] } else { &v["data"] };
        let mut items: Vec<String> = d.as_array().map(|a| a.iter().map(Value::to_string).collect()).unwrap_or_default();
        items.sort();
        items
    };
    for (method, path, form, agree) in requests {
        let what = format!("{method} {path} {form}");
        let (ours_status, ours) = telltale_request(s, method, &path, &form);
        let (theirs_status, theirs) = prometheus_request(prom, method, &path, &form);
        assert_eq!(ours_status, theirs_status, "{what}: {ours} vs {theirs}");
        let (mut a, mut b) = (Default::default(), Default::default());
        shape(&ours, "", &mut a);
        shape(&theirs, "", &mut b);
        // An empty list on one side has no element shapes to compare.
        let filled = |v: &Value| !data(v).is_empty();
        if filled(&ours) == filled(&theirs) {
            assert_eq!(a, b, "structure of {what}");
        }
        match agree {
            Same => assert_eq!(
                (&ours["data"]["resultType"], data(&ours)),
                (&theirs["data"]["resultType"], data(&theirs)),
                "{what}"
            ),
            Within => {
                let (ours, theirs) = (data(&ours), data(&theirs));
                let missing: Vec<&String> = ours.iter().filter(|x| !theirs.contains(x)).collect();
                assert!(missing.is_empty() && !theirs.is_empty(), "{what}: not in Prometheus's answer: {missing:?}");
            }
            Shape => {}
        }
    }
}

/// Every key of an object, recursively, with the JSON type of its value (the structure of a
/// response, not its values).
fn shape(v: &Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
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
            // Label maps hold data, not structure.
            if path.ends_with("labels") || path.ends_with("Labels") || path.ends_with("Counts") {
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

/// `(scrapeUrl, the fields that must be equal)` of every active target, sorted.
fn comparable(targets: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = targets["data"]["activeTargets"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|t| {
            let keep = serde_json::json!({
                "labels": t["labels"],
                "discoveredLabels": t["discoveredLabels"],
                "scrapePool": t["scrapePool"],
                "scrapeUrl": t["scrapeUrl"],
                "globalUrl": t["globalUrl"],
                "health": t["health"],
                "scrapeInterval": t["scrapeInterval"],
                "scrapeTimeout": t["scrapeTimeout"],
            });
            (t["scrapeUrl"].as_str().unwrap_or_default().to_string(), keep)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn dropped(targets: &Value) -> Vec<String> {
    let mut d: Vec<String> = targets["data"]["droppedTargets"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|t| t["discoveredLabels"].to_string())
        .collect();
    d.sort();
    d
}

/// The same scrape config (static and file targets, hashmod and the other relabel actions,
/// params, a dropped target) given to Prometheus and to Telltale, scraping one node_exporter
/// and some closed ports: `/api/v1/targets` must give the same targets with the same labels,
/// discovered labels, URLs and health, in the same JSON structure.
#[test]
fn targets_and_relabeling_match_a_real_prometheus() {
    let port = free_port();
    let _ne = Peer::start("prometheus-node-exporter", &[format!("--web.listen-address=127.0.0.1:{port}")]);
    let addr = format!("127.0.0.1:{port}");
    let closed: Vec<String> = (0..6).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("more.json"),
        format!(r#"[{{"targets":["{addr}","localhost:{port}"],"labels":{{"team":"files","__meta_rack":"r1"}}}}]"#),
    )
    .unwrap();
    let scrape = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: ne
    static_configs:
      - targets: ['{addr}', {closed}]
        labels: {{env: test, team: core}}
      - targets: ['drop.me:1']
    relabel_configs:
      - source_labels: [__address__]
        regex: 'drop\..*'
        action: drop
      - source_labels: [__address__]
        modulus: 8
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        target_label: shard
      - source_labels: [__address__, env]
        separator: '@'
        modulus: 1000
        target_label: bucket
        action: hashmod
      - source_labels: [__address__]
        regex: '(.*):(\d+)'
        target_label: port
        replacement: 'p${{2}}'
      - source_labels: [team]
        target_label: team_upper
        action: uppercase
  - job_name: files
    metrics_path: /metrics
    params:
      'collect[]': [loadavg]
    file_sd_configs:
      - files: ['{dir}/*.json']
    relabel_configs:
      - regex: '__meta_(rack)'
        replacement: 'meta_$1'
        action: labelmap
      - source_labels: [__address__]
        regex: 'localhost:.*'
        target_label: instance
        replacement: local
"#,
        closed = closed.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", "),
        dir = dir.path().display()
    );
    std::fs::write(dir.path().join("prometheus.yml"), &scrape).unwrap();
    let prom_port = free_port();
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let prom = Peer::start(
        "prometheus",
        &[
            format!("--config.file={}", dir.path().join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
    );
    let telltale = start(&format!("collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n{scrape}"));
    // Both have scraped every target at least once.
    let settled = |get: &dyn Fn() -> Value| {
        eventually("every target scraped", Duration::from_millis(200), || {
            let v = get();
            let a = v["data"]["activeTargets"].as_array()?.clone();
            (a.len() == 9 && a.iter().all(|t| t["health"] != "unknown")).then_some(v)
        })
    };
    let theirs = settled(&|| prometheus_get(&prom_url, "/api/v1/targets"));
    let ours = settled(&|| json(&telltale.get("/api/v1/targets")));
    let (a, b) = (comparable(&ours), comparable(&theirs));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "target differs\n{}", prom.log());
    }
    assert_eq!(a.len(), b.len());
    assert_eq!(dropped(&ours), dropped(&theirs));
    // hashmod gave each closed port a shard; the same as Prometheus's is checked above, and
    // with 6 addresses over 8 shards more than one shard is used.
    let shards: std::collections::BTreeSet<String> = a.iter().map(|(_, t)| t["labels"]["shard"].to_string()).collect();
    assert!(shards.len() > 1, "{shards:?}");

    // The same structure: every key with the type of its value. Telltale answers as
    // Prometheus 3, which has two fields Debian's Prometheus 2.42 predates:
    // `droppedTargetCounts` and the `scrapePool` of a dropped target.
    let newer = [".data.droppedTargetCounts: object", ".data.droppedTargets[].scrapePool: string"];
    let (mut s1, mut s2) = (Default::default(), Default::default());
    shape(&ours, "", &mut s1);
    shape(&theirs, "", &mut s2);
    for n in newer {
        assert!(s1.remove(n), "{n} in {s1:?}");
    }
    assert_eq!(s1, s2);
    for q in ["?state=active", "?state=dropped", "?scrapePool=files", "?state=active&scrapePool=ne"] {
        let path = format!("/api/v1/targets{q}");
        let (ours, theirs) = (json(&telltale.get(&path)), prometheus_get(&prom_url, &path));
        let (mut s1, mut s2) = (Default::default(), Default::default());
        shape(&ours, "", &mut s1);
        shape(&theirs, "", &mut s2);
        s1.retain(|k| !k.starts_with(".data.droppedTargetCounts") && !newer.contains(&k.as_str()));
        assert_eq!(s1, s2, "{path}");
        let urls = |v: &Value| comparable(v).into_iter().map(|(u, _)| u).collect::<Vec<_>>();
        assert_eq!(urls(&ours), urls(&theirs), "{path}");
        assert_eq!(dropped(&ours), dropped(&theirs), "{path}");
    }
}
