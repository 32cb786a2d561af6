//! Secrets at rest: a receiver entered through the API is sealed in the data directory, shown
//! with its secrets hidden, delivers with them, keeps them when edited blind, survives a key
//! rotation (run by the CLI while the server runs) and restarts; without its key, or with
//! another key, the server refuses to start and names what it cannot read.

use std::process::Command;

use telltale_testkit::TestServer;

use super::notify::Hook;
use super::security::{audit_events, bearer, secured, serve_directly, token, ADMIN_PASSWORD};
use super::BIN;

const HOOK_TOKEN: &str = "s3cr3t-hook-token";
const BEARER_SECRET: &str = "bearer-s3cr3t-credential";

/// The config: a route to `receiver` (a stored one, or the file's `devnull`).
fn config(receiver: &str) -> String {
    format!(
        "secrets:\n  key_file: keys/telltale.key\nalerting:\n  route:\n    receiver: {receiver}\n    group_by: [alertname]\n    group_wait: 1s\n    group_interval: 1s\n    repeat_interval: 1h\n  receivers:\n    - name: devnull\n"
    )
}

fn put(s: &TestServer, auth: &str, name: &str, body: &str) -> (u16, String) {
    let r = s.request(
        "PUT",
        &format!("/api/v1/receivers/{name}"),
        &[("authorization", auth), ("content-type", "application/yaml")],
        body.as_bytes(),
    );
    (r.status, r.text())
}

