//! The log store across restarts, crashes, damaged files, retention and compaction.

use std::path::Path;
use std::time::Duration;

use telltale_logstore::{LogDb, Options, StreamRetention};
use telltale_model::{Labels, LineFilter, LogBatch, LogEntry, TimeRange};
use telltale_storage::{Direction, LogReader, LogSelect, LogWriter, Maintenance, Visit};

fn labels(job: &str) -> Labels {
    Labels::from_pairs([("job", job)]).unwrap()
}

fn batch(job: &str, from: i64, n: i64) -> LogBatch {
    let mut b = LogBatch::new();
    b.push(
        labels(job),
        (from..from + n).map(|i| {
            LogEntry::new(
                i * 1_000_000_000,
                format!("line {i} id={:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            )
        }),
    );
    b
}

fn lines(db: &LogDb, filters: &[LineFilter]) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let q =
        LogSelect { range: TimeRange::ALL, matchers: &[], filters, direction: Direction::Forward, skip_lines: false };
    db.select_logs(&q, &mut |l, r| {
        out.push((l.get("job").unwrap().to_string(), r.ts / 1_000_000_000));
        Visit::Continue
    })
    .unwrap();
    out
}

fn stat(db: &LogDb, name: &str) -> f64 {
    db.stats().iter().find(|s| s.name == name).map(|s| s.value).unwrap_or_else(|| panic!("no stat {name}"))
}

fn opts() -> Options {
    Options { block_lines: 50, compaction_target: 0, retention_time: Duration::ZERO, ..Options::default() }
}

#[test]
fn unflushed_lines_survive_a_restart_through_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = LogDb::open(dir.path(), &opts()).unwrap();
        db.write_logs(&batch("a", 0, 100)).unwrap();
        db.flush().unwrap();
        db.write_logs(&batch("a", 100, 50)).unwrap();
        db.write_logs(&batch("b", 0, 10)).unwrap();
        // No close, no flush: as after kill -9 (the WAL is in the page cache).
        std::mem::forget(db);
    }
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    let got = lines(&db, &[]);
    assert_eq!(got.len(), 160);
    assert!(db.problems().is_empty(), "{:?}", db.problems());
    // Flushing after the replay leaves no WAL segment behind that would replay twice.
    db.flush().unwrap();
    drop(db);
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    assert_eq!(lines(&db, &[]).len(), 160);
}

#[test]
fn a_torn_wal_tail_is_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = LogDb::open(dir.path(), &opts()).unwrap();
        db.write_logs(&batch("a", 0, 10)).unwrap();
        db.write_logs(&batch("a", 10, 10)).unwrap();
        std::mem::forget(db);
    }
    let wal = newest(&dir.path().join("wal"));
    let len = std::fs::metadata(&wal).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(len - 7).unwrap();
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    assert_eq!(lines(&db, &[]).len(), 10, "the first write is whole, the torn second is dropped");
    assert_eq!(db.problems().len(), 1);
    assert!(db.problems()[0].contains("truncated after a torn write"), "{:?}", db.problems());
}

fn newest(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    // The last is the empty segment the reopened store started; take the one with data.
    files.into_iter().rev().find(|p| std::fs::metadata(p).unwrap().len() > 8).unwrap()
}

#[test]
fn a_corrupt_segment_is_quarantined_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = LogDb::open(dir.path(), &opts()).unwrap();
        db.write_logs(&batch("a", 0, 100)).unwrap();
        db.flush().unwrap();
        db.write_logs(&batch("b", 0, 100)).unwrap();
        db.flush().unwrap();
    }
    let seg = dir.path().join("segments/0000000001.parquet");
    let mut data = std::fs::read(&seg).unwrap();
    let n = data.len();
    data[n - 20..].fill(0xff);
    std::fs::write(&seg, data).unwrap();
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    let got = lines(&db, &[]);
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|(j, _)| j == "b"));
    assert_eq!(stat(&db, "telltale_storage_corrupt_files"), 1.0);
    assert!(db.problems()[0].starts_with("log segment 0000000001 quarantined"), "{:?}", db.problems());
    assert!(dir.path().join("quarantine/segments-0000000001.parquet").is_file());
}

