//! The one suite every [`LogStore`](crate::LogStore) passes. Use it from a store's tests
//! with `telltale_storage::log_conformance!(make_store())`, where the expression yields
//! anything that dereferences to a fresh store. Cases call [`Maintenance::flush`] between
//! writes, so a store with on-disk segments is read across head and segments.

use telltale_model::{FilterOp, Labels, LineFilter, LogBatch, LogEntry, MatchOp, Matcher, TimeRange};

use crate::logs::{Direction, LogSelect, Visit};
use crate::LogStore;

/// Expands to one `#[test]` per case of the suite, each on a fresh store from `$make`.
#[macro_export]
macro_rules! log_conformance {
    ($make:expr) => {
        $crate::log_conformance!(@cases $make;
            logs_read_back_exactly, logs_out_of_order_come_back_sorted, logs_range_is_inclusive,
            logs_matchers_select_streams, logs_line_filters, logs_direction_and_early_stop,
            logs_duplicates_are_dropped, logs_labels_values_and_stats, logs_many_lines_across_flushes,
            logs_empty_results);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let fixture = $make;
                $crate::logconformance::$case(&*fixture);
            }
        )*
    };
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).expect("valid test labels")
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).expect("valid test matcher")
}

fn entry(ts: i64, line: &str, meta: &[(&str, &str)]) -> LogEntry {
    LogEntry { ts, line: line.to_string(), metadata: labels(meta) }
}

fn write(store: &dyn LogStore, streams: &[(Labels, Vec<LogEntry>)]) {
    let mut b = LogBatch::new();
    for (l, e) in streams {
        b.push(l.clone(), e.iter().cloned());
    }
    let stats = store.write_logs(&b).expect("write");
    assert_eq!(stats.entries, b.entry_count(), "{stats:?}");
}

type Row = (String, i64, String, Vec<(String, String)>);

fn read_with(store: &dyn LogStore, q: &LogSelect<'_>) -> Vec<Row> {
    let mut out = Vec::new();
    store
        .select_logs(q, &mut |l, r| {
            let meta = r.metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            out.push((l.to_string(), r.ts, r.line.to_string(), meta));
            Visit::Continue
        })
        .expect("select");
    out
}

fn read(store: &dyn LogStore, range: TimeRange, ms: &[Matcher], fs: &[LineFilter]) -> Vec<Row> {
    read_with(store, &LogSelect { range, matchers: ms, filters: fs, direction: Direction::Forward, skip_lines: false })
}

fn lines(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.2.as_str()).collect()
}

/// Lines, timestamps and structured metadata come back exactly, streams in label order,
/// including lines written before a flush and after it.
pub fn logs_read_back_exactly(store: &dyn LogStore) {
    let a = labels(&[("job", "api"), ("level", "info")]);
    let b = labels(&[("job", "api"), ("level", "error")]);
    write(
        store,
        &[
            (
                a.clone(),
                vec![entry(1_000, "GET /a 200", &[]), entry(2_000, "ünïcödé ✓ \"quoted\"", &[("trace_id", "abc")])],
            ),
            (b.clone(), vec![entry(1_500, "boom", &[("span_id", "1"), ("trace_id", "x")]), entry(1_600, "", &[])]),
        ],
    );
    store.flush().expect("flush");
    write(store, &[(a.clone(), vec![entry(3_000, "GET /b 500", &[])])]);
    let got = read(store, TimeRange::ALL, &[], &[]);
    let want: Vec<Row> = vec![
        (b.to_string(), 1_500, "boom".into(), vec![("span_id".into(), "1".into()), ("trace_id".into(), "x".into())]),
        (b.to_string(), 1_600, "".into(), vec![]),
        (a.to_string(), 1_000, "GET /a 200".into(), vec![]),
        (a.to_string(), 2_000, "ünïcödé ✓ \"quoted\"".into(), vec![("trace_id".into(), "abc".into())]),
        (a.to_string(), 3_000, "GET /b 500".into(), vec![]),
    ];
    assert_eq!(got, want);
}

