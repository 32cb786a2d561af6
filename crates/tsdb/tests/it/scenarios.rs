use std::fs;
use std::sync::Arc;
use std::time::Duration;

use telltale_model::{Matcher, Sample, TimeRange, WriteBatch, STALE_NAN_BITS};
use telltale_storage::{Maintenance, MetricReader, MetricWriter};
use telltale_tsdb::{Options, Tsdb};

use crate::{all, batch, hours, labels, Fixture};

fn ramp(series: usize, from: i64, n: i64, step: i64) -> Vec<(telltale_model::Labels, Vec<Sample>)> {
    (0..series)
        .map(|i| {
            let l = labels(&[("__name__", "m"), ("i", &i.to_string())]);
            (l, (0..n).map(|k| Sample::new(from + k * step, (k * 7 + i as i64) as f64 * 0.25)).collect())
        })
        .collect()
}

fn total_samples(db: &Tsdb) -> usize {
    all(db).iter().map(|s| s.samples.len()).sum()
}

fn stat(db: &Tsdb, name: &str) -> f64 {
    db.stats().into_iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no stat {name}")).value
}

#[test]
fn reopen_after_crash_keeps_every_sample() {
    let f = Fixture::new();
    let data = ramp(50, 1_000_000, 100, 15_000);
    for chunk in data.chunks(7) {
        f.write(&batch(chunk)).unwrap();
    }
    let stale = labels(&[("__name__", "stale")]);
    f.write(&batch(&[(stale, vec![Sample::new(5, f64::from_bits(STALE_NAN_BITS))])])).unwrap();
    let before = all(&f);
    let Fixture { db, dir } = f;
    drop(db); // no close: as if killed
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    let after = all(&db);
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a.labels, b.labels);
        assert!(a.samples.len() == b.samples.len() && a.samples.iter().zip(&b.samples).all(|(x, y)| x.bit_eq(y)));
    }
    assert!(db.problems().is_empty(), "{:?}", db.problems());
}

#[test]
fn flush_moves_data_to_blocks_and_truncates_the_wal() {
    let f = Fixture::new();
    f.write(&batch(&ramp(20, 0, 200, 1000))).unwrap();
    let wal_before = stat(&f, "telltale_storage_wal_bytes");
    f.flush().unwrap();
    assert_eq!(stat(&f, "telltale_storage_blocks"), 1.0);
    assert!(stat(&f, "telltale_storage_wal_bytes") < wal_before / 4.0, "wal not truncated");
    // Later samples go to the head; reads merge both.
    f.write(&batch(&ramp(20, 200_000, 10, 1000))).unwrap();
    assert_eq!(total_samples(&f), 20 * 210);
    let Fixture { db, dir } = f;
    drop(db);
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    assert_eq!(total_samples(&db), 20 * 210);
    // After a restart a series still refuses a conflicting rewrite of its newest sample.
    let s = db.write(&batch(&[(ramp(1, 0, 1, 1000)[0].0.clone(), vec![Sample::new(209_000, -1.0)])])).unwrap();
    assert_eq!(s.rejected.duplicate_timestamp, 1);
}

#[test]
fn torn_wal_tail_is_truncated_and_reported() {
    let f = Fixture::new();
    f.write(&batch(&ramp(3, 0, 10, 1000))).unwrap();
    f.write(&batch(&ramp(3, 10_000, 10, 1000))).unwrap();
    let Fixture { db, dir } = f;
    drop(db);
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = fs::read_dir(&wal).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    let last = segs.iter().rev().find(|p| fs::metadata(p).unwrap().len() > 8).unwrap().clone();
    let len = fs::metadata(&last).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(len - 5).unwrap(); // tear the last record
    drop(file);
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    assert_eq!(total_samples(&db), 30, "the first batch survives, the torn second does not");
    let problems = db.problems();
    assert!(problems.iter().any(|p| p.contains("torn record")), "{problems:?}");
    drop(db);
    // Truncation made the WAL clean: the next open has nothing to report.
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    assert!(db.problems().is_empty(), "{:?}", db.problems());
    assert_eq!(total_samples(&db), 30);
}

