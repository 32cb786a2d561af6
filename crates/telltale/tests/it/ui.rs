//! The web UI in a real browser: Debian's headless Chromium, driven over WebDriver, against
//! the real `telltale serve` holding real metrics of this host from its own host collectors
//! (node_exporter's names and labels), collecting every second with a fixed `instance`.
//!
//! Screenshots of every page land in `target/ui-screenshots/` (CI keeps them as artefacts).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use telltale_testkit::browser::Browser;
use telltale_testkit::{eventually, free_port, Peer, TestServer};

use super::{json, start};

const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";
const ESCAPE: &str = "\u{E00C}";

/// A server whose host collectors run every second as `instance`, once they have collected
/// `rounds` times (enough for rates and the processes' CPU share).
fn with_host(instance: &str, rounds: usize) -> TestServer {
    with_host_and(instance, rounds, "")
}

/// [`with_host`] with more config appended.
fn with_host_and(instance: &str, rounds: usize, more: &str) -> TestServer {
    let s = start(&format!("collectors:\n  interval: 1s\n  instance: {instance}\n{more}"));
    let q = format!("/api/v1/query?query=count_over_time(node_load1%7Binstance%3D%22{instance}%22%7D%5B1m%5D)");
    eventually("the host collectors' first rounds", Duration::from_millis(200), || {
        let v = json(&s.get(&q));
        let n: usize = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= rounds).then_some(())
    });
    s
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots")
}

/// The browser's console errors (every page must load without any).
fn unexpected_errors(b: &Browser) -> Vec<String> {
    b.console_errors().into_iter().map(|e| e.message).collect()
}

fn visit(b: &Browser, s: &TestServer, path: &str, ready: &str, what: &str, shot: &str) -> serde_json::Value {
    b.goto(&format!("{}{path}", s.url()));
    let v = b.wait_for(ready, what);
    b.screenshot(&shots().join(format!("{shot}.png")));
    let errors = unexpected_errors(b);
    assert!(errors.is_empty(), "console errors on {path}: {errors:#?}");
    v
}