/// Entries of a stream written out of time order, across writes and flushes, are read in
/// time order; equal timestamps keep their write order.
pub fn logs_out_of_order_come_back_sorted(store: &dyn LogStore) {
    let a = labels(&[("job", "x")]);
    write(store, &[(a.clone(), vec![entry(50, "e", &[]), entry(10, "a", &[]), entry(30, "c", &[])])]);
    store.flush().expect("flush");
    write(store, &[(a.clone(), vec![entry(20, "b", &[]), entry(30, "c2", &[]), entry(60, "f", &[])])]);
    store.flush().expect("flush");
    write(store, &[(a.clone(), vec![entry(40, "d", &[]), entry(5, "0", &[])])]);
    let got = read(store, TimeRange::ALL, &[], &[]);
    assert_eq!(lines(&got), ["0", "a", "b", "c", "c2", "d", "e", "f"]);
    let back = read_with(
        store,
        &LogSelect {
            range: TimeRange::ALL,
            matchers: &[],
            filters: &[],
            direction: Direction::Backward,
            skip_lines: false,
        },
    );
    assert_eq!(lines(&back), ["f", "e", "d", "c2", "c", "b", "a", "0"]);
}

/// Both ends of the range are included.
pub fn logs_range_is_inclusive(store: &dyn LogStore) {
    let a = labels(&[("job", "x")]);
    write(store, &[(a, (0..10).map(|i| entry(i * 10, &format!("l{i}"), &[])).collect())]);
    store.flush().expect("flush");
    assert_eq!(lines(&read(store, TimeRange::new(20, 50), &[], &[])), ["l2", "l3", "l4", "l5"]);
    assert!(read(store, TimeRange::new(91, 200), &[], &[]).is_empty());
    assert!(read(store, TimeRange::new(-100, -1), &[], &[]).is_empty());
}

/// Every matcher kind narrows the streams; a missing label matches as empty.
pub fn logs_matchers_select_streams(store: &dyn LogStore) {
    let s = |job: &str, env: Option<&str>| {
        let mut p = vec![("job", job)];
        if let Some(e) = env {
            p.push(("env", e));
        }
        (labels(&p), vec![entry(1, &format!("{job}-{}", env.unwrap_or("none")), &[])])
    };
    write(store, &[s("node", Some("prod")), s("node", None), s("api", Some("dev")), s("db", None)]);
    store.flush().expect("flush");
    let r = TimeRange::ALL;
    let count = |ms: &[Matcher]| read(store, r, ms, &[]).len();
    assert_eq!(count(&[m(MatchOp::Equal, "job", "node")]), 2);
    assert_eq!(count(&[m(MatchOp::NotEqual, "job", "node")]), 2);
    assert_eq!(count(&[m(MatchOp::Regex, "job", "node|api")]), 3);
    assert_eq!(count(&[m(MatchOp::NotRegex, "job", "n.*|a.*")]), 1);
    assert_eq!(count(&[m(MatchOp::Equal, "env", "")]), 2);
    assert_eq!(count(&[m(MatchOp::Regex, "env", ".+"), m(MatchOp::Equal, "job", "api")]), 1);
    assert_eq!(lines(&read(store, r, &[m(MatchOp::NotEqual, "env", "")], &[])), ["api-dev", "node-prod"]);
}