#[test]
fn corrupt_middle_wal_segment_is_quarantined() {
    let mut opts = Options::default();
    opts.wal.segment_size = 64 << 10;
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), &opts).unwrap();
    for k in 0..40 {
        db.write(&batch(&ramp(50, k * 100_000, 10, 1000))).unwrap();
    }
    drop(db);
    let mut segs: Vec<_> = fs::read_dir(dir.path().join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let mut data = fs::read(&segs[1]).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    fs::write(&segs[1], &data).unwrap();
    let db = Tsdb::open(dir.path(), &opts).unwrap();
    let problems = db.problems();
    assert!(problems.iter().any(|p| p.contains("quarantine")), "{problems:?}");
    assert_eq!(stat(&db, "telltale_storage_corrupt_files"), 1.0);
    let n = total_samples(&db);
    assert!(n > 0 && n < 40 * 500, "{n}");
    assert!(fs::read_dir(dir.path().join("quarantine")).unwrap().count() == 1);
    drop(db);
    let db = Tsdb::open(dir.path(), &opts).unwrap();
    assert_eq!(total_samples(&db), n, "what was served after quarantine is kept");
}

#[test]
fn corrupt_block_index_is_quarantined_and_the_rest_served() {
    let f = Fixture::new();
    f.write(&batch(&ramp(5, 0, 50, 1000))).unwrap();
    f.flush().unwrap();
    f.write(&batch(&ramp(5, 100_000, 5, 1000))).unwrap();
    let Fixture { db, dir } = f;
    drop(db);
    let block = fs::read_dir(dir.path().join("blocks")).unwrap().next().unwrap().unwrap().path();
    let index = block.join("index");
    let mut data = fs::read(&index).unwrap();
    data[20] ^= 0xff;
    fs::write(&index, &data).unwrap();
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    let problems = db.problems();
    assert!(
        problems.len() == 1 && problems[0].contains("checksum") && problems[0].contains("quarantine"),
        "{problems:?}"
    );
    assert_eq!(total_samples(&db), 25, "head data is still served");
    assert!(dir.path().join("quarantine").read_dir().unwrap().count() == 1);
}

#[test]
fn corrupt_chunk_page_is_found_on_read() {
    let f = Fixture::new();
    f.write(&batch(&ramp(5, 0, 50, 1000))).unwrap();
    f.flush().unwrap();
    let block = fs::read_dir(f.path().join("blocks")).unwrap().next().unwrap().unwrap().path();
    let chunks = block.join("chunks");
    let mut data = fs::read(&chunks).unwrap();
    let at = data.len() - 20;
    data[at] ^= 0x01;
    fs::write(&chunks, &data).unwrap();
    assert!(all(&f).is_empty());
    assert!(f.problems().iter().any(|p| p.contains("checksum")), "{:?}", f.problems());
    assert_eq!(stat(&f, "telltale_storage_blocks"), 0.0);
}

#[test]
fn out_of_order_window() {
    let opts = Options { out_of_order_window: Duration::from_secs(600), ..Options::default() };
    let f = Fixture::with(opts);
    let l = labels(&[("__name__", "ooo")]);
    let h = 3_600_000;
    f.write(&batch(&[(l.clone(), vec![Sample::new(h, 1.0)])])).unwrap();
    let s =
        f.write(&batch(&[(l.clone(), vec![Sample::new(h - 300_000, 2.0), Sample::new(h - 1_200_000, 3.0)])])).unwrap();
    assert_eq!((s.samples, s.rejected.out_of_order), (1, 1));
    let s = f.write(&batch(&[(l.clone(), vec![Sample::new(h - 300_000, 9.0)])])).unwrap();
    assert_eq!(s.rejected.duplicate_timestamp, 1);
    let got: Vec<_> = all(&f)[0].samples.iter().map(|s| (s.t, s.v)).collect();
    assert_eq!(got, [(h - 300_000, 2.0), (h, 1.0)]);
    // Out-of-order data survives a flush and a restart, and merges with later blocks.
    f.flush().unwrap();
    f.write(&batch(&[(l.clone(), vec![Sample::new(h - 100_000, 4.0)])])).unwrap();
    f.flush().unwrap();
    f.maintain(h).unwrap();
    let got: Vec<_> = all(&f)[0].samples.iter().map(|s| (s.t, s.v)).collect();
    assert_eq!(got, [(h - 300_000, 2.0), (h - 100_000, 4.0), (h, 1.0)]);
    assert_eq!(stat(&f, "telltale_storage_blocks"), 1.0, "overlapping blocks are merged");
}

#[test]
fn strict_window_zero_refuses_older_samples() {
    let opts = Options { out_of_order_window: Duration::ZERO, ..Options::default() };
    let f = Fixture::with(opts);
    let l = labels(&[("__name__", "x")]);
    f.write(&batch(&[(l.clone(), vec![Sample::new(100, 1.0)])])).unwrap();
    let s = f.write(&batch(&[(l.clone(), vec![Sample::new(99, 1.0)])])).unwrap();
    assert_eq!(s.rejected.out_of_order, 1);
    assert!(s.rejected.first.unwrap().contains("out-of-order window"));
}

