//! The trace store end to end on a temp dir: writes, reads by id across head and segments,
//! replay after a crash, corruption, search pruning, the catalogue, retention and compaction.

use std::fs;
use std::time::Duration;

use telltale_model::{
    AttrValue, KeyValue, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, SpanId, SpanKind, StatusCode, TraceId,
};
use telltale_tracestore::{Options, Search, TagScope, TraceDb};

const T0: i64 = 1_700_000_000_000_000_000;

fn tid(n: u64) -> TraceId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&n.wrapping_mul(0x9e3779b97f4a7c15).to_be_bytes());
    b[8..].copy_from_slice(&n.to_be_bytes());
    TraceId(b)
}

/// Trace `n`: a server span of `service` and two children, the second an error when `n % 5 == 0`.
fn trace(n: u64, service: &str) -> SpanBatch {
    let t = tid(n);
    let start = T0 + n as i64 * 1_000_000;
    let span = |i: u64, parent: u64, name: &str, kind, dur: i64| Span {
        trace_id: t,
        span_id: SpanId((n * 10 + i).to_be_bytes()),
        parent_span_id: if parent == 0 { SpanId::default() } else { SpanId((n * 10 + parent).to_be_bytes()) },
        name: name.into(),
        kind,
        start: start + i as i64 * 1000,
        end: start + i as i64 * 1000 + dur,
        attributes: vec![
            KeyValue::str("http.route", format!("/items/{}", n % 7)),
            KeyValue { key: "n".into(), value: AttrValue::Int(n as i64) },
        ],
        status: if i == 3 && n.is_multiple_of(5) { StatusCode::Error } else { StatusCode::Unset },
        ..Span::default()
    };
    SpanBatch {
        resources: vec![ResourceSpans {
            resource: vec![KeyValue::str("service.name", service), KeyValue::str("service.instance.id", "i-1")],
            scopes: vec![ScopeSpans {
                scope: Scope { name: "test".into(), version: "1".into(), ..Scope::default() },
                spans: vec![
                    span(1, 0, "GET /items", SpanKind::Server, 5_000_000 + n as i64),
                    span(2, 1, "SELECT items", SpanKind::Client, 1_000_000),
                    span(3, 1, "render", SpanKind::Internal, 2_000_000),
                ],
                schema_url: String::new(),
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn small() -> Options {
    Options { head_max_bytes: 64 << 10, block_spans: 64, compaction_target: 0, ..Options::default() }
}

#[test]
fn a_trace_reads_back_equal_from_the_head_from_segments_and_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = TraceDb::open(dir.path(), &small()).unwrap();
    for n in 0..2000 {
        db.write(&trace(n, if n % 2 == 0 { "api" } else { "web" }), 0).unwrap();
    }
    let stats = db.stats();
    assert!(stats.segments >= 2, "{stats:?}");
    assert!(stats.head_spans > 0, "{stats:?}");
    for n in [0, 1, 999, 1999] {
        let got = db.trace(&tid(n)).unwrap();
        assert_eq!(got.batch, trace(n, if n % 2 == 0 { "api" } else { "web" }), "trace {n}");
        assert!(!got.partial);
    }
    assert_eq!(db.trace(&tid(5000)).unwrap().batch.span_count(), 0);
    drop(db);
    // Reopening replays the WAL of the unflushed head and finds the segments.
    let db = TraceDb::open(dir.path(), &small()).unwrap();
    for n in [0, 1500, 1999] {
        assert_eq!(db.trace(&tid(n)).unwrap().batch.span_count(), 3, "trace {n}");
    }
    assert_eq!(db.stats().segment_spans + db.stats().head_spans, 6000);
}

#[test]
fn spans_of_one_trace_written_apart_come_back_together_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = TraceDb::open(dir.path(), &small()).unwrap();
    let whole = trace(7, "api");
    let mut first = whole.clone();
    first.resources[0].scopes[0].spans.truncate(1);
    let mut rest = whole.clone();
    rest.resources[0].scopes[0].spans.remove(0);
    db.write(&first, 0).unwrap();
    db.flush_now().unwrap();
    db.write(&rest, 0).unwrap();
    // A retried request repeats spans; a read returns each once.
    db.write(&first, 0).unwrap();
    assert_eq!(db.trace(&tid(7)).unwrap().batch, whole);
}

#[test]
fn a_huge_trace_is_stored_and_its_read_is_marked_partial() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { max_spans_per_trace: 100, ..small() };
    let db = TraceDb::open(dir.path(), &opts).unwrap();
    for k in 0..50 {
        let mut b = trace(1, "api");
        for (i, s) in b.resources[0].scopes[0].spans.iter_mut().enumerate() {
            s.span_id = SpanId((1000 + k * 3 + i as u64).to_be_bytes());
        }
        db.write(&b, 0).unwrap();
    }
    db.flush_now().unwrap();
    let got = db.trace(&tid(1)).unwrap();
    assert!(got.partial);
    assert_eq!(got.batch.span_count(), 100);
}

#[test]
fn search_prunes_by_service_name_duration_error_and_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let db = TraceDb::open(dir.path(), &small()).unwrap();
    for n in 0..600 {
        db.write(&trace(n, ["api", "web", "db"][n as usize % 3]), 0).unwrap();
    }
    let ids = |q: Search| {
        let mut v = Vec::new();
        db.search(&q, &mut |id, _| {
            v.push(id);
            true
        })
        .unwrap();
        v.sort();
        v
    };
    let expect = |f: &dyn Fn(u64) -> bool| {
        let mut v: Vec<_> = (0..600).filter(|n| f(*n)).map(tid).collect();
        v.sort();
        v
    };
    assert_eq!(ids(Search::default()).len(), 600);
    assert_eq!(ids(Search { services: vec!["web".into()], ..Search::default() }), expect(&|n| n % 3 == 1));
    assert_eq!(ids(Search { error_only: true, ..Search::default() }), expect(&|n| n % 5 == 0));
    assert_eq!(
        ids(Search { attrs: vec![("http.route".into(), "/items/3".into())], ..Search::default() }),
        expect(&|n| n % 7 == 3)
    );
    assert_eq!(ids(Search { min_duration: 5_000_590, ..Search::default() }), expect(&|n| n >= 590));
    assert_eq!(ids(Search { names: vec!["nope".into()], ..Search::default() }), Vec::<TraceId>::new());
    // Traces overlapping the range: trace 95 runs from 95 ms to past 100 ms.
    let (start, end) = (T0 + 100 * 1_000_000, T0 + 200 * 1_000_000);
    assert_eq!(ids(Search { start, end, ..Search::default() }), expect(&|n| (95..200).contains(&n)));
    // Stopping early stops.
    let mut seen = 0;
    db.search(&Search::default(), &mut |_, _| {
        seen += 1;
        seen < 10
    })
    .unwrap();
    assert_eq!(seen, 10);
}

#[test]
fn the_catalogue_lists_services_operations_and_attribute_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = TraceDb::open(dir.path(), &small()).unwrap();
    for n in 0..300 {
        db.write(&trace(n, ["api", "web"][n as usize % 2]), 0).unwrap();
    }
    assert_eq!(db.services(), ["api", "web"]);
    let ops = db.operations(Some("api"));
    assert_eq!(ops.len(), 3);
    assert!(ops.contains(&("api".into(), "GET /items".into(), SpanKind::Server)));
    assert!(db.tag_names().contains(&(TagScope::Span, "http.route".into())));
    assert!(db.tag_names().contains(&(TagScope::Resource, "service.instance.id".into())));
    assert_eq!(db.tag_values(Some(TagScope::Span), "http.route").len(), 7);
    assert_eq!(db.tag_values(None, "service.name"), ["api", "web"]);
}

#[test]
fn a_torn_wal_keeps_its_good_prefix_and_a_corrupt_segment_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = TraceDb::open(dir.path(), &small()).unwrap();
        for n in 0..300 {
            db.write(&trace(n, "api"), 0).unwrap();
        }
        assert!(db.stats().segments >= 1);
    }
    // Tear the last WAL record and break one segment's footer.
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = fs::read_dir(&wal).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    let last = segs.iter().rev().find(|p| fs::metadata(p).unwrap().len() > 100).unwrap().clone();
    let len = fs::metadata(&last).unwrap().len();
    fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(len - 10).unwrap();
    let mut files: Vec<_> = fs::read_dir(dir.path().join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let broken = files[0].clone();
    let mut data = fs::read(&broken).unwrap();
    let n = data.len();
    data[n - 20] ^= 0xff;
    fs::write(&broken, data).unwrap();

    let db = TraceDb::open(dir.path(), &small()).unwrap();
    assert_eq!(db.quarantined(), [broken.display().to_string()]);
    assert!(dir.path().join("quarantine").join(broken.file_name().unwrap()).is_file());
    // Traces of the torn record are gone, the rest readable; writing goes on.
    assert_eq!(db.trace(&tid(299)).unwrap().batch.span_count(), 0);
    assert_eq!(db.trace(&tid(298)).unwrap().batch.span_count(), 3);
    db.write(&trace(299, "api"), 0).unwrap();
    assert_eq!(db.trace(&tid(299)).unwrap().batch.span_count(), 3);
}