/// Line filters are applied exactly, all of them, whether the lines sit in the head or in
/// flushed blocks.
pub fn logs_line_filters(store: &dyn LogStore) {
    let a = labels(&[("job", "x")]);
    let text = [
        "level=info msg=\"all good\" rid=3fa2c9e1b2d40a77",
        "level=error msg=\"certificate has expired\" rid=0000aaaa1111bbbb",
        "level=warn msg=\"disk quota exceeded\" rid=ffffeeee00001111",
        "level=info msg=\"GET /wp-login.php\" rid=1234567890abcdef",
    ];
    write(store, &[(a.clone(), text[..2].iter().enumerate().map(|(i, l)| entry(i as i64, l, &[])).collect())]);
    store.flush().expect("flush");
    write(store, &[(a, text[2..].iter().enumerate().map(|(i, l)| entry(2 + i as i64, l, &[])).collect())]);
    let f = |op, v: &str| LineFilter::new(op, v).expect("valid filter");
    let r = TimeRange::ALL;
    let got = |fs: &[LineFilter]| read(store, r, &[], fs).iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(got(&[f(FilterOp::Contains, "3fa2c9e1b2d40a77")]), [0]);
    assert_eq!(got(&[f(FilterOp::Contains, "a2c9e1b2")]), [0], "a needle inside a token");
    assert_eq!(got(&[f(FilterOp::Contains, "ffffeeee00001111")]), [2]);
    assert_eq!(got(&[f(FilterOp::Contains, "certificate has expired")]), [1]);
    assert_eq!(got(&[f(FilterOp::Contains, "ertificate has exp")]), [1]);
    assert_eq!(got(&[f(FilterOp::Contains, "nowhere-to-be-found")]), Vec::<i64>::new());
    assert_eq!(got(&[f(FilterOp::NotContains, "level=info")]), [1, 2]);
    assert_eq!(got(&[f(FilterOp::Regex, "rid=[0-9]{4}")]), [1, 3]);
    assert_eq!(got(&[f(FilterOp::NotRegex, "(?i)LEVEL=INFO")]), [1, 2]);
    assert_eq!(
        got(&[f(FilterOp::Contains, "level="), f(FilterOp::NotContains, "disk"), f(FilterOp::Regex, "ff|bb")]),
        [1]
    );
}

/// Backward order, and a visitor that stops a stream or the whole scan early.
pub fn logs_direction_and_early_stop(store: &dyn LogStore) {
    let a = labels(&[("job", "a")]);
    let b = labels(&[("job", "b")]);
    write(
        store,
        &[
            (a.clone(), (0..5).map(|i| entry(i, &format!("a{i}"), &[])).collect()),
            (b.clone(), (0..5).map(|i| entry(i, &format!("b{i}"), &[])).collect()),
        ],
    );
    store.flush().expect("flush");
    let q = LogSelect {
        range: TimeRange::ALL,
        matchers: &[],
        filters: &[],
        direction: Direction::Backward,
        skip_lines: false,
    };
    let mut seen = Vec::new();
    store
        .select_logs(&q, &mut |_, r| {
            seen.push(r.line.to_string());
            if seen.len() % 2 == 0 {
                Visit::NextStream
            } else {
                Visit::Continue
            }
        })
        .unwrap();
    assert_eq!(seen, ["a4", "a3", "b4", "b3"]);
    let mut seen = Vec::new();
    let q = LogSelect { direction: Direction::Forward, ..q };
    store
        .select_logs(&q, &mut |_, r| {
            seen.push(r.line.to_string());
            Visit::Stop
        })
        .unwrap();
    assert_eq!(seen, ["a0"]);
}

/// The same stream, timestamp and line written again is dropped and counted.
pub fn logs_duplicates_are_dropped(store: &dyn LogStore) {
    let a = labels(&[("job", "a")]);
    write(store, &[(a.clone(), vec![entry(1, "x", &[]), entry(2, "y", &[])])]);
    let mut b = LogBatch::new();
    b.push(a.clone(), [entry(2, "y", &[]), entry(2, "y2", &[]), entry(3, "z", &[])]);
    let stats = store.write_logs(&b).unwrap();
    assert_eq!((stats.entries, stats.duplicates, stats.new_streams), (2, 1, 0));
    assert_eq!(lines(&read(store, TimeRange::ALL, &[], &[])), ["x", "y", "y2", "z"]);
}