#[test]
fn a_corrupt_segment_index_is_quarantined_with_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = LogDb::open(dir.path(), &opts()).unwrap();
        db.write_logs(&batch("a", 0, 100)).unwrap();
        db.flush().unwrap();
        db.write_logs(&batch("b", 0, 100)).unwrap();
        db.flush().unwrap();
    }
    // One flipped bit in a bloom filter (they come first, after the 8-byte magic) would make
    // needle searches miss lines: the checksum must catch it.
    let idx = dir.path().join("segments/0000000002.idx");
    let mut data = std::fs::read(&idx).unwrap();
    data[9] ^= 0x10;
    std::fs::write(&idx, data).unwrap();
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    let got = lines(&db, &[]);
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|(j, _)| j == "a"));
    assert!(db.problems()[0].contains("checksum mismatch"), "{:?}", db.problems());
    assert!(dir.path().join("quarantine/segments-0000000002.idx").is_file());
    assert!(dir.path().join("quarantine/segments-0000000002.parquet").is_file());
}

#[test]
fn needle_search_reads_only_blocks_that_may_match() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    db.write_logs(&batch("a", 0, 5000)).unwrap();
    db.flush().unwrap();
    let id = format!("{:016x}", 4321u64.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let got = lines(&db, &[LineFilter::contains(id.as_str())]);
    assert_eq!(got, [("a".to_string(), 4321)]);
    // 100 blocks, one holds the needle; at 1.5 bits per n-gram a block without it passes with
    // probability 0.49^9 = 1.6e-3 (small blocks fill their 64-bit minimum unevenly), so one
    // more read is allowed, not more.
    let read = stat(&db, "telltale_logs_blocks_read_total");
    assert!((1.0..=2.0).contains(&read), "{read} of 100 blocks read");
    assert!(stat(&db, "telltale_logs_blocks_skipped_total") >= 98.0);
    // A needle piece shorter than the n-gram cannot use the index, but still finds its line.
    assert_eq!(lines(&db, &[LineFilter::contains("line 4321 ")]), [("a".to_string(), 4321)]);
}

/// Lines of jobs `a` and `b` sharing trace ids (each id on one line of each job), as
/// services of one trace log it.
fn traced(from: i64, n: i64) -> LogBatch {
    let mut b = LogBatch::new();
    for job in ["a", "b"] {
        b.push(
            labels(job),
            (from..from + n).map(|i| {
                let t = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                LogEntry::new(i * 1_000_000_000, format!("{job} {i} trace_id={t:016x}{:016x} ok", !t))
            }),
        );
    }
    b
}

#[test]
fn trace_ids_shared_by_streams_are_found_through_the_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    db.write_logs(&traced(0, 5000)).unwrap();
    db.flush().unwrap();
    let t = 1234u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let trace = format!("{t:016x}{:016x}", !t);
    let want = [("a".to_string(), 1234), ("b".to_string(), 1234)];
    assert_eq!(lines(&db, &[LineFilter::contains(trace.as_str())]), want);
    let read = stat(&db, "telltale_logs_blocks_read_total");
    // Blocks note the ids they use with a 6% false-positive rate.
    assert!(read <= 30.0, "200 blocks, 2 hold the trace id, {read} read");
    // A piece of the id, and the id with its key, find the same lines.
    assert_eq!(lines(&db, &[LineFilter::contains(&trace[5..25])]), want);
    assert_eq!(lines(&db, &[LineFilter::contains(format!("trace_id={trace} ok").as_str())]), want);
    // An id in no line reads no block.
    let before = stat(&db, "telltale_logs_blocks_read_total");
    assert!(lines(&db, &[LineFilter::contains("0123456789abcdef0123456789abcdef")]).is_empty());
    assert_eq!(stat(&db, "telltale_logs_blocks_read_total"), before);
}

#[test]
fn segments_of_text_lines_and_of_encoded_lines_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = LogDb::open(dir.path(), &Options { plain_lines: true, ..opts() }).unwrap();
        db.write_logs(&traced(0, 100)).unwrap();
        db.flush().unwrap();
    }
    let db = LogDb::open(dir.path(), &Options { compaction_target: 1 << 30, ..opts() }).unwrap();
    db.write_logs(&traced(100, 100)).unwrap();
    db.flush().unwrap();
    let all = lines(&db, &[]);
    assert_eq!(all.len(), 400);
    let t = 150u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let trace = format!("{t:016x}{:016x}", !t);
    assert_eq!(lines(&db, &[LineFilter::contains(trace.as_str())]).len(), 2);
    let t = 50u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let trace = format!("{t:016x}{:016x}", !t);
    assert_eq!(lines(&db, &[LineFilter::contains(trace.as_str())]).len(), 2);
}