#[test]
fn every_page_loads_with_real_data_and_no_console_errors() {
    // A scrape target for the Status page: Debian's node_exporter on a loopback port.
    let port = free_port();
    let _ne = Peer::start("prometheus-node-exporter", &[format!("--web.listen-address=127.0.0.1:{port}")]);
    let s = with_host_and(
        "host-a",
        3,
        &format!("scrape_configs:\n  - job_name: node-exporter\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    );
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpus =
        stat.lines().filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)).count();
    let b = Browser::start();
    b.goto(&format!("{}/ui/favicon.svg", s.url()));
    b.execute("localStorage.setItem('telltale.theme', 'light')", json!([]));

    // Overview: the host picker has the host, the stats and charts show its numbers.
    let cores = visit(
        &b,
        &s,
        "/?from=now-5m&var-instance=host-a",
        "(() => { const p = [...document.querySelectorAll('.panel')]; \
           const stat = (t) => p.find((x) => x.querySelector('h3').textContent === t)?.querySelector('.big')?.textContent; \
           const legends = [...document.querySelectorAll('.legend button')].map((x) => x.textContent).join('|'); \
           const bars = [...document.querySelectorAll('.bar-row .n')].map((x) => x.textContent); \
           return document.querySelector('select[aria-label=Host]')?.value === 'host-a' \
             && stat('Memory used')?.endsWith('%') && legends.includes('load 1m') && legends.includes('cores') \
             && bars.length > 0 && document.querySelectorAll('.panel .tbl tbody tr').length > 0 && stat('CPU cores'); })()",
        "the Overview to show host-a's memory, load, filesystems, top processes and cores",
        "overview",
    );
    assert_eq!(cores.as_str(), Some(cpus.to_string().as_str()), "CPU cores stat = the CPUs in /proc/stat");
    // One round trip per panel: 16 panels and the alert banner, each one query request.
    let queries = b.execute(
        "return performance.getEntriesByType('resource').filter((r) => /\\/api\\/v1\\/query(_range)?$/.test(new URL(r.name).pathname)).length",
        json!([]),
    );
    let panels = b.execute("return document.querySelectorAll('.panel').length", json!([]));
    assert_eq!(panels, json!(16));
    assert_eq!(queries, json!(17), "one query per panel plus the alert banner");
    b.click(&b.find("#theme"));
    b.wait_for("document.documentElement.dataset.theme === 'dark'", "the dark theme");
    b.screenshot(&shots().join("overview-dark.png"));
    b.click(&b.find("#theme"));

    // Explore: a range graph, then an instant table, of real series.
    visit(
        &b,
        &s,
        "/explore?q=node_memory_MemTotal_bytes&from=now-5m&unit=bytes",
        "[...document.querySelectorAll('.legend button')].some((x) => x.textContent.includes('instance=\"host-a\"') && x.textContent.includes('GiB'))",
        "Explore's graph legend with host-a's total memory in GiB",
        "explore-graph",
    );
    // The legend toggles a series; a drag over the plot zooms into that range, in the URL.
    b.click(&b.find(".legend button"));
    b.wait_for("document.querySelector('.legend button.off')", "the legend to hide the series");
    b.click(&b.find(".legend button"));
    let overlay = b.find(".chart canvas.overlay");
    // The data is the last second or two of the range: hover near the right edge.
    let half =
        b.execute("return Math.floor(document.querySelector('.chart canvas.overlay').clientWidth / 2)", json!([]));
    b.hover(&overlay, half.as_i64().unwrap() - 14, 0);
    b.wait_for("document.querySelector('.tooltip')?.style.display === 'block' && document.querySelector('.tooltip').textContent.includes('GiB')", "the hover tooltip");
    b.drag(&overlay, 200, 500, 0);
    let zoomed = b.wait_for(
        "/from=\\d+/.test(location.search) && /to=\\d+/.test(location.search) && location.search",
        "the zoomed range in the URL",
    );
    let q: std::collections::HashMap<String, String> = zoomed
        .as_str()
        .unwrap()
        .trim_start_matches('?')
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (from, to): (i64, i64) = (q["from"].parse().unwrap(), q["to"].parse().unwrap());
    assert!(to > from && to - from < 5 * 60_000, "a part of the 5 minutes: {from}..{to}");
    b.execute("history.back()", json!([]));
    b.wait_for("location.search.includes('from=now-5m')", "back to the range before the zoom");

    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    let total = kib * 1024.0;
    let cell = visit(
        &b,
        &s,
        "/explore?q=node_memory_MemTotal_bytes&mode=instant&view=table&unit=bytes",
        "document.querySelector('.tbl tbody')?.textContent.includes('host-a') && document.querySelector('.tbl tbody td.num')?.textContent",
        "Explore's instant table",
        "explore-table",
    );
    // The page's formatting: GiB, one decimal from 10 up, two below, trailing zeros dropped.
    let gib = total / f64::from(1u32 << 30);
    let want = if gib >= 10.0 { format!("{gib:.1}") } else { format!("{gib:.2}") };
    let want = want.trim_end_matches('0').trim_end_matches('.').to_string();
    assert_eq!(cell, json!(format!("{want} GiB")), "MemTotal {total} bytes");

    visit(
        &b,
        &s,
        "/dashboards",
        "document.querySelector('.tbl')?.textContent.includes('Host overview')",
        "the built-in dashboard in the list",
        "dashboards",
    );
    visit(
        &b,
        &s,
        "/status",
        "(() => { const t = document.body.innerText; return t.includes('Series') && t.includes('node_cpu_seconds_total') \
           && document.querySelector('pre.yaml')?.textContent.includes('listen:') && t.includes('Scrape targets (1)') \
           && t.includes('node-exporter · 1/1 up'); })()",
        "storage numbers, the config and the scrape target, up",
        "status",
    );
    // Alerts: the built-in rule pack is listed (its group runs every minute, so it may not
    // have run yet); what fires depends on this host, so the first tab shows alerts or says
    // nothing fires.
    visit(
        &b,
        &s,
        "/alerts?tab=rules",
        "document.body.innerText.includes('telltale-node') && document.body.innerText.includes('HostFilesystemAlmostFull')",
        "the alerts page with the built-in rule pack",
        "alerts-rules-builtin",
    );
    b.set_size(390, 844);
    b.goto(&format!("{}/alerts", s.url()));
    b.wait_for(
        "document.querySelector('[data-alert]') || document.body.innerText.includes('Nothing is firing')",
        "the alerts page on a phone",
    );
    let fits = b.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1", json!([]));
    assert_eq!(fits, json!(true), "the alerts page needs no horizontal scrolling on a phone");
    b.screenshot(&shots().join("alerts-phone.png"));
    b.set_size(1400, 1000);
    let errors = unexpected_errors(&b);
    assert!(errors.is_empty(), "console errors on /alerts: {errors:#?}");

    push_logs(&s, "checkout", &["{\"level\":\"info\",\"msg\":\"order placed\",\"order\":\"A-1\"}"]);
    visit(
        &b,
        &s,
        "/logs?q=%7Bjob%3D%22app%22%7D",
        "document.body.innerText.includes('order placed') && document.querySelector('.hist canvas')",
        "the logs page with the pushed line and its histogram",
        "logs",
    );
}

