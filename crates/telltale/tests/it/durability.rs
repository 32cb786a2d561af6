//! Durability promises (DESIGN.md section 6) against the real engine and the real binary.

use std::sync::mpsc;

use super::start;

const QUIET: &str = "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n";

/// Every series' timestamps in an export, as `(series label value, timestamps)`.
fn exported(s: &telltale_testkit::TestServer, name: &str, label: &str) -> Vec<(String, Vec<i64>)> {
    let r = s.get(&format!("/api/v1/export?match[]={name}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let ts = v["timestamps"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
            (v["metric"][label].as_str().unwrap().to_string(), ts)
        })
        .collect()
}

#[test]
fn graceful_restart_keeps_everything() {
    let mut s = start(QUIET);
    let r = s.post("/write?precision=ms", "text/plain", b"keep,k=a v=1 1000\nkeep,k=a v=2 2000\n");
    assert_eq!(r.status, 204, "{}", r.text());
    s.restart();
    assert_eq!(exported(&s, "keep_v", "k"), [("a".to_string(), vec![1000, 2000])]);
}

#[test]
fn acknowledged_writes_survive_kill_9_during_concurrent_ingest() {
    let mut s = start(QUIET);
    const WRITERS: usize = 4;
    let (acks_tx, acks_rx) = mpsc::channel::<(usize, i64)>();
    let mut acked: Vec<Vec<i64>> = vec![Vec::new(); WRITERS];
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (s, tx) = (&s, acks_tx.clone());
            scope.spawn(move || {
                for i in 1..100_000i64 {
                    let body = format!("crash,writer=w{w} v={i} {}\n", i * 1000);
                    match s.try_request(
                        "POST",
                        "/write?precision=ms",
                        &[("content-type", "text/plain")],
                        body.as_bytes(),
                    ) {
                        Ok(r) if r.status == 204 => {
                            if tx.send((w, i * 1000)).is_err() {
                                return;
                            }
                        }
                        // After the kill: connection refused or reset. Nothing more is acknowledged.
                        _ => return,
                    }
                }
            });
        }
        drop(acks_tx);
        // Kill once plenty of writes were acknowledged, while the writers are still going.
        let mut n = 0;
        while let Ok((w, t)) = acks_rx.recv() {
            acked[w].push(t);
            n += 1;
            if n == 400 {
                s.signal("KILL");
            }
        }
    });
    s.kill9();
    s.restart();
    let found = exported(&s, "crash_v", "writer");
    for (w, want) in acked.iter().enumerate() {
        let got = found.iter().find(|(name, _)| *name == format!("w{w}")).map(|(_, t)| t.clone()).unwrap_or_default();
        let missing: Vec<_> = want.iter().filter(|t| !got.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "writer w{w}: {} acknowledged samples lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    assert!(acked.iter().map(Vec::len).sum::<usize>() >= 400);
}

#[test]
fn a_corrupt_wal_tail_is_named_and_the_rest_is_served() {
    let mut s = start(QUIET);
    let r = s.post("/write?precision=ms", "text/plain", b"tail,k=a v=1 1000\n");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.post("/write?precision=ms", "text/plain", b"tail,k=a v=2 2000\n");
    assert_eq!(r.status, 204, "{}", r.text());
    s.kill9();
    // Damage the end of the newest WAL segment, as a crash in the middle of a write would.
    let wal = s.data_dir().join("metrics/wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    let last = segments.last().expect("a wal segment").clone();
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&last, &bytes).unwrap();
    s.restart();
    let ready = s.get("/-/ready");
    assert_eq!(ready.status, 200);
    let body = ready.text();
    assert!(body.starts_with("ready, with 1 storage problem(s):\n- wal segment "), "{body}");
    assert!(body.contains(&last.display().to_string()), "{body}");
    assert!(s.log().contains("storage problem"), "{}", s.log());
    // The first write is intact; the damaged record (the second) is what was dropped.
    let got = exported(&s, "tail_v", "k");
    assert_eq!(got[0].1[0], 1000, "{got:?}");
    let m = s.get("/metrics").text();
    assert!(m.contains("telltale_storage_corrupt_files"), "{m}");
}

#[test]
fn disk_full_gets_503_reads_keep_working_and_writes_resume() {
    let mut mount = None;
    let mut s = telltale_testkit::TestServer::start_with(
        super::BIN,
        "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\nstorage:\n  tsdb:\n    wal:\n      segment_size: 64KiB\n",
        |dir| mount = Some(telltale_testkit::Tmpfs::mount(dir, "1m")),
    );
    let mount = mount.unwrap();
    let batch = |n: usize| -> Vec<u8> {
        (0..500).map(|i| format!("full,series=s{i:04} value={n} {}\n", 1000 + n)).collect::<String>().into_bytes()
    };
    let mut full = None;
    for n in 0..2000 {
        let r = s.post("/write?precision=ms", "text/plain", &batch(n));
        if r.status != 204 {
            full = Some((n, r));
            break;
        }
    }
    let (n, r) = full.expect("the 1 MiB tmpfs never filled up");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("No space left") || r.text().contains("no space"), "{}", r.text());
    // Reads keep working.
    let r = s.get("/api/v1/series?match[]=full_value");
    assert_eq!(r.status, 200);
    // Space returns: writing resumes without a restart.
    mount.resize("64m");
    let r = s.post("/write?precision=ms", "text/plain", &batch(n + 1));
    assert_eq!(r.status, 204, "{}", r.text());
    s.kill9();
}
