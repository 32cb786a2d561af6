//! Real log shippers against the real binary: util-linux `logger` (UDP, TCP, RFC 5424 and
//! 3164), rsyslog forwarding, the Elasticsearch Python client's `helpers.bulk`, the
//! OpenTelemetry Python SDK's OTLP/HTTP exporter and python-logging-loki. Each checks that the
//! lines come back exactly through LogQL. `scripts/test.sh` installs them (apt, and a venv
//! at `.venv-test`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use telltale_testkit::{eventually, Peer, TestServer};

use super::logs::{logql, sql_lines, QUIET};
use super::start;

fn python() -> PathBuf {
    let p = std::env::var_os("TELLTALE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-test/bin/python")));
    assert!(p.is_file(), "{} is missing: run scripts/test.sh, which creates the test venv", p.display());
    p
}

fn run_client(script: &str, s: &TestServer, n: usize) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/");
    let out = Command::new(python()).arg(format!("{path}{script}")).arg(s.url()).arg(n.to_string()).output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_lines(s: &TestServer, query: &str, n: usize) -> Vec<(serde_json::Value, String, String)> {
    eventually(&format!("{n} lines for {query}"), Duration::from_millis(100), || {
        let got = logql(s, query);
        (got.len() >= n).then_some(got)
    })
}