/// Pushes `lines` (one millisecond apart, ending now) to the Loki push API as the stream
/// `{job="app", service}`, in Loki's JSON wire format.
fn push_logs(s: &TestServer, service: &str, lines: &[&str]) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let values: Vec<serde_json::Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| json!([(now - (lines.len() - i) as u128 * 1_000_000).to_string(), l]))
        .collect();
    let body = json!({"streams": [{"stream": {"job": "app", "service": service}, "values": values}]});
    let r = s.post("/loki/api/v1/push", "application/json", body.to_string().as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
}

#[test]
fn the_logs_page_searches_expands_shows_context_and_tails() {
    let s = start("collectors:\n  enabled: false\n");
    let lines: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "level={} msg=\"request {i}\" path=/api/items/{i} status={}",
                if i == 15 { "error" } else { "info" },
                if i == 15 { 500 } else { 200 }
            )
        })
        .collect();
    push_logs(&s, "shop", &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let b = Browser::start();
    b.goto(&format!("{}/logs", s.url()));

    // The LogQL box completes label names and values from the Loki API.
    let q = b.find(".editor textarea");
    b.type_into(&q, "{serv");
    b.wait_for("document.querySelector('.complete:not([hidden]) div[aria-selected=true]')?.firstChild.textContent === 'service'", "label name suggestions");
    b.type_into(&q, TAB);
    b.wait_for(
        "document.querySelector('.complete:not([hidden]) div[aria-selected=true]')?.firstChild.textContent === 'shop'",
        "label value suggestions",
    );
    b.type_into(&q, &format!("{TAB}}}"));
    assert_eq!(
        b.execute("return document.querySelector('.editor textarea').value", json!([])),
        json!("{service=\"shop\"}")
    );
    b.type_into(&q, &format!(" |= \"status=\"{ESCAPE}{ENTER}"));
    b.wait_for(
        "document.querySelectorAll('.loglines .logline').length === 30 && document.querySelector('.hist canvas') && location.search.includes('q=')",
        "30 matching lines, the histogram and the query in the URL",
    );
    b.screenshot(&shots().join("logs-search.png"));

    // A line opens to its labels and parsed fields; its context is the lines around it.
    b.click_text(".loglines .logline .msg", "request 15\"");
    b.wait_for(
        "(() => { const d = document.querySelector('.logline .detail'); return d && d.textContent.includes('service') \
           && [...d.querySelectorAll('dt')].some((x) => x.textContent === 'path') && [...d.querySelectorAll('dd')].some((x) => x.textContent === '/api/items/15'); })()",
        "the line's labels and parsed fields",
    );
    assert_eq!(b.execute("return document.querySelector('.logline .lvl').className", json!([])), json!("lvl info"));
    b.click_text(".logline .detail button", "Show context");
    let ctx = b.wait_for(
        "document.querySelector('.ctx .anchor') && [...document.querySelectorAll('.ctx .logline .msg')].map((x) => x.textContent.match(/request (\\d+)/)[1]).join(',')",
        "the context around the line",
    );
    assert_eq!(
        ctx,
        json!("25,24,23,22,21,20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5"),
        "ten lines after, the line, ten before"
    );
    b.screenshot(&shots().join("logs-context.png"));

    // Live tail: a line pushed after it starts shows up on top. (The toolbar is at the top
    // of the page, under the sticky header once the context scrolled the page.)
    b.execute("window.scrollTo(0, 0)", json!([]));
    b.click_text(".toolbar button", "Live");
    b.wait_for("document.querySelector('.toolbar button[aria-pressed=true]')", "live tail to start");
    // The tail's websocket may still be connecting: push until the line arrives.
    eventually("the tailed line in the page", Duration::from_millis(500), || {
        push_logs(&s, "shop", &["level=info msg=\"tailed line\" status=201"]);
        let v = b.execute("return document.querySelector('.loglines').textContent.includes('tailed line')", json!([]));
        (v == json!(true)).then_some(())
    });
    b.screenshot(&shots().join("logs-tail.png"));
    b.click_text(".toolbar button", "Stop");
    let errors = unexpected_errors(&b);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn a_dashboard_is_created_saved_and_still_there_after_reload_and_restart() {
    let mut s = with_host("host-b", 1);
    let b = Browser::start();
    b.goto(&format!("{}/dashboards", s.url()));
    b.click_text("button", "New dashboard");
    let title = b.find("dialog input");
    b.type_into(&title, &format!("Web servers{ENTER}"));
    b.wait_for("location.pathname === '/dashboards/web-servers' && document.querySelector('h1')?.textContent === 'Web servers'", "the new dashboard in edit mode");

    b.click_text(".head button", "Panel");
    b.wait_for("document.querySelector('.edit-side')", "the panel editor");
    let title = b.find(".edit-side input");
    b.clear(&title);
    b.type_into(&title, &format!("Load average{TAB}"));
    let q = b.find(".target textarea");
    b.type_into(&q, "node_load1");
    b.type_into(&q, &format!("{ESCAPE}{ENTER}"));
    b.wait_for(
        "[...document.querySelectorAll('.preview .legend button')].some((x) => x.textContent.includes('host-b'))",
        "the preview to draw host-b's load",
    );
    b.screenshot(&shots().join("dashboard-panel-editor.png"));
    b.click_text(".edit-side button", "Apply");
    b.wait_for(
        "[...document.querySelectorAll('.panel h3')].some((x) => x.textContent === 'Load average')",
        "the panel on the dashboard",
    );
    // Unsaved edits survive the back button (the page renders again from the URL).
    b.execute("history.back()", json!([]));
    b.wait_for(
        "location.search.includes('edit=1') && [...document.querySelectorAll('.panel h3')].some((x) => x.textContent === 'Load average')",
        "the unsaved panel after going back",
    );
    b.click_text(".head button", "Save");
    b.wait_for(
        "document.getElementById('toast').textContent === 'Dashboard saved' && !location.search.includes('edit')",
        "the save to finish",
    );

    // Reload: the page comes from the server again.
    b.goto(&format!("{}/dashboards/web-servers", s.url()));
    b.wait_for(
        "[...document.querySelectorAll('.panel')].some((p) => p.querySelector('h3').textContent === 'Load average' \
           && [...p.querySelectorAll('.legend button')].some((x) => x.textContent.includes('host-b')))",
        "the saved panel with data after a reload",
    );
    b.screenshot(&shots().join("dashboard-saved.png"));
    let errors = unexpected_errors(&b);
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // Import: a pasted document with a variable from label values, a gauge and a collapsed row.
    let imported = json!({"title": "Imported", "variables": [{"name": "host", "label": "Host", "query": "label_values(node_uname_info, instance)"}],
        "rows": [{"title": "Now", "panels": [
            {"id": 1, "type": "gauge", "title": "Memory used", "unit": "percent", "width": 4,
             "targets": [{"expr": "100 * (1 - node_memory_MemAvailable_bytes{instance=\"$host\"} / node_memory_MemTotal_bytes{instance=\"$host\"})"}]},
            {"id": 2, "type": "stat", "title": "Processes", "width": 4, "targets": [{"expr": "count(telltale_process_resident_memory_bytes{instance=\"$host\"})"}]}]},
          {"title": "Later", "collapsed": true, "panels": [{"id": 3, "type": "timeseries", "title": "Hidden", "targets": [{"expr": "up"}]}]}]});
    b.goto(&format!("{}/dashboards", s.url()));
    b.click_text("button", "Import");
    let area = b.find("dialog textarea");
    b.execute(
        "arguments[0].value = arguments[1]",
        json!([{ "element-6066-11e4-a52e-4f735466cecf": area }, imported.to_string()]),
    );
    b.click_text("dialog button", "Import");
    b.wait_for(
        "location.pathname === '/dashboards/imported' && document.querySelector('select[aria-label=Host]')?.value === 'host-b' \
           && document.querySelector('.gauge svg text')?.textContent.endsWith('%') \
           && /^\\d+$/.test(document.querySelector('.stat .big')?.textContent || '') \
           && document.querySelector('.row-title.collapsed') && ![...document.querySelectorAll('.panel h3')].some((x) => x.textContent === 'Hidden')",
        "the imported dashboard with its variable, gauge, stat and collapsed row",
    );
    b.screenshot(&shots().join("dashboard-imported.png"));
    b.click_text(".row-title", "Later");
    b.wait_for(
        "[...document.querySelectorAll('.panel h3')].some((x) => x.textContent === 'Hidden')",
        "the row to open",
    );
    let errors = unexpected_errors(&b);
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    let doc = json(&s.get("/api/v1/dashboards/web-servers"))["data"].clone();
    assert_eq!(doc["version"], 2, "created, then saved once: {doc}");
    let panel = &doc["rows"][0]["panels"][0];
    assert_eq!(
        (panel["title"].as_str(), panel["targets"][0]["expr"].as_str()),
        (Some("Load average"), Some("node_load1"))
    );
    s.restart();
    let again = json(&s.get("/api/v1/dashboards/web-servers"))["data"].clone();
    assert_eq!(again, doc, "the same document after a restart");
}

#[test]
fn the_promql_editor_completes_metric_names_labels_and_values() {
    let s = with_host("host-c", 1);
    let b = Browser::start();
    b.goto(&format!("{}/explore?from=now-5m", s.url()));
    let q = b.find(".editor textarea");
    b.type_into(&q, "node_load");
    let first = b.wait_for(
        "document.querySelector('.complete:not([hidden]) div[aria-selected=true]')?.firstChild.textContent",
        "metric name suggestions",
    );
    assert_eq!(first, json!("node_load1"));
    b.screenshot(&shots().join("explore-completion.png"));
    b.type_into(&q, TAB);
    assert_eq!(b.execute("return document.querySelector('.editor textarea').value", json!([])), json!("node_load1"));
    b.type_into(&q, "{ins");
    b.wait_for("document.querySelector('.complete:not([hidden]) div[aria-selected=true]')?.firstChild.textContent === 'instance'", "label name suggestions");
    b.type_into(&q, TAB);
    b.wait_for("document.querySelector('.complete:not([hidden]) div[aria-selected=true]')?.firstChild.textContent === 'host-c'", "label value suggestions");
    b.type_into(&q, &format!("{TAB}}}{ENTER}"));
    assert_eq!(
        b.execute("return document.querySelector('.editor textarea').value", json!([])),
        json!("node_load1{instance=\"host-c\"}")
    );
    b.wait_for(
        "[...document.querySelectorAll('.legend button')].some((x) => x.textContent.includes('host-c'))",
        "the graph of the completed query",
    );
    assert!(
        b.execute("return location.search", json!([])).as_str().unwrap().contains("q=node_load1"),
        "the query is in the URL"
    );

    // A syntax error shows under the editor, from the server's parser.
    b.clear(&q);
    b.type_into(&q, "sum(rate(node_load1[5m]");
    let err = b.wait_for("document.querySelector('.editor .err')?.textContent", "an inline syntax error");
    assert!(err.as_str().unwrap().contains("parse error"), "{err}");

    // Back goes to the previous query's URL.
    b.goto(&format!("{}/explore?q=up", s.url()));
    b.execute("history.back()", json!([]));
    b.wait_for("location.search.includes('host-c')", "the back button to restore the previous query");
    // The editor checks half-typed queries with the server's parser; those answer 400,
    // which Chromium logs. Any other error counts.
    let errors: Vec<String> = unexpected_errors(&b)
        .into_iter()
        .filter(|m| !(m.contains("/api/v1/format_query") && m.contains("status of 400")))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

const UI_RULES: &str = "groups:\n  - name: host\n    interval: 1s\n    rules:\n\
    \x20     - alert: DiskAlmostFull\n        expr: vector(93)\n        labels: {severity: critical, instance: \"host-a:9100\"}\n\
    \x20       annotations: {summary: \"Filesystem / on host-a is 93% full\"}\n\
    \x20     - alert: HighLoad\n        expr: vector(3)\n        for: 1h\n        labels: {severity: warning}\n\
    \x20       annotations: {summary: \"Load is above the number of cores\"}\n\
    \x20     - record: job:up:count\n        expr: count(up)\n";

#[test]
fn the_alerts_page_shows_alerts_and_silences_one_from_an_alert() {
    // Telltale's own rules, pipeline, silences and notification log; a webhook receives.
    let (hook, received) = super::webhook_sink();
    let config = format!(
        "collectors:\n  enabled: false\nrule_files: [data/rules.yml]\nalerting:\n  route:\n    receiver: hook\n    group_wait: 1s\n  receivers:\n    - name: hook\n      webhook_configs:\n        - url: {hook}\n"
    );
    let s = TestServer::start_with(super::BIN, &config, |d| std::fs::write(d.join("rules.yml"), UI_RULES).unwrap());
    eventually("the webhook to receive the firing alert", Duration::from_millis(200), || {
        (!received.lock().unwrap().is_empty()).then_some(())
    });
    let b = Browser::start();
    b.goto(&format!("{}/alerts", s.url()));
    b.wait_for(
        "(() => { const t = document.body.innerText; return t.includes('DiskAlmostFull') && t.includes('HighLoad') \
           && t.includes('Filesystem / on host-a is 93% full') && document.querySelector('[data-alert=DiskAlmostFull] .badge.firing') \
           && document.querySelector('[data-alert=HighLoad] .badge.pending') && t.includes('active since'); })()",
        "the firing and the pending alert with labels, annotations and since when",
    );
    b.screenshot(&shots().join("alerts-firing.png"));
    let graph =
        b.execute("return document.querySelector('[data-alert=DiskAlmostFull] a.btn').getAttribute('href')", json!([]));
    assert_eq!(graph, json!("/explore?q=vector(93)&from=now-6h"), "the graph link runs the rule's query");

    // The Overview puts firing alerts on top (from the ALERTS series), with a link here.
    b.goto(&format!("{}/", s.url()));
    b.wait_for(
        "[...document.querySelectorAll('.banner .alert-line')].some((x) => x.textContent.includes('DiskAlmostFull') && x.textContent.includes('since'))",
        "the firing alert on top of the Overview",
    );
    b.screenshot(&shots().join("overview-firing-alert.png"));
    b.goto(&format!("{}/alerts", s.url()));

    // Silence it from its card: the form comes filled with the alert's labels.
    b.click(&b.find("[data-alert=DiskAlmostFull] .btns button"));
    let matchers = b.execute("return document.querySelector('dialog textarea').value", json!([]));
    let matchers = matchers.as_str().unwrap();
    assert!(
        matchers.contains("alertname=\"DiskAlmostFull\"") && matchers.contains("instance=\"host-a:9100\""),
        "{matchers}"
    );
    b.type_into(&b.find("dialog input[aria-label='Created by']"), "ui-test");
    b.type_into(&b.find("dialog textarea[aria-label=Comment]"), "replacing the disk");
    b.click_text("dialog button", "Create silence");
    b.wait_for(
        "document.querySelector('[data-alert=DiskAlmostFull] .badge.silenced')",
        "the alert to show as silenced",
    );
    b.screenshot(&shots().join("alerts-silenced.png"));
    let silences = json(&s.get("/api/v2/silences"));
    let sil = &silences[0];
    assert_eq!((sil["createdBy"].as_str(), sil["comment"].as_str()), (Some("ui-test"), Some("replacing the disk")));
    assert_eq!(sil["status"]["state"], "active");

    b.goto(&format!("{}/alerts?tab=rules", s.url()));
    b.wait_for(
        "document.body.innerText.includes('job:up:count') && document.querySelectorAll('.badge.ok').length >= 3",
        "the rules with their health",
    );
    b.screenshot(&shots().join("alerts-rules.png"));

    // History: the ALERTS series over 24 hours and the notification log (the webhook got it).
    b.goto(&format!("{}/alerts?tab=history", s.url()));
    b.wait_for(
        "document.querySelector('[data-history=DiskAlmostFull] .badge.firing') && document.body.innerText.includes('→ now') \
           && document.querySelector('[data-notification] .badge.ok') && document.body.innerText.includes('hook · webhook')",
        "the firing alert in the history and the sent notification",
    );
    b.screenshot(&shots().join("alerts-history.png"));

    // Expire it from the Silences tab.
    b.goto(&format!("{}/alerts?tab=silences", s.url()));
    b.click_text("[data-silence] button", "Expire");
    b.wait_for("document.querySelector('[data-silence] .badge.expired')", "the silence to show as expired");
    b.screenshot(&shots().join("alerts-silences.png"));
    assert_eq!(json(&s.get("/api/v2/silences"))[0]["status"]["state"], "expired");
    b.set_size(390, 844);
    b.goto(&format!("{}/alerts", s.url()));
    b.wait_for("document.querySelector('[data-alert=DiskAlmostFull]')", "the alerts on a phone");
    let fits = b.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1", json!([]));
    assert_eq!(fits, json!(true), "no horizontal scrolling on a phone");
    b.screenshot(&shots().join("alerts-firing-phone.png"));
    let errors = unexpected_errors(&b);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn ui_modules_unit_tests() {
    let s = start("collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n");
    let b = Browser::start();
    b.goto(&format!("{}/explore", s.url()));
    let r = b.execute_async(include_str!("ui_unit.js"), json!([]));
    let failures = r["failures"].as_array().cloned().unwrap_or_default();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(r["passed"].as_u64().unwrap_or(0) >= 55, "{r}");
}
