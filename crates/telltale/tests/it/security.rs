//! Authentication end to end with real clients: Debian's Prometheus remote-writing with a token
//! (bearer from a file, and Basic with the token as the password), `promtool check web-config`
//! judging the same files as `telltale check web-config`, `amtool` with an editor and a viewer
//! token, Grafana's data-source requests with Basic, the Python log clients, curl over TLS (a
//! CA of the test's own, certificate rotation, mutual TLS), sessions with CSRF and lockout, the
//! CLI making tokens while the server runs, and the refusal to listen beyond loopback unguarded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use telltale_testkit::pki::Pki;
use telltale_testkit::{eventually, free_port, Peer, TestServer};

use super::BIN;

pub(crate) const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A server with auth on and an `admin` user; its data dir also holds the password file.
pub(crate) fn secured(extra: &str) -> TestServer {
    TestServer::start_with(
        BIN,
        &format!(
            "server:\n  self_scrape_interval: 0s\ncollectors:\n  enabled: false\nauth:\n  enabled: true\n  admin:\n    password_file: admin-password\n{extra}"
        ),
        |data| std::fs::write(data.parent().unwrap().join("admin-password"), format!("{ADMIN_PASSWORD}\n")).unwrap(),
    )
}

/// `telltale token create ...` against the server's data dir (the server runs meanwhile); waits
/// until the server accepts the token.
pub(crate) fn token(s: &TestServer, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["token", "create", "--config"])
        .arg(s.config_path())
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "token create {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let t = String::from_utf8(out.stdout).unwrap().trim().to_string();
    eventually("the server to see the new token", Duration::from_millis(100), || {
        (s.request("GET", "/api/v1/auth/whoami", &[("authorization", &format!("Bearer {t}"))], &[]).status == 200)
            .then_some(())
    });
    t
}

pub(crate) fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", telltale_auth::base64::encode(format!("{user}:{password}").as_bytes()))
}

