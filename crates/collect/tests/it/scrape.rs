//! Scrape settings a pasted Prometheus config carries, against real peers: `proxy_url` and
//! `no_proxy` through Debian's tinyproxy, `follow_redirects` and `fallback_scrape_protocol`
//! against Python's `http.server` (which redirects `/metrics` to `/metrics/` when that is a
//! directory, and serves its `index.html` as text/html), `target_limit` and
//! `keep_dropped_targets`, `global:` defaults.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use telltale_collect::scrape::{GlobalConfig, Manager, ScrapeConfig};
use telltale_testkit::{eventually, free_port, Peer};

use super::support::{clock, target, Recorder};

fn listening(addr: &str) {
    eventually(&format!("{addr} to listen"), Duration::from_millis(50), || {
        std::net::TcpStream::connect(addr).ok().map(|_| ())
    });
}

#[test]
fn proxies_redirects_limits_and_global_defaults() {
    let dir = tempfile::tempdir().unwrap();
    // node_exporter, reached through tinyproxy.
    let ne_port = free_port();
    let _ne = Peer::start(
        "prometheus-node-exporter",
        &[
            format!("--web.listen-address=127.0.0.1:{ne_port}"),
            "--collector.disable-defaults".into(),
            "--collector.loadavg".into(),
        ],
    );
    let proxy_port = free_port();
    let proxy_log = dir.path().join("tinyproxy.log");
    std::fs::write(
        dir.path().join("tinyproxy.conf"),
        format!(
            "Port {proxy_port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 20\nAllow 127.0.0.1\nLogFile \"{}\"\n",
            proxy_log.display()
        ),
    )
    .unwrap();
    let _proxy =
        Peer::start("tinyproxy", &["-d".into(), "-c".into(), dir.path().join("tinyproxy.conf").display().to_string()]);
    // A static site whose /metrics is a directory: GET /metrics answers 301 to /metrics/.
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("metrics")).unwrap();
    std::fs::write(site.join("metrics/index.html"), "# TYPE site_up gauge\nsite_up 1\n").unwrap();
    let web_port = free_port();
    let sd = site.join("sd.json");
    std::fs::write(&sd, format!(r#"[{{"targets":["127.0.0.1:{ne_port}"],"labels":{{"from":"http"}}}}]"#)).unwrap();
    let web_server = Peer::start(
        "python3",
        &[
            "-m".into(),
            "http.server".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--directory".into(),
            site.display().to_string(),
            web_port.to_string(),
        ],
    );
    for p in [ne_port, proxy_port, web_port] {
        listening(&format!("127.0.0.1:{p}"));
    }
    let (ne, web) = (format!("127.0.0.1:{ne_port}"), format!("127.0.0.1:{web_port}"));
    let many: Vec<String> = (1..=3).map(|i| format!("'127.0.0.{i}:1'")).collect();
    let yaml = format!(
        r#"
- job_name: proxied
  scrape_interval: 1s
  proxy_url: http://127.0.0.1:{proxy_port}
  static_configs: [{{targets: ['{ne}']}}]
- job_name: bypass
  scrape_interval: 1s
  proxy_url: http://127.0.0.1:{proxy_port}
  no_proxy: localhost,example.com
  static_configs: [{{targets: ['localhost:{ne_port}']}}]
- job_name: redirected
  scrape_interval: 1s
  static_configs: [{{targets: ['{web}']}}]
- job_name: not_followed
  scrape_interval: 1s
  follow_redirects: false
  static_configs: [{{targets: ['{web}']}}]
- job_name: too_many
  scrape_interval: 1s
  target_limit: 2
  static_configs: [{{targets: [{many}]}}]
- job_name: http
  scrape_interval: 1s
  http_sd_configs:
    - url: http://{web}/sd.json
      refresh_interval: 1s
- job_name: few_dropped
  scrape_interval: 1s
  keep_dropped_targets: 1
  static_configs: [{{targets: ['a:1', 'b:1', 'c:1', '{ne}']}}]
  relabel_configs:
    - source_labels: [__address__]
      regex: '[abc]:1'
      action: drop
"#,
        many = many.join(", ")
    );
    let configs: Vec<ScrapeConfig> = serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    // global: sample limits apply to jobs that set none.
    let global: GlobalConfig = serde_yaml_ng::from_str(
        "scrape_interval: 1s\nscrape_timeout: 1s\nevaluation_interval: 30s\nsample_limit: 500\n",
    )
    .unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let sink = Arc::new(Recorder::default());
    let manager = Manager::new(sink.clone(), clock());
    manager.apply(&global, &configs).unwrap();
    let t = eventually("every target scraped", Duration::from_millis(100), || {
        let t = manager.targets().to_json(None, None);
        let all = t["activeTargets"].as_array()?;
        (all.len() == 9 && all.iter().all(|x| x["health"] != "unknown")).then_some(t)
    });
    let show = |job: &str| target(&t, job).to_string();
    let health = |job: &str| target(&t, job)["health"].as_str().unwrap_or_default().to_string();

    assert_eq!(health("proxied"), "up", "{}", show("proxied"));
    assert!(sink.has("proxied", "node_load1"));
    assert_eq!(health("bypass"), "up", "{}", show("bypass"));
    let log = std::fs::read_to_string(&proxy_log).unwrap_or_default();
    assert!(log.contains(&format!("CONNECT 127.0.0.1:{ne_port}")), "the proxy saw no CONNECT:\n{log}");
    assert!(!log.contains(&format!("localhost:{ne_port}")), "no_proxy host went through the proxy:\n{log}");

    assert_eq!(health("redirected"), "up", "{}", show("redirected"));
    assert!(sink.has("redirected", "site_up"), "text/html parsed with the fallback protocol");
    assert_eq!(health("not_followed"), "down");
    assert_eq!(target(&t, "not_followed")["lastError"], "server returned HTTP status 301 Moved Permanently");

    let over: Vec<&Value> =
        t["activeTargets"].as_array().unwrap().iter().filter(|x| x["scrapePool"] == "too_many").collect();
    assert_eq!(over.len(), 3);
    for x in over {
        assert_eq!(x["health"], "down");
        assert_eq!(x["lastError"], "target_limit exceeded (number of targets: 3, limit: 2)");
    }
    assert_eq!(sink.up("too_many"), Some(0.0));

    assert_eq!(t["droppedTargetCounts"]["few_dropped"], 3);
    let kept = t["droppedTargets"].as_array().unwrap().iter().filter(|x| x["scrapePool"] == "few_dropped").count();
    assert_eq!(kept, 1, "keep_dropped_targets: 1");
    // HTTP discovery: the group's labels and __meta_url; a changed answer changes the
    // targets; a failed fetch (404) keeps the last good answer, as Prometheus.
    assert_eq!(health("http"), "up", "{}", show("http"));
    assert_eq!(target(&t, "http")["labels"]["from"], "http");
    assert_eq!(target(&t, "http")["discoveredLabels"]["__meta_url"], format!("http://{web}/sd.json"));
    std::fs::write(&sd, format!(r#"[{{"targets":["127.0.0.1:{ne_port}","localhost:{ne_port}"]}}]"#)).unwrap();
    let count = || {
        let t = manager.targets().to_json(Some("active"), Some("http"));
        t["activeTargets"].as_array().map_or(0, Vec::len)
    };
    eventually("the second http_sd target", Duration::from_millis(100), || (count() == 2).then_some(()));
    std::fs::remove_file(&sd).unwrap();
    // Two failed fetches: the pool's loop is fetch, update, wait, so the update after the
    // first has run when the second is asked.
    eventually("two failed http_sd fetches", Duration::from_millis(100), || {
        (web_server.log().matches("\"GET /sd.json HTTP/1.1\" 404").count() >= 2).then_some(())
    });
    assert_eq!(count(), 2, "the last good answer is kept");

    // global sample_limit (500) is far above a one-collector node_exporter's samples.
    assert_eq!(health("few_dropped"), "up", "{}", show("few_dropped"));
    rt.block_on(manager.stop());

    // The same global limit, tight: the scrape fails and says why.
    let tight: GlobalConfig =
        serde_yaml_ng::from_str("scrape_interval: 1s\nscrape_timeout: 1s\nsample_limit: 2\n").unwrap();
    let manager = Manager::new(sink.clone(), clock());
    manager.apply(&tight, &configs[..1]).unwrap();
    let e = eventually("the limited scrape", Duration::from_millis(100), || {
        let t = manager.targets().to_json(None, None);
        let e = target(&t, "proxied")["lastError"].as_str()?.to_string();
        (!e.is_empty()).then_some(e)
    });
    assert!(e.starts_with("sample limit exceeded: "), "{e}");
    rt.block_on(manager.stop());
}

#[test]
fn scrape_protocols_and_proxy_settings_are_checked() {
    let bad = |job: &str| {
        let configs: Vec<ScrapeConfig> = serde_yaml_ng::from_str(&format!("- job_name: j\n{job}")).unwrap();
        telltale_collect::scrape::config::validate(&GlobalConfig::default(), &configs).unwrap_err().to_string()
    };
    assert!(bad("  scrape_protocols: [Text9]\n")
        .starts_with("scrape_configs[0].scrape_protocols: unknown scrape protocol \"Text9\""));
    assert_eq!(
        bad("  scrape_protocols: [PrometheusProto]\n"),
        "scrape_configs[0].scrape_protocols: scrape_protocols names no text format (Telltale does not parse PrometheusProto)"
    );
    assert_eq!(
        bad("  no_proxy: a\n"),
        "scrape_configs[0].no_proxy: if no_proxy is configured, proxy_url must also be configured"
    );
    assert_eq!(
        bad("  proxy_url: socks5://h:1\n"),
        "scrape_configs[0].proxy_url: proxy_url \"socks5://h:1\": only http:// and https:// proxies are supported"
    );
    let accept = telltale_collect::scrape::config::accept_header(&[
        "PrometheusProto".into(),
        "OpenMetricsText1.0.0".into(),
        "PrometheusText0.0.4".into(),
    ])
    .unwrap();
    assert_eq!(accept, "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.4");
    let default = GlobalConfig::default();
    assert_eq!(
        telltale_collect::scrape::config::accept_header(&default.scrape_protocols).unwrap(),
        "application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3"
    );
}