/// Writes `hours` hours of one sample per minute for 3 series, calling maintain after each hour.
fn write_hours(db: &Tsdb, hours: i64) {
    write_hours_with(db, hours, |k| k as f64)
}

fn write_hours_with(db: &Tsdb, hours: i64, value: impl Fn(i64) -> f64) {
    for h in 0..hours {
        let mut b = WriteBatch::new();
        for i in 0..3 {
            let l = labels(&[("__name__", "m"), ("i", &i.to_string())]);
            let s: Vec<_> = (0..60).map(|m| Sample::new((h * 60 + m) * 60_000, value(h * 60 + m))).collect();
            b.push(l, &s);
        }
        db.write(&b).unwrap();
        db.maintain((h + 1) * 3_600_000).unwrap();
    }
}

#[test]
fn head_is_cut_into_blocks_and_compacted() {
    let opts = Options { block_duration: hours(1), retention_time: Duration::ZERO, ..Options::default() };
    let f = Fixture::with(opts);
    write_hours(&f, 24);
    let blocks = stat(&f, "telltale_storage_blocks");
    assert!(stat(&f, "telltale_storage_compactions_total") >= 2.0);
    assert!(blocks < 10.0, "{blocks} blocks");
    let got = all(&f);
    assert_eq!(got.len(), 3);
    for s in &got {
        assert_eq!(s.samples.len(), 24 * 60);
        assert!(s.samples.iter().enumerate().all(|(k, x)| x.t == k as i64 * 60_000 && x.v == k as f64));
    }
    let Fixture { db, dir } = f;
    drop(db);
    let db = Tsdb::open(dir.path(), &Options { block_duration: hours(1), ..Options::default() }).unwrap();
    assert_eq!(total_samples(&db), 3 * 24 * 60);
    assert!(db.problems().is_empty());
}

#[test]
fn retention_by_time_deletes_old_blocks() {
    let opts = Options { block_duration: hours(1), retention_time: hours(4), ..Options::default() };
    let f = Fixture::with(opts);
    write_hours(&f, 12);
    let oldest = all(&f).iter().map(|s| s.samples[0].t).min().unwrap();
    let newest = 12 * 3_600_000 - 60_000;
    assert!(oldest >= newest - 6 * 3_600_000, "oldest {oldest}");
    assert!(stat(&f, "telltale_storage_blocks_deleted_total") > 0.0);
    // Samples older than retention are refused.
    let s = f.write(&batch(&[(labels(&[("__name__", "m")]), vec![Sample::new(0, 1.0)])])).unwrap();
    assert_eq!(s.rejected.too_old, 1);
}

#[test]
fn retention_by_size_deletes_oldest_blocks() {
    let size = |db: &Tsdb| stat(db, "telltale_storage_blocks_bytes") + stat(db, "telltale_storage_wal_bytes");
    let opts = Options { block_duration: hours(1), retention_time: Duration::ZERO, ..Options::default() };
    let unlimited = Fixture::with(opts.clone());
    write_hours_with(&unlimited, 12, |k| (k as f64).sqrt());
    let limit = size(&unlimited) as u64 / 2;
    let f = Fixture::with(Options { retention_size: limit, ..opts });
    write_hours_with(&f, 12, |k| (k as f64).sqrt());
    assert!(size(&f) <= limit as f64, "{} > {limit}", size(&f));
    let newest = all(&f).iter().map(|s| s.samples.last().unwrap().t).max().unwrap();
    assert_eq!(newest, 12 * 3_600_000 - 60_000, "newest data kept");
    assert!(stat(&f, "telltale_storage_blocks_deleted_total") > 0.0);
}