/// The address a listener logged (`syslog listening proto=udp addr=...`).
fn listener(s: &TestServer, proto: &str) -> String {
    let log = s.log();
    let line = log
        .lines()
        .find(|l| {
            l.contains("syslog listening")
                && (l.contains(&format!("proto={proto}")) || l.contains(&format!("proto=\"{proto}\"")))
        })
        .expect("listener logged");
    line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

const SYSLOG: &str =
    "server:\n  self_scrape_interval: 0s\nlogs:\n  syslog:\n    udp: 127.0.0.1:0\n    tcp: 127.0.0.1:0\n";

fn logger(args: &[&str]) {
    let out = Command::new("logger").args(args).output().expect("logger (util-linux) is installed");
    assert!(out.status.success(), "logger {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn logger_over_udp_and_tcp_rfc5424_and_3164() {
    let s = start(SYSLOG);
    let (udp, tcp) = (listener(&s, "udp"), listener(&s, "tcp"));
    let (uh, up) = udp.split_once(':').unwrap();
    let (th, tp) = tcp.split_once(':').unwrap();
    logger(&[
        "--udp",
        "--server",
        uh,
        "--port",
        up,
        "--rfc5424",
        "-t",
        "udpapp",
        "-p",
        "local3.warning",
        "udp 5424 line ✓",
    ]);
    logger(&["--udp", "--server", uh, "--port", up, "--rfc3164", "-t", "udpapp", "-p", "user.err", "udp 3164 line"]);
    logger(&["--tcp", "--server", th, "--port", tp, "--rfc5424", "--octet-count", "-t", "tcpapp", "tcp octet counted"]);
    logger(&["--tcp", "--server", th, "--port", tp, "--rfc5424", "-t", "tcpapp", "tcp newline framed"]);
    let got = wait_lines(&s, r#"{app=~"udpapp|tcpapp"}"#, 4);
    let mut lines: Vec<(String, String, String)> = got
        .iter()
        .map(|(l, _, line)| {
            (l["app"].as_str().unwrap().to_string(), l["severity"].as_str().unwrap().to_string(), line.clone())
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            ("tcpapp".into(), "notice".into(), "tcp newline framed".into()),
            ("tcpapp".into(), "notice".into(), "tcp octet counted".into()),
            ("udpapp".into(), "error".into(), "udp 3164 line".into()),
            ("udpapp".into(), "warning".into(), "udp 5424 line ✓".into()),
        ]
    );
    let mut via_sql = sql_lines(&s, "SELECT line FROM logs WHERE app IN ('udpapp', 'tcpapp')");
    via_sql.sort();
    assert_eq!(via_sql, ["tcp newline framed", "tcp octet counted", "udp 3164 line", "udp 5424 line ✓"]);
    let l = &got.iter().find(|(_, _, line)| line == "udp 5424 line ✓").unwrap().0;
    assert_eq!(l["facility"], "local3");
    assert!(l["host"].is_string(), "{l}");
}

#[test]
fn rsyslog_forwards_to_telltale() {
    let s = start(SYSLOG);
    let tcp = listener(&s, "tcp");
    let (th, tp) = tcp.split_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inport = telltale_testkit::free_port();
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{}\")\nmodule(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{inport}\")\n\
             action(type=\"omfwd\" target=\"{th}\" port=\"{tp}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let pid = dir.path().join("rsyslog.pid");
    let peer = Peer::start(
        "rsyslogd",
        &["-n".into(), "-f".into(), conf.display().to_string(), "-i".into(), pid.display().to_string()],
    );
    // rsyslog gives no readiness signal: send until its input port accepts.
    eventually("rsyslog's input port", Duration::from_millis(100), || {
        std::net::TcpStream::connect(("127.0.0.1", inport)).ok()
    });
    logger(&[
        "--tcp",
        "--server",
        "127.0.0.1",
        "--port",
        &inport.to_string(),
        "--rfc5424",
        "-t",
        "viarsyslog",
        "forwarded by rsyslog",
    ]);
    let got = wait_lines(&s, r#"{app="viarsyslog"}"#, 1);
    assert_eq!(got.len(), 1, "{got:?}\n{}", peer.log());
    assert_eq!(got[0].2, "forwarded by rsyslog");
    assert_eq!(sql_lines(&s, "SELECT line FROM logs WHERE app = 'viarsyslog'"), ["forwarded by rsyslog"]);
}

#[test]
fn elasticsearch_python_client_helpers_bulk() {
    let s = start(QUIET);
    run_client("es_bulk.py", &s, 20);
    let got = logql(&s, r#"{index="py-app"}"#);
    assert_eq!(got.len(), 20);
    for (i, (labels, ts, line)) in got.iter().enumerate() {
        assert_eq!(line, &format!("es line {i} \"quoted\" ✓"));
        assert_eq!(ts, &format!("17637912{:02}123456000", i));
        assert_eq!(labels["level"], if i % 2 == 1 { "warn" } else { "info" });
        assert_eq!(labels["http_status"], (200 + i).to_string());
    }
    let want: Vec<String> = (0..20).map(|i| format!("es line {i} \"quoted\" ✓")).collect();
    assert_eq!(sql_lines(&s, "SELECT line FROM logs WHERE index = 'py-app' ORDER BY timestamp"), want);
    assert_eq!(sql_lines(&s, "SELECT count(*) FROM logs WHERE level = 'warn'"), ["10"]);
}

#[test]
fn opentelemetry_python_sdk_otlp_http_logs() {
    let s = start(QUIET);
    run_client("otlp_logs.py", &s, 10);
    let got = logql(&s, r#"{service_name="py-otel"}"#);
    let lines: Vec<&str> = got.iter().map(|g| g.2.as_str()).collect();
    let want: Vec<String> = (0..10).map(|i| format!("otlp line {i} ✓")).collect();
    assert_eq!(lines, want);
    assert_eq!(sql_lines(&s, "SELECT line FROM logs WHERE service_name = 'py-otel' ORDER BY timestamp"), want);
    let l = &got[0].0;
    assert_eq!((l["severity_text"].as_str(), l["host_name"].as_str()), (Some("WARN"), Some("box-1")), "{l}");
    assert_eq!(l["order_id"], "0");
}

#[test]
fn python_logging_loki_handler() {
    let s = start(QUIET);
    run_client("loki_handler.py", &s, 10);
    let got = logql(&s, r#"{app="py-loki"}"#);
    let lines: Vec<&str> = got.iter().map(|g| g.2.as_str()).collect();
    let want: Vec<String> = (0..10).map(|i| format!("loki line {i} ✓")).collect();
    assert_eq!(lines, want);
    assert_eq!(got[0].0["severity"], "error");
    assert_eq!(sql_lines(&s, "SELECT line FROM logs WHERE app = 'py-loki' ORDER BY timestamp"), want);
}