#[test]
fn retention_by_time_size_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let now_ms = 1_000_000;
    let o = Options {
        retention_time: Duration::from_secs(500),
        retention_streams: vec![StreamRetention {
            selector: r#"{job="noisy"}"#.into(),
            period: Duration::from_secs(100),
        }],
        ..opts()
    };
    let db = LogDb::open(dir.path(), &o).unwrap();
    db.write_logs(&batch("old", 0, 10)).unwrap(); // 0-9s: past the 500s retention at t=1000s
    db.flush().unwrap();
    let mut b = batch("keep", 600, 10);
    b.extend(batch("noisy", 600, 10)); // 600-609s: older than 100s for noisy
    db.write_logs(&b).unwrap();
    db.flush().unwrap();
    db.write_logs(&batch("noisy", 950, 10)).unwrap();
    db.flush().unwrap();
    db.maintain(now_ms).unwrap();
    let got = lines(&db, &[]);
    let jobs: Vec<(&str, i64)> = got.iter().map(|(j, t)| (j.as_str(), *t)).collect();
    assert_eq!(jobs.len(), 20);
    assert!(jobs.iter().all(|(j, t)| (*j == "keep" && *t >= 600) || (*j == "noisy" && *t >= 950)), "{jobs:?}");
    // Size: keep at most one segment's worth.
    drop(db);
    let one = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    let o = Options { retention_size: one * 2 + 100, ..o };
    let db = LogDb::open(dir.path(), &o).unwrap();
    db.maintain(now_ms).unwrap();
    let got = lines(&db, &[]);
    assert_eq!(got.iter().filter(|(j, _)| j == "noisy").count(), 10, "the newest segment is kept: {got:?}");
}

#[test]
fn compaction_merges_small_segments_keeping_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { compaction_target: 64 << 20, ..opts() };
    let db = LogDb::open(dir.path(), &o).unwrap();
    for k in 0..6 {
        db.write_logs(&batch("a", k * 100, 100)).unwrap();
        db.write_logs(&batch("b", k * 100 + 50, 20)).unwrap();
        db.flush().unwrap();
    }
    assert_eq!(stat(&db, "telltale_logs_segments"), 6.0);
    db.maintain(0).unwrap();
    assert_eq!(stat(&db, "telltale_logs_segments"), 1.0);
    assert_eq!(stat(&db, "telltale_logs_compactions_total"), 1.0);
    let got = lines(&db, &[]);
    assert_eq!(got.len(), 720);
    let a: Vec<i64> = got.iter().filter(|(j, _)| j == "a").map(|(_, t)| *t).collect();
    assert_eq!(a, (0..600).collect::<Vec<_>>(), "stream a whole and in time order");
    drop(db);
    let db = LogDb::open(dir.path(), &o).unwrap();
    assert_eq!(lines(&db, &[]).len(), 720);
}

#[test]
fn compaction_merges_segments_that_overlap_in_time() {
    // Late lines: each flush holds even seconds, then odd ones of the same span arrive.
    let dir = tempfile::tempdir().unwrap();
    let o = Options { compaction_target: 64 << 20, ..opts() };
    let db = LogDb::open(dir.path(), &o).unwrap();
    for k in 0..4 {
        let mut b = LogBatch::new();
        let parity = k % 2;
        let from = (k / 2) * 200;
        b.push(labels("a"), (0..100).map(|i| LogEntry::new((from + 2 * i + parity) * 1_000_000_000, format!("l{i}"))));
        db.write_logs(&b).unwrap();
        db.flush().unwrap();
    }
    db.maintain(0).unwrap();
    assert_eq!(stat(&db, "telltale_logs_segments"), 1.0);
    let got: Vec<i64> = lines(&db, &[]).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, (0..400).collect::<Vec<_>>(), "every line once, in time order");
}

