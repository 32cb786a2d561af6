//! Logs end to end: Loki push in, LogQL out, the durability promises for logs.

use std::sync::mpsc;

use telltale_testkit::TestServer;

use super::{json, start};

pub(crate) const QUIET: &str = "server:\n  self_scrape_interval: 0s\n";

pub(crate) fn enc(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) fn push(s: &TestServer, body: &str) -> telltale_testkit::Response {
    s.post("/loki/api/v1/push", "application/json", body.as_bytes())
}

/// `(stream labels, ns, line)` of a log query over all time, oldest first.
pub(crate) fn logql(s: &TestServer, query: &str) -> Vec<(serde_json::Value, String, String)> {
    let r = s.get(&format!(
        "/loki/api/v1/query_range?query={}&start=0&end=4000000000&limit=5000&direction=forward",
        enc(query)
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    let mut out = Vec::new();
    for st in v["data"]["result"].as_array().unwrap() {
        for e in st["values"].as_array().unwrap() {
            out.push((st["stream"].clone(), e[0].as_str().unwrap().to_string(), e[1].as_str().unwrap().to_string()));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// The first column of a SQL query's rows, as strings.
pub(crate) fn sql_lines(s: &TestServer, query: &str) -> Vec<String> {
    let body = serde_json::json!({ "query": query }).to_string();
    let r = s.post("/api/v1/sql", "application/json", body.as_bytes());
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    json(&r)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().map_or_else(|| row[0].to_string(), str::to_string))
        .collect()
}

#[test]
fn loki_push_then_logql_after_flush_and_restart() {
    let mut s = start(QUIET);
    let r = push(
        &s,
        r#"{"streams":[{"stream":{"job":"e2e","level":"info"},"values":[["1700000000000000001","first line"],["1700000000000000002","second ✓"]]}]}"#,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let want = vec![
        (
            serde_json::json!({"job": "e2e", "level": "info"}),
            "1700000000000000001".to_string(),
            "first line".to_string(),
        ),
        (serde_json::json!({"job": "e2e", "level": "info"}), "1700000000000000002".to_string(), "second ✓".to_string()),
    ];
    assert_eq!(logql(&s, r#"{job="e2e"}"#), want);
    let m = s.get("/metrics").text();
    assert!(m.contains("telltale_logs_ingested_lines_total{protocol=\"loki\"} 2\n"), "{m}");
    assert_eq!(s.get("/internal/force_flush").status, 200);
    assert_eq!(logql(&s, r#"{job="e2e"}"#), want, "read back from the segment");
    s.restart();
    assert_eq!(logql(&s, r#"{job="e2e"}"#), want, "after a restart");
    assert_eq!(sql_lines(&s, "SELECT line FROM logs WHERE job = 'e2e' ORDER BY timestamp"), ["first line", "second ✓"]);
    push(
        &s,
        r#"{"streams":[{"stream":{"job":"e2e","level":"warn"},"values":[["1700000000000000003","in the head"]]}]}"#,
    );
    assert_eq!(sql_lines(&s, "SELECT count(*) FROM logs"), ["3"], "segments and head");
    let r = s.get("/loki/api/v1/labels?start=0&end=4000000000");
    assert_eq!(json(&r)["data"], serde_json::json!(["job", "level"]));
    assert!(s.get("/metrics").text().contains("\ntelltale_logs_segments 1\n"));
}

#[test]
fn acknowledged_log_pushes_survive_kill_9() {
    let mut s = start(QUIET);
    const WRITERS: usize = 4;
    let (tx, rx) = mpsc::channel::<(usize, i64)>();
    let mut acked: Vec<Vec<i64>> = vec![Vec::new(); WRITERS];
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (s, tx) = (&s, tx.clone());
            scope.spawn(move || {
                for i in 1..100_000i64 {
                    let body = format!(
                        r#"{{"streams":[{{"stream":{{"job":"crash","w":"{w}"}},"values":[["{i}","line {i}"]]}}]}}"#
                    );
                    match s.try_request(
                        "POST",
                        "/loki/api/v1/push",
                        &[("content-type", "application/json")],
                        body.as_bytes(),
                    ) {
                        Ok(r) if r.status == 204 => {
                            if tx.send((w, i)).is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            });
        }
        drop(tx);
        let mut n = 0;
        while let Ok((w, i)) = rx.recv() {
            acked[w].push(i);
            n += 1;
            if n == 400 {
                s.signal("KILL");
            }
        }
    });
    s.kill9();
    s.restart();
    let got = logql(&s, r#"{job="crash"}"#);
    for (w, want) in acked.iter().enumerate() {
        let have: std::collections::HashSet<i64> = got
            .iter()
            .filter(|(l, _, _)| l["w"].as_str() == Some(w.to_string().as_str()))
            .map(|(_, ts, _)| ts.parse().unwrap())
            .collect();
        let missing: Vec<_> = want.iter().filter(|t| !have.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "writer {w}: {} acknowledged lines lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    assert!(acked.iter().map(Vec::len).sum::<usize>() >= 400);
}

#[test]
fn a_corrupt_log_segment_is_named_in_ready_and_metrics() {
    let mut s = start(QUIET);
    push(&s, r#"{"streams":[{"stream":{"job":"a"},"values":[["1","kept in a segment"]]}]}"#);
    assert_eq!(s.get("/internal/force_flush").status, 200);
    push(&s, r#"{"streams":[{"stream":{"job":"b"},"values":[["2","in the wal"]]}]}"#);
    let status = s.terminate();
    assert!(status.success());
    let seg = s.data_dir().join("logs/segments/0000000001.parquet");
    std::fs::write(&seg, b"not parquet at all").unwrap();
    s.restart();
    let ready = s.get("/-/ready");
    assert_eq!(ready.status, 200);
    assert!(ready.text().contains("log segment 0000000001 quarantined"), "{}", ready.text());
    assert!(s.get("/metrics").text().contains("\ntelltale_storage_corrupt_files 1\n"));
    let got = logql(&s, r#"{job=~"a|b"}"#);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, "in the wal");
}

/// A full disk: 503 naming the cause, reads keep working, nothing half-written is left, writing
/// resumes once space returns, and every acknowledged line is there, also after a `kill -9`.
#[test]
fn log_disk_full_gets_503_and_resumes() {
    let mut mount = None;
    let mut s = TestServer::start_with(
        super::BIN,
        "server:\n  self_scrape_interval: 0s\nstorage:\n  logs:\n    wal:\n      segment_size: 64KiB\n",
        |dir| mount = Some(telltale_testkit::Tmpfs::mount(dir, "2m")),
    );
    let mount = mount.unwrap();
    let line = |ts: usize| format!("{ts:06} {}", "x".repeat(1000));
    let body = |n: usize| {
        let values: Vec<String> = (0..50).map(|i| format!(r#"["{}","{}"]"#, n * 100 + i, line(n * 100 + i))).collect();
        format!(r#"{{"streams":[{{"stream":{{"job":"full"}},"values":[{}]}}]}}"#, values.join(","))
    };
    let mut acked = Vec::new();
    let mut full = None;
    for n in 0..5000 {
        let r = push(&s, &body(n));
        if r.status != 204 {
            full = Some((n, r));
            break;
        }
        acked.extend((0..50).map(|i| n * 100 + i));
    }
    let (n, r) = full.expect("the tmpfs never filled up");
    assert!(n > 0, "the first push already failed: {}", r.text());
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("no space left on device"), "{}", r.text());
    let r = s.get("/loki/api/v1/labels?start=0&end=4000000000");
    assert_eq!(r.status, 200, "reads keep working");
    let stored = |s: &TestServer| -> Vec<usize> {
        let mut got: Vec<usize> = logql(s, r#"{job="full"}"#)
            .into_iter()
            .map(|(_, ts, l)| {
                let ts: usize = ts.parse().unwrap();
                assert_eq!(l, line(ts), "line {ts} comes back whole");
                ts
            })
            .collect();
        got.sort_unstable();
        got
    };
    let got = stored(&s);
    assert!(
        got == acked,
        "exactly the {} acknowledged lines, none of the refused push: {} stored",
        acked.len(),
        got.len()
    );
    mount.resize("64m");
    let r = push(&s, &body(n + 1));
    assert_eq!(r.status, 204, "{}", r.text());
    acked.extend((0..50).map(|i| (n + 1) * 100 + i));
    assert!(stored(&s) == acked, "after space returned");
    s.kill9();
    s.start_again();
    assert!(stored(&s) == acked, "after kill -9");
}

#[test]
fn tailed_files_resume_after_a_restart_without_loss_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let write = |s: &str| {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    write("one\ntwo\n");
    let cfg = format!(
        "server:\n  self_scrape_interval: 0s\nlogs:\n  files_poll_interval: 100ms\n  files:\n    - path: {}/*.log\n      labels: {{job: tailed}}\n",
        dir.path().display()
    );
    let mut s = start(&cfg);
    let lines = |s: &TestServer| logql(s, r#"{job="tailed"}"#).into_iter().map(|(_, _, l)| l).collect::<Vec<_>>();
    telltale_testkit::eventually("two tailed lines", std::time::Duration::from_millis(100), || {
        (lines(&s).len() >= 2).then_some(())
    });
    write("three\n");
    telltale_testkit::eventually("three tailed lines", std::time::Duration::from_millis(100), || {
        (lines(&s).len() >= 3).then_some(())
    });
    let status = s.terminate();
    assert!(status.success());
    // Written while the server is down, then rotated: nothing is lost or read twice.
    write("four\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    write("five\n");
    s.restart();
    telltale_testkit::eventually("five tailed lines", std::time::Duration::from_millis(100), || {
        (lines(&s).len() >= 5).then_some(())
    });
    assert_eq!(lines(&s), ["one", "two", "three", "four", "five"]);
    let got = logql(&s, r#"{job="tailed"}"#);
    assert_eq!(got[0].0["filename"], log.display().to_string());
}

/// Lines the store refuses (here: over `logs.rates.max_streams_per_tenant`) are written
/// again until it takes them, not skipped: the tailer does not return a line twice.
#[test]
fn issue_7_serve_retries_tailed_lines_the_store_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cfg = |max: usize| {
        format!(
            "{QUIET}logs:\n  rates:\n    max_streams_per_tenant: {max}\n  files_poll_interval: 100ms\n  files:\n    \
             - path: {}\n      labels: {{job: tailed}}\n",
            log.display()
        )
    };
    let s = start(&cfg(1));
    let r = push(
        &s,
        r#"{"streams":[{"stream":{"job":"other"},"values":[["1700000000000000001","takes the one stream"]]}]}"#,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    std::fs::write(&log, "one\n").unwrap();
    s.wait_for_log(|l| l.contains("tailed lines not stored; retrying") && l.contains("max_streams_per_tenant"));
    std::fs::write(&log, "one\ntwo\n").unwrap();
    std::fs::write(s.config_path(), cfg(10)).unwrap();
    assert_eq!(s.request("POST", "/-/reload", &[], &[]).status, 200);
    let lines = || logql(&s, r#"{job="tailed"}"#).into_iter().map(|(_, _, l)| l).collect::<Vec<_>>();
    telltale_testkit::eventually("both lines", std::time::Duration::from_millis(100), || {
        (lines().len() >= 2).then_some(())
    });
    assert_eq!(lines(), ["one", "two"]);
}

#[test]
fn logql_rule_groups_fire_through_the_alerting_pipeline() {
    let (hook, received) = super::webhook_sink();
    let rules = "groups:\n- name: app-logs\n  type: logql\n  interval: 1s\n  rules:\n  - alert: CheckoutErrors\n    expr: sum by (app) (count_over_time({app=\"checkout\"} |= \"error\" [1m])) > 2\n    labels: {severity: page}\n    annotations: {summary: \"{{ $labels.app }}: {{ $value }} errors in a minute\"}\n  - record: app:log_errors:count1m\n    expr: sum by (app) (count_over_time({app=~\".+\"} |= \"error\" [1m]))\n";
    let config = format!(
        "{QUIET}collectors:\n  enabled: false\nrule_files: [data/rules.yml]\nalerting:\n  route:\n    receiver: hook\n    group_wait: 1s\n  receivers:\n    - name: hook\n      webhook_configs:\n        - url: {hook}\n"
    );
    let s = TestServer::start_with(super::BIN, &config, |d| std::fs::write(d.join("rules.yml"), rules).unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let body = serde_json::json!({"streams": [{"stream": {"app": "checkout"}, "values": [
        [(now - 3_000_000).to_string(), "error: card declined"],
        [(now - 2_000_000).to_string(), "ok: order placed"],
        [(now - 1_000_000).to_string(), "error: card declined"],
        [now.to_string(), "error: stock service timeout"],
    ]}]});
    assert_eq!(push(&s, &body.to_string()).status, 204);
    let sent = telltale_testkit::eventually(
        "the webhook to get the LogQL alert",
        std::time::Duration::from_millis(200),
        || received.lock().unwrap().iter().find(|b| b.contains("CheckoutErrors")).cloned(),
    );
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    let alert = &sent["alerts"][0];
    assert_eq!((alert["status"].as_str(), alert["labels"]["app"].as_str()), (Some("firing"), Some("checkout")));
    assert_eq!(alert["annotations"]["summary"], "checkout: 3 errors in a minute");
    // The rule API lists the group like any other; the recording rule wrote a metric.
    let rules = json(&s.get("/api/v1/rules"));
    let group = rules["data"]["groups"].as_array().unwrap().iter().find(|g| g["name"] == "app-logs").cloned().unwrap();
    assert!(group["rules"].as_array().unwrap().iter().all(|r| r["health"] == "ok"), "{group}");
    let rec = json(&s.get("/api/v1/query?query=app%3Alog_errors%3Acount1m"));
    assert_eq!(rec["data"]["result"][0]["metric"]["app"], "checkout", "{rec}");
}

/// Issue 7: `telltale agent` tails files to the server's Loki push API. Appends, a rotation
/// while the server is down (lines written to the old file after the rename included),
/// copytruncate, a graceful restart of the agent and a `kill -9` of it with a rotation while
/// it is down: every line arrives once, in the order written.
#[test]
fn agent_tails_files_through_outages_and_restarts_delivering_every_line_once() {
    use std::os::unix::fs::MetadataExt as _;
    use std::path::Path;
    use std::time::Duration;
    use telltale_testkit::{eventually, Peer};

    let mut s = start(&format!("{QUIET}collectors:\n  enabled: false\n"));
    s.pin_address();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("app.log");
    let append = |path: &Path, text: &str| {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    let cfg = dir.path().join("agent.yml");
    std::fs::write(
        &cfg,
        format!(
            "collectors:\n  enabled: false\nglobal:\n  external_labels: {{site: lab}}\nlogs:\n  files_poll_interval: 100ms\n  \
             files:\n    - path: {}/*.log\n      labels: {{job: agent-tail}}\nagent:\n  min_backoff: 50ms\n  max_backoff: 200ms\n",
            logs.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let lines = |s: &TestServer| logql(s, r#"{job="agent-tail"}"#).into_iter().map(|(_, _, l)| l).collect::<Vec<_>>();
    let arrived = |s: &TestServer, want: &[&str], agent: &Peer| {
        eventually(&format!("{} tailed lines", want.len()), Duration::from_millis(100), || {
            (lines(s).len() >= want.len()).then_some(())
        });
        assert_eq!(lines(s), want, "{}", agent.log());
    };
    let pause = |d: Duration| {
        let (_keep, rx) = mpsc::channel::<()>();
        let _ = rx.recv_timeout(d);
    };

    append(&log, "a1\na2\n");
    let mut agent = super::start_agent(s.url(), &cfg, &data);
    arrived(&s, &["a1", "a2"], &agent);
    append(&log, "a3\n");
    arrived(&s, &["a1", "a2", "a3"], &agent);

    // The server goes away: o1 is read and retried; meanwhile the file is rotated, with a line
    // written to the old file after the rename, as a writer does until it reopens.
    assert_eq!(s.terminate().code(), Some(0));
    append(&log, "o1\n");
    eventually("the agent to retry", Duration::from_millis(50), || {
        agent.log().contains("log push failed; retrying with backoff").then_some(())
    });
    append(&log, "o2\n");
    std::fs::rename(&log, logs.join("app.log.1")).unwrap();
    append(&logs.join("app.log.1"), "o3\n");
    append(&log, "p1\np2\n");
    pause(Duration::from_millis(1500));
    s.start_again();
    let mut want = vec!["a1", "a2", "a3", "o1", "o2", "o3", "p1", "p2"];
    arrived(&s, &want, &agent);

    // copytruncate: the file is cut and written again from its start.
    std::fs::write(&log, "t1\n").unwrap();
    want.push("t1");
    arrived(&s, &want, &agent);
    append(&log, "t2\n");
    want.push("t2");
    arrived(&s, &want, &agent);

    // A graceful restart, with a line written while the agent is down.
    let status = agent.terminate();
    assert!(status.success(), "agent exited {status}\n{}", agent.log());
    let log_text = agent.log();
    let stopped = log_text.lines().find(|l| l.contains(" stopped")).unwrap_or_else(|| panic!("{log_text}"));
    assert!(stopped.contains(&format!("sent_log_lines={}", want.len())), "{stopped}");
    assert!(stopped.contains("dropped_rejected_log_lines=0"), "{stopped}");
    assert!(!stopped.contains("log_push_retries=0"), "the outage caused retries: {stopped}");
    append(&log, "r1\n");
    let agent = super::start_agent(s.url(), &cfg, &data);
    want.push("r1");
    arrived(&s, &want, &agent);

    // kill -9 once r1 is checkpointed; the file is rotated while the agent is dead.
    let checkpoint = data.join("logs").join("file-positions-0.json");
    eventually("the checkpoint to reach the end of the file", Duration::from_millis(50), || {
        let cp: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).ok()?).ok()?;
        let m = std::fs::metadata(&log).unwrap();
        let p = &cp[log.display().to_string()];
        (p["inode"] == m.ino() && p["offset"] == m.len()).then_some(())
    });
    drop(agent);
    append(&log, "k1\n");
    std::fs::rename(&log, logs.join("app.log.2")).unwrap();
    append(&log, "k2\n");
    let mut agent = super::start_agent(s.url(), &cfg, &data);
    want.extend(["k1", "k2"]);
    arrived(&s, &want, &agent);

    // Once each, in order, in one stream with the file's labels and the external label; SQL agrees.
    let got = logql(&s, r#"{job="agent-tail"}"#);
    let stream = serde_json::json!({"job": "agent-tail", "filename": log.display().to_string(), "site": "lab"});
    assert!(got.iter().all(|(l, _, _)| *l == stream), "{got:?}");
    assert_eq!(sql_lines(&s, "SELECT line FROM logs WHERE job = 'agent-tail' ORDER BY timestamp"), want);
    let status = agent.terminate();
    assert!(status.success(), "agent exited {status}\n{}", agent.log());
}

/// A push the server refuses with a 4xx (here: more labels than its `max_labels_per_stream`)
/// is logged with the server's reason, counted and dropped, and the agent goes on following
/// that file and the others. An agent whose push URL cannot be derived refuses to start.
#[test]
fn agent_drops_a_push_the_server_refuses_and_goes_on() {
    use std::time::Duration;
    use telltale_testkit::{eventually, Peer};

    let s = start(&format!("{QUIET}collectors:\n  enabled: false\nlogs:\n  limits:\n    max_labels_per_stream: 3\n"));
    let dir = tempfile::tempdir().unwrap();
    let (bad, good) = (dir.path().join("bad.log"), dir.path().join("good.log"));
    std::fs::write(&bad, "refused 1\n").unwrap();
    std::fs::write(&good, "taken 1\n").unwrap();
    let cfg = dir.path().join("agent.yml");
    std::fs::write(
        &cfg,
        format!(
            "collectors:\n  enabled: false\nlogs:\n  files_poll_interval: 100ms\n  files:\n    \
             - path: {}\n      labels: {{job: bad, a: x, b: y}}\n    - path: {}\n      labels: {{job: good}}\n",
            bad.display(),
            good.display()
        ),
    )
    .unwrap();
    let args = |url: String| -> Vec<String> {
        let data = dir.path().join("data").display().to_string();
        ["agent", "--remote-write", &url, "--config", &cfg.display().to_string(), "--data-dir", &data]
            .map(String::from)
            .to_vec()
    };
    let out = std::process::Command::new(super::BIN).args(args("http://127.0.0.1:9/receive".into())).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.logs_push_url: needed for logs.files"), "{err}");

    let mut agent = Peer::start(super::BIN, &args(format!("{}/api/v1/write", s.url())));
    let lines = |job: &str| logql(&s, &format!("{{job=\"{job}\"}}")).into_iter().map(|(_, _, l)| l).collect::<Vec<_>>();
    eventually("the good file's line", Duration::from_millis(100), || (lines("good") == ["taken 1"]).then_some(()));
    std::fs::write(&bad, "refused 1\nrefused 2\n").unwrap();
    std::fs::write(&good, "taken 1\ntaken 2\n").unwrap();
    eventually("the good file's second line", Duration::from_millis(100), || {
        (lines("good") == ["taken 1", "taken 2"]).then_some(())
    });
    let status = agent.terminate();
    assert!(status.success(), "agent exited {status}\n{}", agent.log());
    let log = agent.log();
    assert!(
        log.lines().any(|l| l.contains("log push refused; lines dropped") && l.contains("max_labels_per_stream")),
        "{log}"
    );
    let stopped = log.lines().find(|l| l.contains(" stopped")).unwrap_or_else(|| panic!("{log}"));
    assert!(stopped.contains("sent_log_lines=2") && stopped.contains("dropped_rejected_log_lines=2"), "{stopped}");
    assert!(lines("bad").is_empty());
}
