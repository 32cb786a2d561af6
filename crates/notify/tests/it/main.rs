//! Every channel against a local receiver: each HTTP channel's request is checked against
//! the receiving service's documented payload; email goes to a real SMTP server (aiosmtpd,
//! STARTTLS and AUTH required) and the received mail is parsed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use telltale_notify::{Integration, Message, MessageAlert, Notifier, ReceiverConfig, Sender};

/// (method, path, headers, body)
type Req = (String, String, BTreeMap<String, String>, serde_json::Value);

/// An HTTP server answering each request with the next of `answers` (then 200 `ok`).
struct Server {
    url: String,
    rx: Receiver<Req>,
}

impl Server {
    fn start(answers: Vec<(u16, &'static str)>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for conn in l.incoming() {
                let Ok(mut c) = conn else { break };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim().split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let n: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; n];
                let _ = r.read_exact(&mut body);
                let (code, text) = answers.next().unwrap_or((200, "ok"));
                let _ =
                    write!(c, "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}", text.len());
                let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                if tx.send((method, path, headers, body)).is_err() {
                    break;
                }
            }
        });
        Server { url, rx }
    }

    fn next(&self) -> Req {
        self.rx.recv_timeout(Duration::from_secs(20)).expect("a request")
    }
}

fn message(firing: bool) -> Message {
    let alert = |instance: &str| MessageAlert {
        status: if firing { "firing" } else { "resolved" }.into(),
        labels: [("alertname", "HostDiskFull"), ("instance", instance), ("severity", "critical")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        annotations: [
            ("summary".to_string(), format!("Disk on {instance} is 97% full")),
            ("description".to_string(), "Only 3 GiB left".to_string()),
        ]
        .into_iter()
        .collect(),
        starts_at: "2024-03-01T10:00:00Z".into(),
        ends_at: if firing { "0001-01-01T00:00:00Z".into() } else { "2024-03-01T11:00:00Z".into() },
        generator_url: "http://tt:7070/explore?query=disk&tab=graph".into(),
        fingerprint: "0123456789abcdef".into(),
        value: Some(97.0),
    };
    Message {
        version: "4".into(),
        group_key: "{}:{alertname=\"HostDiskFull\"}".into(),
        truncated_alerts: 0,
        status: if firing { "firing" } else { "resolved" }.into(),
        receiver: "ops".into(),
        group_labels: [("alertname".to_string(), "HostDiskFull".to_string())].into(),
        common_labels: [
            ("alertname".to_string(), "HostDiskFull".to_string()),
            ("severity".to_string(), "critical".to_string()),
        ]
        .into(),
        common_annotations: BTreeMap::new(),
        external_url: "http://tt:7070".into(),
        alerts: vec![alert("db1:9100"), alert("db2:9100")],
    }
}

fn integration(yaml: &str) -> Integration {
    let r: ReceiverConfig = serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    r.validate().unwrap();
    let mut all = telltale_notify::integrations(&r, &Default::default());
    assert_eq!(all.len(), 1);
    all.remove(0).1
}

fn send(i: &Integration, m: &Message) -> Result<(), telltale_notify::Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(Sender::default().send(i, m))
}