/// Requests counted by the server's own metrics: `route` answered `code` this many times.
fn answered(s: &TestServer, admin: &str, route: &str, code: u16) -> u64 {
    let m = s.request("GET", "/metrics", &[("authorization", admin)], &[]).text();
    m.lines()
        .filter(|l| {
            l.starts_with("telltale_http_requests_total{")
                && l.contains(&format!("handler=\"{route}\""))
                && l.contains(&format!("code=\"{code}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn query(s: &TestServer, auth: &str, q: &str) -> serde_json::Value {
    let body = format!("query={}", q.bytes().map(|b| format!("%{b:02X}")).collect::<String>());
    let r = s.request(
        "POST",
        "/api/v1/query",
        &[("authorization", auth), ("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn prometheus_remote_writes_with_a_token_and_is_refused_without() {
    let s = secured("");
    let ingest = token(&s, &["--service-account", "prometheus", "--scopes", "ingest"]);
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &ingest).unwrap();
    let port = free_port();
    let url = format!("{}/api/v1/write", s.url());
    let relabel =
        |via: &str| format!("    write_relabel_configs:\n      - target_label: via\n        replacement: {via}\n");
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
         remote_write:\n\
         \x20 - url: {url}\n    authorization:\n      credentials_file: {tok}\n{r1}\
         \x20 - url: {url}\n    basic_auth:\n      username: prometheus\n      password_file: {tok}\n{r2}\
         \x20 - url: {url}\n{r3}",
        tok = dir.path().join("token").display(),
        r1 = relabel("bearer"),
        r2 = relabel("basic"),
        r3 = relabel("none"),
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let _prom = Peer::start(
        "prometheus",
        &[
            format!("--config.file={}", dir.path().join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
    );
    let vias = eventually("samples by bearer and by basic", Duration::from_millis(200), || {
        let v = query(&s, &admin, "count by (via) (up)");
        let mut vias: Vec<String> = v["data"]["result"]
            .as_array()?
            .iter()
            .map(|r| r["metric"]["via"].as_str().unwrap_or("").to_string())
            .collect();
        vias.sort();
        (vias.len() >= 2).then_some(vias)
    });
    assert_eq!(vias, ["basic", "bearer"], "the queue without credentials got nothing in");
    eventually("the queue without credentials refused", Duration::from_millis(200), || {
        (answered(&s, &admin, "/api/v1/write", 401) > 0).then_some(())
    });
}

#[test]
fn promtool_and_telltale_judge_web_configs_alike() {
    let pki = Pki::new();
    pki.server("server", &["IP:127.0.0.1"]);
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../auth/testdata/web");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    let dir = pki.path("");
    let mut compared = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let path = pki.path(f.file_name().unwrap().to_str().unwrap());
        std::fs::write(&path, text.replace("{pki}", dir.to_str().unwrap().trim_end_matches('/'))).unwrap();
        let ours = Command::new(BIN).args(["check", "web-config"]).arg(&path).output().unwrap();
        let theirs = Command::new("promtool")
            .args(["check", "web-config"])
            .arg(&path)
            .output()
            .expect("promtool (scripts/test.sh installs prometheus)");
        let good = f.to_string_lossy().ends_with(".good.yml");
        assert_eq!(ours.status.success(), good, "{}: telltale {}", f.display(), String::from_utf8_lossy(&ours.stderr));
        let promtool_differs = text.lines().any(|l| l.starts_with("# promtool: "));
        assert_eq!(
            theirs.status.success() != good,
            promtool_differs,
            "{}: promtool {} ({}); a difference needs a '# promtool:' line saying why",
            f.display(),
            if theirs.status.success() { "accepts it" } else { "refuses it" },
            String::from_utf8_lossy(&theirs.stderr).trim()
        );
        compared += 1;
    }
    assert!(compared >= 28, "{compared} files");
}

fn amtool(s: &TestServer, token: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let http = dir.path().join("http.yml");
    std::fs::write(&http, format!("authorization:\n  credentials: {token}\n")).unwrap();
    Command::new("amtool")
        .arg(format!("--alertmanager.url={}", s.url()))
        .arg(format!("--http.config.file={}", http.display()))
        .args(args)
        .output()
        .expect("amtool (scripts/test.sh installs prometheus-alertmanager)")
}

#[test]
fn amtool_silences_with_an_editor_token_and_a_viewer_is_refused() {
    let s = secured("");
    let editor = token(&s, &["--service-account", "oncall", "--role", "editor"]);
    let viewer = token(&s, &["--service-account", "wallboard", "--role", "viewer"]);
    let args = ["silence", "add", "alertname=Test", "--comment=maintenance", "--author=ops", "--duration=1h"];
    let out = amtool(&s, &editor, &args);
    assert!(out.status.success(), "editor: {}", String::from_utf8_lossy(&out.stderr));
    let out = amtool(&s, &viewer, &args);
    assert!(!out.status.success(), "a viewer may not silence");
    let out = amtool(&s, &viewer, &["silence", "query"]);
    assert!(out.status.success(), "a viewer reads silences: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("alertname=\"Test\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// What Grafana's Prometheus and Loki data sources send, with "Basic auth" set to any user and
/// the token as the password: the health checks, a query, the label browsers.
#[test]
fn grafana_data_sources_with_basic_token_as_password() {
    let s = secured("");
    let t = token(&s, &["--service-account", "grafana", "--role", "viewer"]);
    let auth = basic("grafana", &t);
    for (method, path, body) in [
        ("GET", "/api/v1/status/buildinfo", ""),
        ("POST", "/api/v1/query", "query=1%2B1&time=1700000000"),
        ("GET", "/api/v1/labels", ""),
        ("GET", "/api/v1/metadata", ""),
        ("GET", "/loki/api/v1/labels", ""),
        ("GET", "/loki/api/v1/query?query=vector(1)%2Bvector(1)", ""),
    ] {
        let r = s.request(
            method,
            path,
            &[("authorization", &auth), ("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        let r = s.request(method, path, &[("content-type", "application/x-www-form-urlencoded")], body.as_bytes());
        assert_eq!(r.status, 401, "{method} {path} without credentials");
        assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="telltale""#));
        let r = s.request(method, path, &[("authorization", &basic("grafana", "not-a-token"))], body.as_bytes());
        assert_eq!(r.status, 401, "{method} {path} with a password that is no token");
    }
    let r = s.request("POST", "/api/v1/write", &[("authorization", &auth)], b"");
    assert_eq!(r.status, 403, "a viewer does not write: {}", r.text());
    assert!(r.text().contains("lacks the ingest scope"), "{}", r.text());
}

fn python() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-test/bin/python"))
}

#[test]
fn python_log_clients_send_with_a_token_and_get_401_without() {
    let s = secured("");
    let t = token(&s, &["--service-account", "shipper", "--scopes", "ingest"]);
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let clients = [
        ("loki_handler.py", "/loki/api/v1/push", r#"{app="py-loki"}"#),
        ("es_bulk.py", "/_bulk", r#"{index="py-app"}"#),
        ("otlp_logs.py", "/v1/logs", r#"{service_name="py-otel"}"#),
    ];
    for (script, route, selector) in clients {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/");
        // Without a token: refused, nothing stored.
        let before = answered(&s, &admin, route, 401);
        let _ = Command::new(python())
            .arg(format!("{path}{script}"))
            .arg(s.url())
            .arg("3")
            .env_remove("TELLTALE_TOKEN")
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert!(answered(&s, &admin, route, 401) > before, "{script} without a token was not refused with 401");
        // With it: every line in.
        let out = Command::new(python())
            .arg(format!("{path}{script}"))
            .arg(s.url())
            .arg("3")
            .env("TELLTALE_TOKEN", &t)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        let q = format!(
            "/loki/api/v1/query_range?query={}&start=0&end=4000000000&limit=100",
            super::logs::enc(&format!("sum(count_over_time({selector}[100y]))"))
        );
        let n = eventually(&format!("{script}'s lines"), Duration::from_millis(100), || {
            let v: serde_json::Value =
                serde_json::from_slice(&s.request("GET", &q, &[("authorization", &admin)], &[]).body).ok()?;
            let n: u64 = v["data"]["result"][0]["values"].as_array()?.last()?[1].as_str()?.parse().ok()?;
            (n >= 3).then_some(n)
        });
        assert_eq!(n, 3, "{script}: only the authenticated run's lines");
    }
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).output().expect("curl")
}

/// A TLS server from a web config naming the CA's files.
fn tls_server(pki: &Pki, web: &str) -> TestServer {
    let web_path = pki.path("web.yml");
    std::fs::write(&web_path, web).unwrap();
    TestServer::start(
        BIN,
        &format!(
            "server:\n  self_scrape_interval: 0s\n  web_config_file: {}\ncollectors:\n  enabled: false\n",
            web_path.display()
        ),
    )
}

fn https(s: &TestServer, pki: &Pki, path: &str, extra: &[&str]) -> std::process::Output {
    let url = format!("{}{path}", s.url());
    let ca = pki.path("ca.crt");
    let mut args = vec!["--cacert", ca.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

#[test]
fn tls_serves_curl_refuses_plain_http_and_rotates_certificates_without_a_restart() {
    let pki = Pki::new();
    pki.server("server", &["IP:127.0.0.1"]);
    pki.server("next", &["IP:127.0.0.1"]);
    let d = pki.path("");
    let s = tls_server(
        &pki,
        &format!("tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n", d.display()),
    );
    assert!(s.url().starts_with("https://"), "{}", s.url());
    let out = https(&s, &pki, "/-/healthy", &["-v"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("CN=telltale test server") || log.contains("CN = telltale test server"), "{log}");
    // Plain HTTP to the TLS port: Go's answer.
    let plain = curl(&["-i", &s.url().replace("https://", "http://")]);
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        text.starts_with("HTTP/1.0 400") && text.contains("Client sent an HTTP request to an HTTPS server."),
        "{text}"
    );
    // Without the CA, curl refuses the certificate.
    assert!(!curl(&[&format!("{}/-/healthy", s.url())]).status.success());
    // Rotation: the files are replaced; the next connection gets the new certificate.
    for ext in ["crt", "key"] {
        std::fs::copy(pki.path(&format!("next.{ext}")), pki.path(&format!("server.{ext}.new"))).unwrap();
        std::fs::rename(pki.path(&format!("server.{ext}.new")), pki.path(&format!("server.{ext}"))).unwrap();
    }
    let out = https(&s, &pki, "/-/healthy", &["-v"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && (log.contains("CN=telltale test next") || log.contains("CN = telltale test next")),
        "{log}"
    );
}

#[test]
fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let pki = Pki::new();
    pki.server("server", &["IP:127.0.0.1"]);
    let d = pki.path("");
    let s = tls_server(
        &pki,
        &format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {0}/ca.crt\n",
            d.display()
        ),
    );
    assert!(!https(&s, &pki, "/-/healthy", &[]).status.success(), "no client certificate");
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let out = https(&s, &pki, "/-/healthy", &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `client_allowed_sans`: of two clients the CA signed, only the one whose certificate names an
/// allowed value gets in (by DNS name, and by SPIFFE URI).
#[test]
fn mutual_tls_with_client_allowed_sans_admits_only_the_named_clients() {
    let pki = Pki::new();
    pki.server("server", &["IP:127.0.0.1"]);
    pki.client("alice", &["DNS:alice.test", "email:alice@example.test"]);
    pki.client("prometheus", &["URI:spiffe://cluster.test/ns/ops/sa/prometheus"]);
    pki.client("mallory", &["DNS:mallory.test", "IP:10.0.0.9"]);
    let d = pki.path("");
    let s = tls_server(
        &pki,
        &format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {0}/ca.crt\n  client_allowed_sans: [alice.test, \"spiffe://cluster.test/ns/ops/sa/prometheus\"]\n",
            d.display()
        ),
    );
    let with = |name: &str| {
        let (cert, key) = (pki.path(&format!("{name}.crt")), pki.path(&format!("{name}.key")));
        https(&s, &pki, "/-/healthy", &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()])
    };
    for admitted in ["alice", "prometheus"] {
        let out = with(admitted);
        assert!(out.status.success(), "{admitted}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!with("mallory").status.success(), "a certificate without an allowed name");
    assert!(!with("client").status.success(), "a certificate without names");
    assert!(!https(&s, &pki, "/-/healthy", &[]).status.success(), "no certificate");
    assert!(s.log().contains("none of its certificate's names is in client_allowed_sans"), "{}", s.log());
}

#[test]
fn web_config_users_use_bcrypt_and_headers_apply() {
    let dir = tempfile::tempdir().unwrap();
    let hash = Command::new("python3")
        .args(["-c", "import crypt; print(crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))"])
        .output();
    // Debian's python3 crypt module gives $2b$ hashes; htpasswd-style $2y$ are tested in the auth crate.
    let hash = String::from_utf8(hash.unwrap().stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$2b$"), "{hash}");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  alice: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"),
    )
    .unwrap();
    let s = TestServer::start(
        BIN,
        &format!(
            "server:\n  self_scrape_interval: 0s\n  web_config_file: {}\ncollectors:\n  enabled: false\n",
            web.display()
        ),
    );
    let r = s.request("GET", "/api/v1/labels", &[("authorization", &basic("alice", "s3cret"))], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-frame-options"), Some("deny"));
    let r = s.get("/api/v1/labels");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"Basic realm="telltale""#), "browsers prompt as for Prometheus");
    assert_eq!(r.header("x-frame-options"), Some("deny"), "headers on refusals too");
    assert_eq!(s.request("GET", "/api/v1/labels", &[("authorization", &basic("alice", "wrong"))], &[]).status, 401);
    assert_eq!(s.request("GET", "/api/v1/labels", &[("authorization", &basic("mallory", "s3cret"))], &[]).status, 401);
    assert_eq!(s.get("/-/healthy").status, 200, "public");
}

fn login(s: &TestServer, user: &str, password: &str) -> telltale_testkit::Response {
    let body = serde_json::json!({"user": user, "password": password}).to_string();
    s.post("/api/v1/auth/login", "application/json", body.as_bytes())
}

/// `name=value` of each Set-Cookie.
fn cookies(r: &telltale_testkit::Response) -> Vec<String> {
    r.headers.iter().filter(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).collect()
}

#[test]
fn sessions_need_csrf_tokens_and_repeated_failures_lock_out() {
    let s = secured("  lockout:\n    attempts: 3\n");
    let r = login(&s, "admin", ADMIN_PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text());
    let set = cookies(&r);
    let session = set.iter().find(|c| c.starts_with("telltale_session=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: no Secure flag");
    let csrf_cookie = set.iter().find(|c| c.starts_with("telltale_csrf=")).expect("csrf cookie");
    assert!(!csrf_cookie.contains("HttpOnly"), "the UI reads it");
    let sid = session.split(';').next().unwrap();
    let csrf = csrf_cookie.split(';').next().unwrap().trim_start_matches("telltale_csrf=");
    let cookie = format!("{sid}; telltale_csrf={csrf}");
    let who = s.request("GET", "/api/v1/auth/whoami", &[("cookie", &cookie)], &[]);
    assert_eq!(who.status, 200);
    assert!(who.text().contains(r#""name":"admin""#), "{}", who.text());
    // A state-changing request from the session needs the CSRF token.
    let dash = br#"{"title":"csrf test","panels":[]}"#;
    let r = s.request("POST", "/api/v1/dashboards", &[("cookie", &cookie), ("content-type", "application/json")], dash);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("X-CSRF-Token"), "{}", r.text());
    let r = s.request(
        "POST",
        "/api/v1/dashboards",
        &[("cookie", &cookie), ("content-type", "application/json"), ("x-csrf-token", csrf)],
        dash,
    );
    assert!(r.status < 300, "{} {}", r.status, r.text());
    // Logout ends the session.
    let r = s.request("POST", "/api/v1/auth/logout", &[("cookie", &cookie), ("x-csrf-token", csrf)], &[]);
    assert_eq!(r.status, 204);
    assert_eq!(s.request("GET", "/api/v1/auth/whoami", &[("cookie", &cookie)], &[]).status, 401);
    // Three wrong passwords lock the user out, even with the right one afterwards.
    assert_eq!(login(&s, "admin", "wrong 1").status, 401);
    assert_eq!(login(&s, "admin", "wrong 2").status, 401);
    let r = login(&s, "admin", "wrong 3");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().unwrap() > 0));
    assert_eq!(login(&s, "admin", ADMIN_PASSWORD).status, 429);
    // An unknown user is told the same as a wrong password.
    assert_eq!(login(&s, "nobody", "whatever").text(), login(&s, "alsonobody", "whatever").text());
}

pub(crate) fn serve_directly(args: &[&str], dir: &Path) -> std::process::Child {
    Command::new(BIN)
        .arg("serve")
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn without_auth_only_loopback_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_directly(&["--listen", "0.0.0.0:0"], dir.path()).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without authentication") && err.contains("--insecure-no-auth"),
        "{err}"
    );
    let mut child = serve_directly(&["--listen", "0.0.0.0:0", "--insecure-no-auth"], dir.path());
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.ends_with(" ready") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("authentication is off and the listener is not loopback"), "{seen}");
    // On loopback it says why it stays there.
    let s = TestServer::start(BIN, "server:\n  self_scrape_interval: 0s\ncollectors:\n  enabled: false\n");
    assert!(s.log().contains("authentication is off, so only loopback is served"), "{}", s.log());
}

/// The web UI with auth on, in headless Chromium: a page sends the browser to the login page,
/// a wrong password says so, the right one returns to the page asked for; the admin page makes a
/// token (a POST carrying the session's CSRF token) and shows it once; logout ends the session.
#[test]
fn the_ui_logs_in_administers_tokens_and_logs_out() {
    use telltale_testkit::browser::Browser;
    let s = secured("");
    let b = Browser::start();
    b.goto(&format!("{}/explore", s.url()));
    b.wait_for("location.pathname === '/login' && location.search === '?next=%2Fexplore'", "the login page");
    let user = b.find("input[name=user]");
    let password = b.find("input[name=password]");
    b.type_into(&user, "admin");
    b.type_into(&password, "not the password\n");
    b.wait_for("!document.querySelector('.panel-msg.error').hidden && document.querySelector('.panel-msg.error').textContent.includes('Wrong user name or password')", "the refusal");
    b.clear(&password);
    b.type_into(&password, &format!("{ADMIN_PASSWORD}\n"));
    b.wait_for("location.pathname === '/explore'", "back on the page asked for");
    b.wait_for("document.querySelector('#user')?.textContent.includes('admin') && !document.querySelector('.tabs a[data-page=admin]').hidden", "the user and the Admin tab");
    b.goto(&format!("{}/admin", s.url()));
    b.wait_for("document.querySelectorAll('.card h2').length === 4", "the admin page");
    let sa = b.find("input[placeholder='name, e.g. grafana']");
    b.type_into(&sa, "grafana\n");
    b.wait_for(
        "[...document.querySelectorAll('.tbl td')].some((td) => td.textContent === 'grafana')",
        "the new service account",
    );
    let what = b.find("input[placeholder='what it is for']");
    b.type_into(&what, "dashboards\n");
    let token = b.wait_for("document.querySelector('code.token')?.textContent", "the new token, shown once");
    let token = token.as_str().unwrap().to_string();
    assert!(token.starts_with("tt_"), "{token}");
    let r = s.request("GET", "/api/v1/labels", &[("authorization", &bearer(&token))], &[]);
    assert_eq!(r.status, 200, "the token made in the UI works: {}", r.text());
    // The Audit page (an admin's tab) has the login and the token, and filters by action.
    b.click_text(".tabs a", "Audit");
    let rows = "[...document.querySelectorAll('.tbl tbody tr')].map((tr) => tr.textContent)";
    b.wait_for(
        &format!("{rows}.some((t) => t.includes('token_created')) && {rows}.some((t) => t.includes('login') && t.includes('user:admin'))"),
        "the login and the new token in the audit log",
    );
    b.goto(&format!("{}/audit?action=token_created", s.url()));
    b.wait_for(
        &format!("{rows}.length === 1 && {rows}[0].includes('service_account:grafana')"),
        "only the token's event",
    );
    let errors: Vec<_> = b.console_errors().into_iter().filter(|e| !e.message.contains("401")).collect();
    assert!(errors.is_empty(), "{errors:?}");
    b.click_text("#user button", "Log out");
    b.wait_for("location.pathname === '/login'", "the login page after logout");
    b.goto(&format!("{}/dashboards", s.url()));
    b.wait_for("location.pathname === '/login'", "logged out for good");
}

/// Writes `name{tenant="<as written>"} 1` through the Prometheus text import, in a tenant.
fn write_metric(s: &TestServer, auth: &str, tenant: Option<&str>, name: &str) {
    let mut headers = vec![("authorization", auth)];
    if let Some(t) = tenant {
        headers.push(("x-scope-orgid", t));
    }
    let body = format!("{name}{{written_in=\"{}\"}} 1\n", tenant.unwrap_or("default"));
    let r = s.request("POST", "/api/v1/import/prometheus", &headers, body.as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
}

fn push_line(s: &TestServer, auth: &str, tenant: Option<&str>, line: &str) {
    let mut headers = vec![("authorization", auth), ("content-type", "application/json")];
    if let Some(t) = tenant {
        headers.push(("x-scope-orgid", t));
    }
    let body = serde_json::json!({"streams": [{"stream": {"app": "web"}, "values": [[format!("{}", 1_700_000_000_000_000_000u64), line]]}]});
    let r = s.request("POST", "/loki/api/v1/push", &headers, body.to_string().as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
}

/// What a request in `tenant` sees: metric names, the lines of `{app="web"}`, SQL's lines.
fn seen(s: &TestServer, auth: &str, tenant: Option<&str>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut h = vec![("authorization", auth)];
    if let Some(t) = tenant {
        h.push(("x-scope-orgid", t));
    }
    let get = |path: &str| -> serde_json::Value {
        let r = s.request("GET", path, &h, &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    };
    let names: Vec<String> = get("/api/v1/label/__name__/values")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let q = format!(
        "/loki/api/v1/query_range?query={}&start=0&end=4000000000&limit=100",
        super::logs::enc(r#"{app="web"}"#)
    );
    let lines: Vec<String> = get(&q)["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["values"].as_array().unwrap().iter().map(|v| v[1].as_str().unwrap().to_string()))
        .collect();
    let mut sh = h.clone();
    sh.push(("content-type", "application/json"));
    let r = s.request("POST", "/api/v1/sql", &sh, br#"{"query":"SELECT line FROM logs"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let sql: Vec<String> =
        v["rows"].as_array().unwrap().iter().map(|row| row[0].as_str().unwrap_or("").to_string()).collect();
    (names, lines, sql)
}

#[test]
fn tenants_keep_series_lines_and_sql_apart_and_bound_tokens_stay_in_theirs() {
    let s = secured("");
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let acme = bearer(&token(&s, &["--service-account", "acme-agent", "--scopes", "ingest,read", "--tenant", "acme"]));
    write_metric(&s, &admin, None, "default_only_total");
    push_line(&s, &admin, None, "a line of the default tenant");
    write_metric(&s, &acme, None, "acme_only_total");
    push_line(&s, &acme, None, "a line of acme");
    write_metric(&s, &admin, Some("beta"), "beta_only_total");
    push_line(&s, &admin, Some("beta"), "a line of beta");

    let (names, lines, sql) = seen(&s, &admin, None);
    assert_eq!(names, ["default_only_total"], "the default tenant");
    assert_eq!(lines, ["a line of the default tenant"]);
    assert_eq!(sql, ["a line of the default tenant"]);
    let acme_view = seen(&s, &acme, None);
    assert_eq!(
        acme_view,
        (vec!["acme_only_total".to_string()], vec!["a line of acme".to_string()], vec!["a line of acme".to_string()]),
        "a token bound to acme acts in acme"
    );
    assert_eq!(seen(&s, &admin, Some("acme")), acme_view, "an unbound admin names the tenant");
    let (names, lines, _) = seen(&s, &admin, Some("beta"));
    assert_eq!((names, lines), (vec!["beta_only_total".to_string()], vec!["a line of beta".to_string()]));
    // A query in acme cannot reach beta's series, whatever the selector.
    let r = s.request("GET", "/api/v1/query?query=%7B__name__%3D~%22.%2B%22%7D", &[("authorization", &acme)], &[]);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let found: Vec<&str> =
        v["data"]["result"].as_array().unwrap().iter().map(|x| x["metric"]["__name__"].as_str().unwrap()).collect();
    assert_eq!(found, ["acme_only_total"]);
    // Outside its binding, the token is refused; so are bad and reserved tenant names.
    let r = s.request("GET", "/api/v1/labels", &[("authorization", &acme), ("x-scope-orgid", "beta")], &[]);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s.request("GET", "/api/v1/labels", &[("authorization", &admin), ("x-scope-orgid", "../etc")], &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.request("GET", "/api/v1/labels", &[("authorization", &admin), ("x-scope-orgid", "_internal")], &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    // Alerting runs in the default tenant: another tenant sees none of it and cannot silence.
    let r = s.request("GET", "/api/v2/silences", &[("authorization", &acme)], &[]);
    assert_eq!(r.text(), "[]");
    // The data survive a restart in their tenants.
    let mut s = s;
    s.restart();
    assert_eq!(seen(&s, &admin, Some("acme")).0, ["acme_only_total"]);
    assert!(s.data_dir().join("tenants/acme/metrics").is_dir());
}

/// The audit log's events, read as an admin, once there are at least `at_least`.
pub(crate) fn audit_events(s: &TestServer, admin: &str, at_least: usize) -> Vec<serde_json::Value> {
    eventually("the audit events", Duration::from_millis(100), || {
        let r = s.request("GET", &AUDIT_QUERY, &[("authorization", admin), ("x-scope-orgid", "_audit")], &[]);
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let lines: Vec<serde_json::Value> = v["data"]["result"]
            .as_array()?
            .iter()
            .flat_map(|st| {
                st["values"].as_array().unwrap().iter().map(|x| serde_json::from_str(x[1].as_str().unwrap()).unwrap())
            })
            .collect();
        (lines.len() >= at_least).then_some(lines)
    })
}

static AUDIT_QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "/loki/api/v1/query_range?query={}&start=0&end=4000000000&limit=1000",
        super::logs::enc(r#"{kind="audit"}"#)
    )
});

#[test]
fn the_audit_log_records_logins_changes_and_refusals_for_admins_only() {
    let s = secured("");
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let viewer = bearer(&token(&s, &["--service-account", "wallboard", "--role", "viewer"]));
    assert_eq!(login(&s, "admin", ADMIN_PASSWORD).status, 200);
    assert_eq!(login(&s, "admin", "a wrong password").status, 401);
    let r = s.request(
        "POST",
        "/api/v1/auth/users",
        &[("authorization", &admin), ("content-type", "application/json")],
        br#"{"name":"carol","password":"carol's long password","role":"editor"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.request("POST", "/-/reload", &[("authorization", &viewer)], &[]).status, 403);
    let events = audit_events(&s, &admin, 4);
    let has = |action: &str, who: &str| {
        events.iter().any(|e| e["action"] == action && e["who"].as_str().unwrap_or("").contains(who))
    };
    assert!(has("login", "user:admin"), "{events:?}");
    assert!(has("login_failed", "user:admin"), "{events:?}");
    assert!(has("user_added", "ops"), "{events:?}");
    assert!(has("forbidden", "wallboard"), "{events:?}");
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains(ADMIN_PASSWORD) && !all.contains("carol's long password") && !all.contains("a wrong password"),
        "no secret in the audit log"
    );
    // SQL over it too; a viewer may not read it, and nobody may write into it.
    let r = s.request(
        "POST",
        "/api/v1/sql",
        &[("authorization", &admin), ("x-scope-orgid", "_audit"), ("content-type", "application/json")],
        br#"{"query":"SELECT count(*) FROM logs"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.request("GET", &AUDIT_QUERY, &[("authorization", &viewer), ("x-scope-orgid", "_audit")], &[]).status,
        403
    );
    let r = s.request(
        "POST",
        "/loki/api/v1/push",
        &[("authorization", &admin), ("x-scope-orgid", "_audit"), ("content-type", "application/json")],
        br#"{"streams":[]}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(s
        .request("GET", "/metrics", &[("authorization", &admin)], &[])
        .text()
        .contains("telltale_audit_write_failures_total 0"));
}

/// `telltale agent` ships host metrics and tailed lines with a token from a file, as Prometheus's
/// `authorization: {credentials_file: ...}` reads it.
#[test]
fn the_agent_ships_metrics_and_logs_with_a_token() {
    let s = secured("");
    let ingest = token(&s, &["--service-account", "agent", "--scopes", "ingest"]);
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &ingest).unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "shipped with a token\n").unwrap();
    let cfg = dir.path().join("agent.yml");
    std::fs::write(
        &cfg,
        format!(
            "collectors:\n  interval: 1s\n  instance: agent-host\nagent:\n  authorization:\n    credentials_file: {}\nlogs:\n  files_poll_interval: 100ms\n  files:\n    - path: {}\n      labels: {{job: agent-log}}\n",
            dir.path().join("token").display(),
            log.display()
        ),
    )
    .unwrap();
    let _agent = super::start_agent(s.url(), &cfg, &dir.path().join("data"));
    eventually("the agent's host series", Duration::from_millis(200), || {
        let v = query(&s, &admin, "node_load1{instance=\"agent-host\"}");
        (!v["data"]["result"].as_array()?.is_empty()).then_some(())
    });
    let q = format!(
        "/loki/api/v1/query_range?query={}&start=0&end=4000000000&limit=10",
        super::logs::enc(r#"{job="agent-log"}"#)
    );
    eventually("the agent's tailed line", Duration::from_millis(200), || {
        let r = s.request("GET", &q, &[("authorization", &admin)], &[]);
        r.text().contains("shipped with a token").then_some(())
    });
}

/// Single sign-on against a real OpenID Connect provider on loopback (PyPI's
/// oidc-provider-mock: discovery, JWKS, RS256 ID tokens, a login form with a button per user),
/// driven in headless Chromium: a user whose group maps to admin gets in as admin; one whose
/// groups map to nothing is sent back to the login page saying so.
#[test]
fn single_sign_on_with_openid_connect_maps_groups_to_roles() {
    use telltale_testkit::browser::Browser;
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mock = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-test/bin/oidc-provider-mock"));
    let _idp = Peer::start(
        mock.to_str().unwrap(),
        &[
            "--port".into(),
            port.to_string(),
            "--user-claims".into(),
            r#"{"sub": "alice", "preferred_username": "alice", "groups": ["sre", "everyone"]}"#.into(),
            "--user-claims".into(),
            r#"{"sub": "bob", "preferred_username": "bob", "groups": ["sales"]}"#.into(),
        ],
    );
    eventually("the provider's discovery document", Duration::from_millis(100), || {
        curl(&["-f", &format!("{issuer}/.well-known/openid-configuration")]).status.success().then_some(())
    });
    let s = secured(&format!(
        "  oidc:\n    issuer_url: {issuer}\n    client_id: telltale\n    client_secret: not-checked-by-the-mock\n    role_mapping:\n      sre: admin\n      everyone: viewer\n    label: Log in with the test provider\n"
    ));
    let b = Browser::start();
    b.goto(&format!("{}/alerts", s.url()));
    b.wait_for("location.pathname === '/login'", "the login page");
    b.click_text("a.sso", "Log in with the test provider");
    b.wait_for(&format!("location.origin === '{issuer}'"), "the provider's form");
    b.click_text("button", "alice");
    b.wait_for("location.pathname === '/alerts'", "back on the page asked for, logged in");
    b.wait_for("document.querySelector('#user')?.textContent.includes('alice') && !document.querySelector('.tabs a[data-page=admin]').hidden", "alice, an admin");
    b.click_text("#user button", "Log out");
    b.wait_for("location.pathname === '/login'", "logged out");
    b.click_text("a.sso", "Log in with the test provider");
    b.wait_for(&format!("location.origin === '{issuer}'"), "the provider's form again");
    b.click_text("button", "bob");
    let msg = b.wait_for(
        "location.pathname === '/login' && !document.querySelector('.panel-msg.error').hidden && document.querySelector('.panel-msg.error').textContent",
        "bob refused",
    );
    assert!(msg.as_str().unwrap().contains("map to no role"), "{msg}");
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let users: serde_json::Value =
        serde_json::from_slice(&s.request("GET", "/api/v1/auth/users", &[("authorization", &admin)], &[]).body)
            .unwrap();
    let alice = users["users"].as_array().unwrap().iter().find(|u| u["name"] == "alice").expect("alice was added");
    assert_eq!((alice["role"].as_str(), alice["origin"].as_str()), (Some("admin"), Some("oidc")), "{users}");
    assert!(!users["users"].as_array().unwrap().iter().any(|u| u["name"] == "bob"), "{users}");
}