/// Streams, label names and values honour matchers and time; stats count what is there.
pub fn logs_labels_values_and_stats(store: &dyn LogStore) {
    write(
        store,
        &[
            (labels(&[("job", "node"), ("zone", "a")]), vec![entry(10, "12345", &[])]),
            (labels(&[("job", "api")]), vec![entry(20, "123", &[]), entry(30, "1", &[])]),
        ],
    );
    store.flush().expect("flush");
    write(store, &[(labels(&[("job", "late")]), vec![entry(10_000, "late", &[])])]);
    let all = TimeRange::ALL;
    assert_eq!(store.log_label_names(all, &[]).unwrap(), ["job", "zone"]);
    assert_eq!(store.log_label_values("job", all, &[]).unwrap(), ["api", "late", "node"]);
    assert_eq!(store.log_label_values("job", TimeRange::new(0, 100), &[]).unwrap(), ["api", "node"]);
    let api = [Matcher::equal("job", "api")];
    assert_eq!(store.log_label_names(all, &api).unwrap(), ["job"]);
    let streams: Vec<String> = store.log_streams(all, &[]).unwrap().iter().map(|l| l.to_string()).collect();
    assert_eq!(streams, [r#"{job="api"}"#, r#"{job="late"}"#, r#"{job="node", zone="a"}"#]);
    let s = store.log_stats(TimeRange::new(0, 100), &[]).unwrap();
    assert_eq!((s.streams, s.entries, s.bytes), (2, 3, 9));
    assert!(s.chunks >= 2, "{s:?}");
    let s = store.log_stats(all, &api).unwrap();
    assert_eq!((s.streams, s.entries, s.bytes), (1, 2, 4));
}

/// Tens of thousands of lines over many streams and several flushes: every line comes back
/// once, in order, and a needle finds exactly its line.
pub fn logs_many_lines_across_flushes(store: &dyn LogStore) {
    let streams: Vec<Labels> = (0..20).map(|i| labels(&[("job", "load"), ("pod", &format!("p{i:02}"))])).collect();
    let mut n = 0i64;
    for round in 0..4 {
        let mut b = LogBatch::new();
        for (s, l) in streams.iter().enumerate() {
            let entries = (0..600).map(|k| {
                let ts = 1_000_000 + (round * 600 + k) * 1_000 + s as i64;
                n += 1;
                let id = (ts as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                entry(ts, &format!("round={round} k={k} id={id:016x} msg=\"request handled\""), &[])
            });
            b.push(l.clone(), entries.collect::<Vec<_>>());
        }
        store.write_logs(&b).unwrap();
        store.flush().expect("flush");
    }
    let rows = read(store, TimeRange::ALL, &[], &[]);
    assert_eq!(rows.len() as i64, n);
    for w in rows.windows(2) {
        assert!(w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1), "order: {w:?}");
    }
    let ts = 1_000_000 + (2 * 600 + 77) * 1_000 + 13;
    let id = format!("{:016x}", (ts as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let hit = read(store, TimeRange::ALL, &[], &[LineFilter::contains(id.as_str())]);
    assert_eq!(hit.len(), 1);
    assert_eq!((hit[0].1, hit[0].0.as_str()), (ts, r#"{job="load", pod="p13"}"#));
    let s = store.log_stats(TimeRange::ALL, &[]).unwrap();
    assert_eq!((s.streams, s.entries), (20, n as u64));
}

/// An empty store, or matchers nothing satisfies, give empty results.
pub fn logs_empty_results(store: &dyn LogStore) {
    assert!(read(store, TimeRange::ALL, &[], &[]).is_empty());
    assert!(store.log_streams(TimeRange::ALL, &[]).unwrap().is_empty());
    assert!(store.log_label_names(TimeRange::ALL, &[]).unwrap().is_empty());
    assert_eq!(store.log_stats(TimeRange::ALL, &[]).unwrap(), Default::default());
    assert_eq!(store.write_logs(&LogBatch::new()).unwrap().entries, 0);
    write(store, &[(labels(&[("job", "a")]), vec![entry(1, "x", &[])])]);
    assert!(read(store, TimeRange::ALL, &[Matcher::equal("job", "b")], &[]).is_empty());
}