#[test]
fn a_full_head_is_frozen_for_the_flusher_and_writers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { head_max_bytes: 64 << 10, ..opts() };
    let db = LogDb::open(dir.path(), &o).unwrap();
    // Write until the head passes the limit: it is frozen (not written) and a new, empty head
    // takes the next batches.
    let mut k = 0;
    let mut before = 0.0;
    loop {
        db.write_logs(&batch("a", k * 200, 200)).unwrap();
        k += 1;
        let now = stat(&db, "telltale_logs_head_bytes");
        if now < before {
            break;
        }
        before = now;
    }
    assert_eq!(stat(&db, "telltale_logs_head_bytes"), 0.0, "the head was frozen after the write that filled it");
    db.write_logs(&batch("a", k * 200, 200)).unwrap();
    k += 1;
    assert_eq!(stat(&db, "telltale_logs_flushes_total"), 0.0, "the writer did not write a segment");
    assert!(stat(&db, "telltale_logs_head_bytes") > 0.0, "a new head took the last batch");
    assert_eq!(lines(&db, &[]).len() as i64, k * 200, "frozen lines are read while they wait");
    db.flush_pending().unwrap();
    assert_eq!(stat(&db, "telltale_logs_flushes_total"), 1.0);
    assert_eq!(stat(&db, "telltale_logs_segments"), 1.0);
    assert_eq!(lines(&db, &[]).len() as i64, k * 200);
    // Nothing pending: nothing to do.
    db.flush_pending().unwrap();
    assert_eq!(stat(&db, "telltale_logs_flushes_total"), 1.0);
    drop(db);
    let db = LogDb::open(dir.path(), &o).unwrap();
    assert_eq!(lines(&db, &[]).len() as i64, k * 200, "after a restart: the segment plus the WAL of the new head");
}

#[test]
fn big_heads_flush_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { head_max_bytes: 64 << 10, ..opts() };
    let db = LogDb::open(dir.path(), &o).unwrap();
    // No flusher runs here: a full head is frozen, and once the next head is 1.5 times the
    // limit the writer writes the frozen one itself and freezes the next (back-pressure).
    for k in 0..40 {
        db.write_logs(&batch("a", k * 200, 200)).unwrap();
    }
    assert!(stat(&db, "telltale_logs_flushes_total") >= 1.0);
    assert_eq!(lines(&db, &[]).len(), 8000);
}

#[test]
fn issue_7_concurrent_reads_of_one_segment_agree() {
    // Queries and compaction read the same segment at once; each read must see its own bytes
    // (reads through cloned file descriptors shared one offset and read each other's pages).
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(LogDb::open(dir.path(), &opts()).unwrap());
    for job in ["a", "b", "c", "d"] {
        db.write_logs(&batch(job, 0, 2_000)).unwrap();
    }
    db.flush().unwrap();
    let want = lines(&db, &[]);
    assert_eq!(want.len(), 8_000);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || (0..20).map(|_| lines(&db, &[])).collect::<Vec<_>>())
        })
        .collect();
    for r in readers {
        for got in r.join().unwrap() {
            assert!(got == want, "a concurrent read saw other lines");
        }
    }
}

/// Row `i`'s metadata: a level on every row, a host on some, a user on a few.
fn row_metadata(i: i64) -> Labels {
    let mut pairs = vec![("level", ["info", "warn", "error"][(i % 3) as usize].to_string())];
    if i % 4 != 0 {
        pairs.push(("host", format!("node-{}", i % 5)));
    }
    if i % 7 == 0 {
        pairs.push(("user", format!("u{i}")));
    }
    Labels::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap()
}

#[test]
fn metadata_comes_back_per_row_and_its_ids_name_equal_sets() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path(), &opts()).unwrap();
    let mut b = LogBatch::new();
    b.push(
        labels("a"),
        (0..500)
            .map(|i| LogEntry { metadata: row_metadata(i), ..LogEntry::new(i * 1_000_000_000, format!("line {i}")) }),
    );
    db.write_logs(&b).unwrap();
    db.flush().unwrap();
    let q = LogSelect {
        range: TimeRange::ALL,
        matchers: &[],
        filters: &[],
        direction: Direction::Forward,
        skip_lines: true,
    };
    let mut by_id: std::collections::HashMap<u64, Labels> = std::collections::HashMap::new();
    let mut rows = 0;
    db.select_logs(&q, &mut |_, r| {
        let i = r.ts / 1_000_000_000;
        let got = Labels::from_pairs(r.metadata.iter().copied()).unwrap();
        assert_eq!(got, row_metadata(i), "row {i}");
        if r.metadata_id != 0 {
            let seen = by_id.entry(r.metadata_id).or_insert_with(|| got.clone());
            assert_eq!(*seen, got, "row {i} shares id {} with other metadata", r.metadata_id);
        }
        rows += 1;
        Visit::Continue
    })
    .unwrap();
    assert_eq!(rows, 500);
    // 10 blocks of 50 rows; ids are given per block, so each set is named at least once in each.
    assert!(by_id.len() >= 10, "{} ids", by_id.len());
}