#[test]
fn slack_incoming_webhook_and_chat_post_message() {
    let s = Server::start(vec![]);
    let i = integration(&format!(
        "name: ops\nslack_configs:\n  - api_url: {}/services/T0/B0/X\n    channel: '#alerts'\n",
        s.url
    ));
    send(&i, &message(true)).unwrap();
    let (method, path, h, b) = s.next();
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/services/T0/B0/X"));
    assert_eq!(h["content-type"], "application/json");
    // https://api.slack.com/reference/messaging/attachments
    assert_eq!(b["channel"], "#alerts");
    assert_eq!(b["username"], "Telltale");
    let a = &b["attachments"][0];
    assert_eq!(a["title"], "[FIRING:2] HostDiskFull (critical)");
    assert_eq!(a["title_link"], "http://tt:7070/explore?query=disk&tab=graph");
    assert_eq!(a["color"], "danger");
    assert_eq!(a["mrkdwn_in"], serde_json::json!(["fallback", "pretext", "text"]));
    let text = a["text"].as_str().unwrap();
    for want in [
        "HostDiskFull on db1:9100: Disk on db1:9100 is 97% full",
        "since 2024-03-01 10:00:00 UTC, value 97",
        "graph: http://tt:7070/explore",
    ] {
        assert!(text.contains(want), "{want:?} missing in {text}");
    }

    // chat.postMessage: a bot token, and {"ok": false} is a failure.
    let s = Server::start(vec![(200, r#"{"ok":false,"error":"channel_not_found"}"#)]);
    let i = integration(&format!(
        "name: ops\nslack_configs:\n  - api_url: {}/api/chat.postMessage\n    channel: C123\n    http_config:\n      authorization:\n        credentials: xoxb-secret\n",
        s.url
    ));
    let e = send(&i, &message(true)).unwrap_err();
    assert!(e.to_string().contains("channel_not_found"), "{e}");
    let (_, path, h, _) = s.next();
    assert_eq!(path, "/api/chat.postMessage");
    assert_eq!(h["authorization"], "Bearer xoxb-secret");
    assert!(!format!("{i:?}").contains("xoxb-secret"), "secrets never print");
}

#[test]
fn teams_message_card() {
    let s = Server::start(vec![]);
    let i = integration(&format!("name: ops\nmsteams_configs:\n  - webhook_url: {}/webhookb2/x\n", s.url));
    send(&i, &message(false)).unwrap();
    let (_, _, _, b) = s.next();
    // https://learn.microsoft.com/outlook/actionable-messages/message-card-reference
    assert_eq!(b["@type"], "MessageCard");
    assert_eq!(b["@context"], "http://schema.org/extensions");
    assert_eq!(b["themeColor"], "2DC72D");
    assert_eq!(b["title"], "[RESOLVED] HostDiskFull (critical)");
    assert!(b["summary"].is_string() && b["text"].as_str().unwrap().contains("[graph](http://tt:7070/explore"), "{b}");
}

#[test]
fn pagerduty_events_v2_trigger_and_resolve() {
    let s = Server::start(vec![(202, r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#)]);
    let i = integration(&format!("name: ops\npagerduty_configs:\n  - routing_key: R0UT1NGKEY0123456789012345678901\n    url: {}/v2/enqueue\n    severity: critical\n", s.url));
    send(&i, &message(true)).unwrap();
    let (_, path, _, b) = s.next();
    assert_eq!(path, "/v2/enqueue");
    // https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
    assert_eq!(b["routing_key"], "R0UT1NGKEY0123456789012345678901");
    assert_eq!(b["event_action"], "trigger");
    let dedup = b["dedup_key"].as_str().unwrap();
    assert!(dedup.len() == 64 && dedup.chars().all(|c| c.is_ascii_hexdigit()), "{dedup}");
    let p = &b["payload"];
    assert_eq!(p["summary"], "[FIRING:2] HostDiskFull (critical)");
    assert_eq!(p["source"], "Telltale");
    assert!(["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap()));
    assert_eq!(p["custom_details"]["num_firing"], "2");
    assert_eq!(b["client"], "Telltale");
    assert_eq!(b["client_url"], "http://tt:7070");
    send(&i, &message(false)).unwrap();
    let (_, _, _, b) = s.next();
    assert_eq!((b["event_action"].as_str(), b["dedup_key"].as_str()), (Some("resolve"), Some(dedup)));
    assert!(b.get("payload").is_none());
}

#[test]
fn pagerduty_events_v1_with_a_service_key() {
    let s = Server::start(vec![]);
    let i = integration(&format!(
        "name: ops\npagerduty_configs:\n  - service_key: v1key\n    url: {}/generic/2010-04-15/create_event.json\n",
        s.url
    ));
    send(&i, &message(true)).unwrap();
    let (_, path, _, b) = s.next();
    // https://developer.pagerduty.com/docs/events-api-v1/trigger-events/
    assert_eq!(path, "/generic/2010-04-15/create_event.json");
    assert_eq!((b["service_key"].as_str(), b["event_type"].as_str()), (Some("v1key"), Some("trigger")));
    assert_eq!(b["incident_key"].as_str().unwrap().len(), 64);
    assert_eq!(b["description"], "[FIRING:2] HostDiskFull (critical)");
    assert_eq!(b["details"]["num_firing"], "2");
}

#[test]
fn opsgenie_create_and_close() {
    let s = Server::start(vec![]);
    let i = integration(&format!(
        "name: ops\nopsgenie_configs:\n  - api_key: genie-key\n    api_url: {}/\n    tags: 'db, disk'\n    priority: P1\n    responders: [{{type: team, name: dba}}]\n",
        s.url
    ));
    send(&i, &message(true)).unwrap();
    let (_, path, h, b) = s.next();
    // https://docs.opsgenie.com/docs/alert-api#create-alert
    assert_eq!(path, "/v2/alerts");
    assert_eq!(h["authorization"], "GenieKey genie-key");
    assert!(b["message"].as_str().unwrap().chars().count() <= 130);
    assert_eq!(b["tags"], serde_json::json!(["db", "disk"]));
    assert_eq!(b["priority"], "P1");
    assert_eq!(b["responders"][0]["type"], "team");
    assert_eq!(b["details"]["severity"], "critical");
    let alias = b["alias"].as_str().unwrap().to_string();
    send(&i, &message(false)).unwrap();
    let (_, path, _, _) = s.next();
    assert_eq!(path, format!("/v2/alerts/{alias}/close?identifierType=alias"));
}

#[test]
fn telegram_and_discord() {
    let s = Server::start(vec![(200, r#"{"ok":true,"result":{}}"#)]);
    let i = integration(&format!(
        "name: ops\ntelegram_configs:\n  - bot_token: '123:ABC'\n    chat_id: -1001\n    api_url: {}\n",
        s.url
    ));
    send(&i, &message(true)).unwrap();
    let (_, path, _, b) = s.next();
    // https://core.telegram.org/bots/api#sendmessage
    assert_eq!(path, "/bot123:ABC/sendMessage");
    assert_eq!(b["chat_id"], -1001);
    assert_eq!(b["parse_mode"], "HTML");
    let text = b["text"].as_str().unwrap();
    assert!(text.starts_with("<b>[FIRING:2] HostDiskFull (critical)</b>"), "{text}");
    assert!(text.contains("<a href=\"http://tt:7070/explore?query=disk&tab=graph\">graph</a>"), "{text}");

    let s = Server::start(vec![(204, "")]);
    let i = integration(&format!("name: ops\ndiscord_configs:\n  - webhook_url: {}/api/webhooks/1/t\n", s.url));
    send(&i, &message(true)).unwrap();
    let (_, _, _, b) = s.next();
    // https://discord.com/developers/docs/resources/webhook#execute-webhook
    let e = &b["embeds"][0];
    assert_eq!(e["title"], "[FIRING:2] HostDiskFull (critical)");
    assert_eq!(e["color"], 0x992D22);
    assert!(e["description"].as_str().unwrap().contains("Disk on db2:9100 is 97% full"));
}

#[test]
fn retries_with_backoff_on_5xx_but_not_on_4xx() {
    let s = Server::start(vec![(503, "busy"), (500, "oops"), (200, "ok")]);
    let i = integration(&format!("name: ops\nwebhook_configs:\n  - url: {}/hook\n", s.url));
    send(&i, &message(true)).unwrap();
    for _ in 0..3 {
        let (_, _, _, b) = s.next();
        assert_eq!(b["version"], "4");
    }
    let s = Server::start(vec![(400, "bad payload")]);
    let i = integration(&format!("name: ops\nwebhook_configs:\n  - url: {}/hook\n", s.url));
    let e = send(&i, &message(true)).unwrap_err();
    assert_eq!(e.to_string(), "webhook: 400: bad payload");
    s.next();
    assert!(s.rx.recv_timeout(Duration::from_millis(700)).is_err(), "a 4xx is not retried");
    // Nothing listens: a transport error that names the integration, not the URL.
    let i = integration("name: ops\nwebhook_configs:\n  - url: http://127.0.0.1:1/token-in-url\n    timeout: 1s\n");
    let e = send(&i, &message(true)).unwrap_err();
    assert!(e.to_string().starts_with("webhook: ") && !e.to_string().contains("token-in-url"), "{e}");
}

#[test]
fn email_through_a_real_smtp_server_with_starttls_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    // A test CA and a server certificate it signed (rustls refuses a CA as the end entity).
    let d = dir.path();
    let (ca, cert, key) = (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"));
    std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        .unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(d)
            .args(args)
            .output()
            .expect("openssl is installed (scripts/test.sh)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "cert.pem",
        "-extfile",
        "ext.cnf",
    ]);
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mail_dir = dir.path().join("mail");
    std::fs::create_dir(&mail_dir).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
    let mut smtp = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(port.to_string())
        .arg(&mail_dir)
        .arg(&cert)
        .arg(&key)
        .args(["alerts@example.com", "hunter2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("Debian's python3 with aiosmtpd (scripts/test.sh)");
    let mut ready = String::new();
    BufReader::new(smtp.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");

    let yaml = format!(
        "name: ops\nemail_configs:\n  - to: 'oncall@example.com, boss@example.com'\n    from: 'Telltale <alerts@example.com>'\n    smarthost: 127.0.0.1:{port}\n    auth_username: alerts@example.com\n    auth_password: hunter2\n    tls_config:\n      ca_file: {}\n      server_name: localhost\n",
        ca.display()
    );
    let i = integration(&yaml);
    let sent = send(&i, &message(true));
    // A wrong password is refused by the server (and not retried forever).
    let bad = integration(&yaml.replace("hunter2", "wrong"));
    let refused = send(&bad, &message(true));
    let _ = smtp.kill();
    let _ = smtp.wait();
    sent.unwrap();
    let refused = refused.unwrap_err();
    assert!(refused.to_string().starts_with("email: 535: "), "{refused}");

    let raw = std::fs::read_to_string(mail_dir.join("1.eml")).expect("the server saved the mail");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in {head}"))
            .to_string()
    };
    assert_eq!(header("Subject"), "[FIRING:2] HostDiskFull (critical)");
    assert_eq!(header("From"), "Telltale <alerts@example.com>");
    assert!(header("To").contains("oncall@example.com") && header("To").contains("boss@example.com"));
    assert!(header("Content-Type").starts_with("multipart/alternative"), "{head}");
    assert!(body.contains("Content-Type: text/plain") && body.contains("Content-Type: text/html"), "{body}");
    let flat = body.replace("=\r\n", "").replace("=3D", "=");
    assert!(flat.contains("HostDiskFull on db1:9100"), "{flat}");
    assert!(
        flat.contains("<a href=\"http://tt:7070/explore?query=disk&amp;tab=graph\">Open the graph</a>")
            || flat.contains("Open the graph"),
        "{flat}"
    );
    assert!(!mail_dir.join("2.eml").try_exists().unwrap(), "the refused login sent nothing");
}

#[test]
fn every_default_template_renders() {
    let t = telltale_notify::default_templates();
    for firing in [true, false] {
        let m = message(firing);
        for yaml in [
            "slack_configs: [{api_url: 'http://x'}]",
            "msteams_configs: [{webhook_url: 'http://x'}]",
            "pagerduty_configs: [{routing_key: k}]",
            "opsgenie_configs: [{api_key: k}]",
            "telegram_configs: [{bot_token: t, chat_id: 1}]",
            "discord_configs: [{webhook_url: 'http://x'}]",
        ] {
            let i = integration(&format!("name: ops\n{yaml}\n"));
            let req = i.request(&m, &t).unwrap().unwrap();
            assert!(!req.body.to_string().contains("error expanding"), "{req:?}");
        }
        let i = integration("name: ops\nemail_configs: [{to: a@b.c, from: x@y.z, smarthost: 'h:25'}]\n");
        let mail = String::from_utf8(i.mail(&m, &t).unwrap().unwrap()).unwrap();
        assert!(mail.contains("Subject: [") && mail.contains("text/html"), "{mail}");
    }
}

#[test]
fn template_files_override_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mine.tmpl");
    std::fs::write(&f, r#"{{ define "slack.default.title" }}{{ .CommonLabels.severity | toUpper }}: {{ len .Alerts }} on {{ .GroupLabels.alertname }}{{ end }}"#).unwrap();
    let t = telltale_notify::load_templates(&[f]).unwrap();
    let i = integration("name: ops\nslack_configs: [{api_url: 'http://x', timeout: 2s}]\n");
    let req = i.request(&message(true), &t).unwrap().unwrap();
    assert_eq!(req.body["attachments"][0]["title"], "CRITICAL: 2 on HostDiskFull");
    let bad = dir.path().join("bad.tmpl");
    std::fs::write(&bad, "{{ define \"x\" }}{{ if }}{{ end }}").unwrap();
    assert!(telltale_notify::load_templates(&[bad]).unwrap_err().contains("bad.tmpl"));
}