#[test]
fn retention_deletes_old_segments_and_compaction_joins_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { compaction_target: 64 << 20, ..small() };
    let db = TraceDb::open(dir.path(), &opts).unwrap();
    for n in 0..1000 {
        db.write(&trace(n, "api"), 0).unwrap();
    }
    db.flush_now().unwrap();
    let before = db.stats();
    assert!(before.segments >= 3, "{before:?}");
    assert!(db.compact().unwrap());
    let after = db.stats();
    assert_eq!(after.segments, 1);
    assert_eq!(after.segment_spans, 3000);
    for n in [0, 500, 999] {
        assert_eq!(db.trace(&tid(n)).unwrap().batch, trace(n, "api"));
    }
    assert_eq!(db.services(), ["api"]);
    drop(db);
    let opts = Options { retention_time: Duration::from_secs(3600), ..opts };
    let db = TraceDb::open(dir.path(), &opts).unwrap();
    assert_eq!(db.stats().segment_spans, 3000);
    // An hour and a bit after the newest span, everything is past retention.
    db.maintain(T0 / 1_000_000 + 3_700_000).unwrap();
    assert_eq!(db.stats().segments, 0);
    assert_eq!(db.trace(&tid(1)).unwrap().batch.span_count(), 0);
}

#[test]
fn bad_options_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = TraceDb::open(dir.path(), &Options { block_spans: 1, ..Options::default() }).unwrap_err();
    assert_eq!(err.to_string(), "invalid trace store options: block_spans must be at least 16");
}