/// Six flushes in which stream `b` runs 300 s ahead of stream `a`, as when one shipper lags.
fn skewed(db: &LogDb) {
    for k in 0..6 {
        db.write_logs(&batch("a", k * 100, 100)).unwrap();
        db.write_logs(&batch("b", k * 100 + 300, 100)).unwrap();
        db.flush().unwrap();
    }
}

/// A store in `dir/db` holding `skewed` flushes, with a compaction target of a third of
/// their bytes (so idle compaction cuts three slices), and its options.
fn skewed_db(dir: &Path) -> (LogDb, Options) {
    let probe = LogDb::open(&dir.join("probe"), &opts()).unwrap();
    skewed(&probe);
    let flushed = stat(&probe, "telltale_logs_segment_bytes") as u64;
    let o = Options { compaction_target: flushed.div_ceil(3), ..opts() };
    let db = LogDb::open(&dir.join("db"), &o).unwrap();
    skewed(&db);
    (db, o)
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn idle_compaction_cuts_skewed_streams_into_time_slices() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = skewed_db(dir.path());
    assert_eq!(stat(&db, "telltale_logs_segments"), 6.0);
    assert!(stat(&db, "telltale_logs_compaction_pending") >= 2.0);
    db.compact_idle().unwrap();
    assert_eq!(stat(&db, "telltale_logs_compaction_pending"), 0.0);
    assert!((2.0..=4.0).contains(&stat(&db, "telltale_logs_segments")), "{}", stat(&db, "telltale_logs_segments"));
    let got = lines(&db, &[]);
    let times = |job: &str| got.iter().filter(|(j, _)| j == job).map(|(_, t)| *t).collect::<Vec<_>>();
    assert_eq!(times("a"), (0..600).collect::<Vec<_>>());
    assert_eq!(times("b"), (300..900).collect::<Vec<_>>());
    // Each segment holds one slice of time, of both streams: their time ranges follow each
    // other (merged in flush order, each would hold a's and b's lines 300 s apart).
    let mut ranges: Vec<(i64, i64)> = segment_files(&dir.path().join("db"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| time_range(p))
        .collect();
    ranges.sort();
    assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "{ranges:?}");
}

/// The first and last timestamp in a segment file.
fn time_range(path: &Path) -> (i64, i64) {
    use arrow_array::{Array, TimestampNanosecondArray};
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut ts = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch.column(0).as_any().downcast_ref::<TimestampNanosecondArray>().unwrap();
        ts.extend((0..col.len()).map(|i| col.value(i)));
    }
    (*ts.iter().min().unwrap(), *ts.iter().max().unwrap())
}

#[test]
fn a_merge_cut_short_by_a_crash_is_finished_or_undone_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (db, o) = skewed_db(dir.path());
    let path = dir.path().join("db");
    let inputs: Vec<(std::path::PathBuf, Vec<u8>)> =
        segment_files(&path).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    db.compact_idle().unwrap();
    drop(db);
    let outputs = segment_files(&path);
    assert!(outputs.len() >= 4, "two or more merged segments");
    let restore = || {
        for (p, bytes) in &inputs {
            std::fs::write(p, bytes).unwrap();
        }
    };
    // Every output written, the inputs not yet deleted: opening deletes the inputs.
    restore();
    let db = LogDb::open(&path, &o).unwrap();
    assert_eq!(lines(&db, &[]).len(), 1200, "every line once");
    drop(db);
    assert_eq!(segment_files(&path), outputs);
    // An output missing (the crash came while writing it): opening deletes the outputs.
    restore();
    let last_parquet = outputs.iter().rev().find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    std::fs::remove_file(last_parquet).unwrap();
    let db = LogDb::open(&path, &o).unwrap();
    assert_eq!(lines(&db, &[]).len(), 1200, "every line once");
    assert_eq!(stat(&db, "telltale_logs_segments"), 6.0, "back to the inputs");
}
