//! `scheme: https` with `tls_config` against the real peer: Debian's node_exporter serving
//! TLS from `--web.config.file` (Prometheus's exporter-toolkit), with certificates made by
//! the test. One node_exporter requires client certificates; the other has a certificate
//! for a DNS name only and speaks at most TLS 1.2.

use std::sync::Arc;
use std::time::Duration;

use telltale_collect::scrape::{GlobalConfig, Manager, ScrapeConfig};
use telltale_testkit::pki::Pki;
use telltale_testkit::{eventually, free_port, Peer};

use super::support::{target, Recorder};

/// node_exporter serving TLS per `web_config` (YAML) on a free port; returns it and its address.
fn tls_node_exporter(pki: &Pki, name: &str, web_config: &str) -> (Peer, String) {
    let cfg = pki.path(&format!("{name}-web.yml"));
    std::fs::write(&cfg, web_config).unwrap();
    let port = free_port();
    let ne = Peer::start(
        "prometheus-node-exporter",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.config.file={}", cfg.display()),
            // Only what the test needs: a quick scrape.
            "--collector.disable-defaults".into(),
            "--collector.loadavg".into(),
        ],
    );
    let addr = format!("127.0.0.1:{port}");
    eventually("node_exporter to listen", Duration::from_millis(50), || {
        std::net::TcpStream::connect(&addr).ok().map(|_| ())
    });
    (ne, addr)
}

#[test]
fn https_targets_with_tls_config_against_node_exporter() {
    let pki = Pki::new();
    pki.server("server", &["IP:127.0.0.1", "DNS:localhost"]);
    pki.server("named", &["DNS:node.test"]);
    let p = |f: &str| pki.path(f).display().to_string();
    let (_mtls, a) = tls_node_exporter(
        &pki,
        "mtls",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            p("server.crt"),
            p("server.key"),
            p("ca.crt")
        ),
    );
    let (_named, b) = tls_node_exporter(
        &pki,
        "named",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  max_version: TLS12\n",
            p("named.crt"),
            p("named.key")
        ),
    );
    // A CA file that starts out wrong and is then replaced (a rotated certificate).
    let rotating = pki.path("rotating-ca.crt");
    std::fs::copy(pki.path("other-ca.crt"), &rotating).unwrap();

    let client = format!("cert_file: {}\n      key_file: {}\n", p("client.crt"), p("client.key"));
    let job = |name: &str, addr: &str, tls: &str| {
        format!("- job_name: {name}\n  scheme: https\n  scrape_interval: 1s\n  static_configs: [{{targets: ['{addr}']}}]\n  tls_config:\n      {tls}\n")
    };
    let yaml = [
        job("mtls", &a, &format!("ca_file: {}\n      {client}", p("ca.crt"))),
        job("no_client_cert", &a, &format!("ca_file: {}", p("ca.crt"))),
        job("unknown_ca", &a, &format!("ca_file: {}\n      {client}", p("other-ca.crt"))),
        job("insecure", &a, &format!("insecure_skip_verify: true\n      {client}")),
        job("rotate", &a, &format!("ca_file: {}\n      {client}", rotating.display())),
        job("server_name", &b, &format!("ca_file: {}\n      server_name: node.test", p("ca.crt"))),
        job("wrong_name", &b, &format!("ca_file: {}", p("ca.crt"))),
        job(
            "tls13_only",
            &b,
            &format!("ca_file: {}\n      server_name: node.test\n      min_version: TLS13", p("ca.crt")),
        ),
        format!("- job_name: plain_http\n  scrape_interval: 1s\n  static_configs: [{{targets: ['{a}']}}]\n"),
    ]
    .concat();
    let configs: Vec<ScrapeConfig> = serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let sink = Arc::new(Recorder::default());
    let clock: telltale_collect::scrape::Clock =
        Arc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64);
    let manager = Manager::new(sink.clone(), clock);
    manager.apply(&GlobalConfig::default(), &configs).unwrap();
    let targets = eventually("every target scraped", Duration::from_millis(100), || {
        let t = manager.targets().to_json(None, None);
        let all = t["activeTargets"].as_array()?;
        (all.len() == 9 && all.iter().all(|x| x["health"] != "unknown")).then_some(t)
    });
    let show = |job: &str| format!("{job}: {}", target(&targets, job));
    let health = |job: &str| target(&targets, job)["health"].as_str().unwrap_or_default().to_string();
    let error = |job: &str| target(&targets, job)["lastError"].as_str().unwrap_or_default().to_string();

    for job in ["mtls", "insecure", "server_name"] {
        assert_eq!(health(job), "up", "{}", show(job));
        assert_eq!(sink.up(job), Some(1.0), "{job}");
        assert!(sink.has(job, "node_load1"), "{job}: node_exporter's samples");
    }
    assert_eq!(target(&targets, "mtls")["scrapeUrl"], format!("https://{a}/metrics"));
    assert_eq!(target(&targets, "mtls")["discoveredLabels"]["__scheme__"], "https");
    for (job, why) in [
        ("no_client_cert", "received fatal alert: BadCertificate"),
        ("unknown_ca", "invalid peer certificate: UnknownIssuer"),
        ("rotate", "UnknownIssuer"),
        ("wrong_name", "certificate not valid for name \"127.0.0.1\""),
        ("tls13_only", "received fatal alert: ProtocolVersion"),
        ("plain_http", "server returned HTTP status 400 Bad Request"),
    ] {
        assert_eq!(health(job), "down", "{}", show(job));
        assert!(error(job).contains(why), "{job}: expected {why:?} in {:?}", error(job));
        assert_eq!(sink.up(job), Some(0.0), "{job}");
    }
    assert_eq!(error("unknown_ca"), format!("Get \"https://{a}/metrics\": invalid peer certificate: UnknownIssuer"));

    // The CA file is replaced with the right one: the next scrape uses it, no reload needed.
    std::fs::copy(pki.path("ca.crt"), &rotating).unwrap();
    eventually("the rotated CA to be used", Duration::from_millis(100), || {
        (target(&manager.targets().to_json(None, None), "rotate")["health"] == "up").then_some(())
    });
    rt.block_on(manager.stop());
}

#[test]
fn bad_tls_configs_are_refused_naming_the_key() {
    let pki = Pki::new();
    let bad = |tls: &str| {
        let yaml = format!("- job_name: j\n  scheme: https\n  tls_config:\n    {tls}\n");
        let configs: Vec<ScrapeConfig> = serde_yaml_ng::from_str(&yaml).unwrap();
        telltale_collect::scrape::config::validate(&GlobalConfig::default(), &configs).unwrap_err().to_string()
    };
    assert_eq!(
        bad("ca_file: /nonexistent.pem"),
        "scrape_configs[0].tls_config: cannot read /nonexistent.pem: No such file or directory (os error 2)"
    );
    let key = pki.path("ca.key").display().to_string();
    assert!(
        bad(&format!("ca_file: {key}")).contains("no PEM certificate found in ca_file"),
        "{}",
        bad(&format!("ca_file: {key}"))
    );
    // The client certificate with the wrong key.
    let (crt, other_key) = (pki.path("client.crt"), pki.path("other-ca.key"));
    assert!(bad(&format!("cert_file: {}\n    key_file: {}", crt.display(), other_key.display()))
        .contains("client certificate and key do not fit together"),);
    let unknown: Result<Vec<ScrapeConfig>, _> =
        serde_yaml_ng::from_str("- job_name: j\n  tls_config:\n    ca_fil: x\n");
    assert!(unknown.unwrap_err().to_string().contains("unknown field `ca_fil`"));
}