#[test]
fn concurrent_writers_and_readers() {
    let f = Arc::new(Fixture::new());
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let f = f.clone();
            std::thread::spawn(move || {
                for k in 0..50i64 {
                    let mut b = WriteBatch::new();
                    for i in 0..20 {
                        // Writers share half their series, so they append to the same ones.
                        let l = labels(&[("__name__", "c"), ("s", &((i + w * 10) % 50).to_string())]);
                        b.push(l, &[Sample::new(k * 1000 + w as i64, 1.0)]);
                    }
                    let s = f.write(&b).unwrap();
                    assert_eq!(s.samples + s.rejected.total(), 20);
                    if k % 10 == 0 {
                        f.select(TimeRange::ALL, &[Matcher::equal("__name__", "c")]).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got = all(&f);
    assert_eq!(got.len(), 50);
    let total: usize = got.iter().map(|s| s.samples.len()).sum();
    assert!(got.iter().all(|s| s.samples.windows(2).all(|w| w[0].t < w[1].t)));
    // Every sample was stored (in order or inside the out-of-order window), nothing refused.
    assert_eq!(total, 4 * 50 * 20);
}

#[test]
fn conflicting_concurrent_writes_replay_to_the_same_head() {
    // Four writers race on the same series and timestamps with different values, while a
    // fifth thread flushes: each (series, time) reads back as exactly one value, every
    // refusal is counted, and a replay of the WAL (reopen without close) rebuilds exactly
    // what was read. (A second value for a time already moved to a block is taken as an
    // out-of-order sample, as Prometheus does, and reads keep one; so `stored` may exceed
    // the number of distinct samples.)
    let f = Arc::new(Fixture::new());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let f = f.clone();
            std::thread::spawn(move || {
                let mut stored = 0;
                for k in 0..200i64 {
                    let mut b = WriteBatch::new();
                    for i in 0..30 {
                        let l = labels(&[("__name__", "race"), ("s", &i.to_string())]);
                        b.push(l, &[Sample::new(1_000_000 + k * 1000, w as f64)]);
                    }
                    let s = f.write(&b).unwrap();
                    assert_eq!(s.samples + s.rejected.duplicate_timestamp, 30, "{s:?}");
                    stored += s.samples;
                }
                stored
            })
        })
        .collect();
    let flusher = {
        let f = f.clone();
        std::thread::spawn(move || {
            for _ in 0..5 {
                f.flush().unwrap();
            }
        })
    };
    let stored: usize = writers.into_iter().map(|t| t.join().unwrap()).sum();
    flusher.join().unwrap();
    assert!(stored >= 200 * 30, "every timestamp stored at least once");
    let before = all(&f);
    assert_eq!(before.iter().map(|s| s.samples.len()).sum::<usize>(), 200 * 30);
    let Fixture { db, dir } = Arc::into_inner(f).unwrap();
    drop(db); // no close: as if killed
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    let after = all(&db);
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a.labels, b.labels);
        assert!(a.samples.iter().zip(&b.samples).all(|(x, y)| x.bit_eq(y)), "{} differs after replay", a.labels);
    }
}

#[test]
fn options_must_be_sane() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { block_duration: Duration::ZERO, ..Options::default() };
    assert!(Tsdb::open(dir.path(), &opts).is_err());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A data directory written by format version 1 (never regenerate it) still reads the same.
#[test]
fn reads_format_v1_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/compat/v1"), dir.path());
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    assert!(db.problems().is_empty(), "{:?}", db.problems());
    let got = all(&db);
    let names: Vec<String> = got.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(names, [r#"compat_a{job="x"}"#, r#"compat_b{job="y"}"#, "compat_c"]);
    let a: Vec<Sample> = (1..=10).map(|i| Sample::new(i * 1000, i as f64 * 0.5)).collect();
    assert_eq!(got[0].samples, a);
    assert_eq!(got[1].samples[0], Sample::new(20_000, 42.0));
    assert_eq!(got[1].samples[1].v.to_bits(), STALE_NAN_BITS);
    let c: Vec<Sample> = (1..=10).map(|i| Sample::new(i * 1000, (i as f64).sqrt())).collect();
    assert!(got[2].samples.iter().zip(&c).all(|(x, y)| x.bit_eq(y)) && got[2].samples.len() == 10);
}

/// A full disk makes writes fail cleanly with "unavailable"; reads go on, and writes
/// resume once space returns, with every acknowledged sample kept.
#[test]
fn disk_full_fails_writes_cleanly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let _mount = telltale_testkit::Tmpfs::mount(dir.path(), "2m");
    let opts = Options {
        wal: telltale_tsdb::WalOptions { segment_size: 256 << 10, ..Default::default() },
        ..Options::default()
    };
    let db = Tsdb::open(dir.path(), &opts).unwrap();
    fs::write(dir.path().join("filler"), vec![1u8; 1 << 20]).unwrap();
    let mut acked = 0;
    let mut failure = None;
    for k in 0..10_000 {
        match db.write(&batch(&ramp(20, k * 100_000, 10, 1000))) {
            Ok(s) => acked += s.samples,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.expect("the disk fills up");
    assert_eq!(e.kind(), telltale_model::ErrorKind::Unavailable);
    assert!(e.to_string().contains("no space left on device"), "{e}");
    assert_eq!(total_samples(&db), acked, "reads work and hold exactly the acknowledged samples");
    fs::remove_file(dir.path().join("filler")).unwrap();
    let s = db.write(&batch(&ramp(20, 2_000_000_000, 10, 1000))).unwrap();
    acked += s.samples;
    drop(db);
    let db = Tsdb::open(dir.path(), &opts).unwrap();
    assert_eq!(total_samples(&db), acked);
    assert!(db.problems().is_empty(), "{:?}", db.problems());
}