#[test]
fn tail_sampling_keeps_errors_slow_traces_and_a_share_of_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = telltale_tracestore::Sampling {
        enabled: true,
        keep_errors: true,
        keep_slower_than: Duration::from_nanos(5_000_950),
        keep_percent: 20.0,
    };
    let db = TraceDb::open(dir.path(), &Options { sampling, head_max_bytes: 4 << 20, ..small() }).unwrap();
    for n in 0..2000 {
        db.write(&trace(n, "api"), 0).unwrap();
    }
    // Before the head is written out, every span is readable.
    db.flush_now().unwrap();
    let kept: Vec<u64> = (0..2000).filter(|n| db.trace(&tid(*n)).unwrap().batch.span_count() == 3).collect();
    // Every error trace (n % 5 == 0) and every slow one (the server span lasts 5 ms + n ns, so
    // n >= 950) is kept; about a fifth of the others.
    assert!((0..2000).filter(|n| n % 5 == 0 || *n >= 950).all(|n| kept.contains(&n)));
    let others = kept.iter().filter(|n| *n % 5 != 0 && **n < 950).count();
    assert!((120..=220).contains(&others), "{others} of 760 other traces kept");
    assert_eq!(db.stats().sampled_out_spans as usize, 3 * (2000 - kept.len()));
    // No trace is kept in part.
    assert!((0..2000).all(|n| [0, 3].contains(&db.trace(&tid(n)).unwrap().batch.span_count())));
}