fn fire(s: &TestServer, auth: &str, alertname: &str) {
    let body = format!(r#"[{{"labels":{{"alertname":"{alertname}","severity":"page"}}}}]"#);
    let r = s.request(
        "POST",
        "/api/v2/alerts",
        &[("authorization", auth), ("content-type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The webhook got `alertname` at the stored URL with the stored credential.
fn delivered(hook: &Hook, alertname: &str) {
    let (path, headers, v) = hook.next();
    assert_eq!(path, format!("/alerts?token={HOOK_TOKEN}"));
    assert!(
        headers.iter().any(|(k, v)| k == "authorization" && v == &format!("Bearer {BEARER_SECRET}")),
        "{headers:?}"
    );
    assert_eq!(v["groupLabels"]["alertname"], alertname, "{v}");
    assert_eq!(v["receiver"], "pager");
}

/// `telltale serve` on `s`'s config and data dir, expected to fail: its stderr.
fn refused_start(s: &TestServer) -> String {
    let config = s.config_path();
    let args = ["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let out = serve_directly(&args, &s.data_dir()).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "the server started without its key: {err}");
    err
}

#[test]
fn receivers_entered_through_the_api_are_sealed_and_deliver_across_key_rotation_and_restarts() {
    let hook = Hook::start();
    let mut s = secured(&config("devnull"));
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let editor = bearer(&token(&s, &["--service-account", "dev", "--role", "editor"]));
    let receiver = format!(
        "webhook_configs:\n  - url: {}/alerts?token={HOOK_TOKEN}\n    http_config:\n      authorization:\n        credentials: {BEARER_SECRET}\n",
        hook.url
    );

    // Only admins change receivers; what an API caller must not use is refused with a reason.
    assert_eq!(put(&s, &editor, "pager", &receiver).0, 403);
    let (code, why) = put(&s, &admin, "pager", "webhook_configs:\n  - url_file: /etc/shadow\n");
    assert!(code == 400 && why.contains("url_file") && why.contains("config file"), "{code} {why}");
    let (code, why) = put(&s, &admin, "pager", "webhook_configs:\n  - url: http://x/${HOME}\n");
    assert!(code == 400 && why.contains("${...}"), "{code} {why}");
    let (code, why) = put(&s, &admin, "pager", "webhook_configs:\n  - uri: http://x/\n");
    assert!(code == 400 && why.contains("uri"), "{code} {why}");
    let (code, why) = put(&s, &admin, "devnull", &receiver);
    assert!(code == 409 && why.contains("config file"), "{code} {why}");
    assert_eq!(put(&s, &admin, "pager", &receiver), (201, r#"{"status":"success","data":{"new":true}}"#.into()));

    // Shown with secrets hidden, to viewers too; sealed on disk.
    let r = s.request("GET", "/api/v1/receivers", &[("authorization", &editor)], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = r.text();
    assert!(!shown.contains(HOOK_TOKEN) && !shown.contains(BEARER_SECRET), "{shown}");
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let pager = v["data"].as_array().unwrap().iter().find(|r| r["name"] == "pager").expect("pager listed").clone();
    assert_eq!((pager["source"].as_str(), pager["integrations"][0].as_str()), (Some("api"), Some("webhook")));
    assert_eq!(pager["config"]["webhook_configs"][0]["url"], "<secret>");
    assert!(v["data"].as_array().unwrap().iter().any(|r| r["name"] == "devnull" && r["source"] == "config"));
    let key_file = s.config_path().parent().unwrap().join("keys/telltale.key");
    let sealed = std::fs::read_to_string(s.data_dir().join("secrets/sealed.json")).unwrap();
    assert!(sealed.contains("receiver/pager") && !sealed.contains(HOOK_TOKEN) && !sealed.contains(BEARER_SECRET));

    // A route in the config file names it; alerts reach it with its secrets.
    assert!(s.reload_with_signal(&config("pager")).contains("config reloaded"), "{}", s.log());
    fire(&s, &admin, "First");
    delivered(&hook, "First");
    let r = s.request("DELETE", "/api/v1/receivers/pager", &[("authorization", &admin)], &[]);
    assert!(r.status == 409 && r.text().contains("pager"), "a receiver a route uses stays: {}", r.text());

    // Edited blind: `<secret>` keeps the stored values.
    let blind = "webhook_configs:\n  - url: <secret>\n    max_alerts: 5\n    http_config:\n      authorization:\n        credentials: <secret>\n";
    assert_eq!(put(&s, &admin, "pager", blind).0, 200);
    let (code, why) = put(&s, &admin, "pager", "webhook_configs:\n  - url: <secret>\n  - url: <secret>\n");
    assert!(code == 400 && why.contains("webhook_configs[1].url"), "{code} {why}");
    fire(&s, &admin, "Second");
    delivered(&hook, "Second");

    // The CLI rotates the key while the server runs; a restart opens everything with the new key.
    let before = std::fs::read_to_string(&key_file).unwrap();
    let out = Command::new(BIN)
        .args(["secrets", "rotate-key", "--config"])
        .arg(s.config_path())
        .arg("--data-dir")
        .arg(s.data_dir())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("1 stored secret(s) re-sealed"), "{said}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), before);
    s.restart();
    fire(&s, &admin, "Third");
    delivered(&hook, "Third");

    // The audit log has the changes, and none of the secrets.
    let events = audit_events(&s, &admin, 1);
    assert!(events.iter().any(|e| e["action"] == "receiver_saved" && e["receiver"] == "pager"), "{events:?}");
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(HOOK_TOKEN) && !all.contains(BEARER_SECRET), "{all}");

    // Without its key, or with another one, the server does not start, and says what it cannot read.
    assert!(s.terminate().success());
    let rotated = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let err = refused_start(&s);
    assert!(err.contains("does not exist") && err.contains("receiver/pager") && err.contains("telltale.key"), "{err}");
    std::fs::write(&key_file, &before).unwrap();
    let err = refused_start(&s);
    assert!(err.contains("holds no key") && err.contains("receiver/pager"), "{err}");
    std::fs::write(&key_file, rotated).unwrap();
    s.start_again();
    let r = s.request("DELETE", "/api/v1/receivers/pager", &[("authorization", &admin)], &[]);
    assert_eq!(r.status, 409, "{}", r.text());
}

/// The Admin page in headless Chromium: a receiver typed in is stored, routed to and delivers;
/// its Edit shows `<secret>` in place of each secret, and saving that keeps them.
#[test]
fn the_admin_page_stores_a_receiver_and_edits_it_without_seeing_its_secrets() {
    use telltale_testkit::browser::Browser;
    let hook = Hook::start();
    let s = secured(&config("devnull"));
    let admin = bearer(&token(&s, &["--service-account", "ops", "--role", "admin"]));
    let b = Browser::start();
    b.goto(&format!("{}/login?next=%2Fadmin", s.url()));
    b.type_into(&b.find("input[name=user]"), "admin");
    b.type_into(&b.find("input[name=password]"), &format!("{ADMIN_PASSWORD}\n"));
    b.wait_for(
        "location.pathname === '/admin' && document.querySelectorAll('.card h2').length === 4",
        "the admin page",
    );
    b.type_into(&b.find("input[placeholder='name, e.g. pager']"), "pager");
    let yaml = format!(
        "webhook_configs:\n  - url: {}/alerts?token={HOOK_TOKEN}\n    http_config:\n      authorization:\n        credentials: {BEARER_SECRET}\n",
        hook.url
    );
    b.type_into(&b.find("textarea"), &yaml);
    b.click_text("button", "Save receiver");
    b.wait_for(
        "[...document.querySelectorAll('.tbl tr')].some((tr) => tr.textContent.includes('pager') && tr.textContent.includes('stored sealed'))",
        "the stored receiver in the table",
    );
    assert!(s.reload_with_signal(&config("pager")).contains("config reloaded"), "{}", s.log());
    fire(&s, &admin, "FromTheUi");
    delivered(&hook, "FromTheUi");

    b.click_text(".tbl button", "Edit");
    let text = b.wait_for(
        "document.querySelector('textarea').value.includes('<secret>') && document.querySelector('textarea').value",
        "the receiver in the editor",
    );
    let text = text.as_str().unwrap();
    assert!(!text.contains(HOOK_TOKEN) && !text.contains(BEARER_SECRET), "{text}");
    b.execute("document.getElementById('toast').textContent = ''", serde_json::json!([]));
    b.click_text("button", "Save receiver");
    b.wait_for("document.getElementById('toast').textContent === 'receiver pager saved'", "saved again");
    fire(&s, &admin, "EditedBlind");
    delivered(&hook, "EditedBlind");
    let page = b.execute("return document.body.innerHTML", serde_json::json!([]));
    assert!(!page.as_str().unwrap().contains(HOOK_TOKEN), "no secret reaches the page");
    let errors: Vec<_> = b.console_errors().into_iter().filter(|e| !e.message.contains("401")).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
