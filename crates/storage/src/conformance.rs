//! The one suite every [`MetricStore`](crate::MetricStore) passes. Use it from a store's
//! tests with `telltale_storage::storage_conformance!(make_store())`, where the
//! expression yields anything that dereferences to a fresh store: a `Box<Store>`, or a
//! fixture that also holds its temporary directory.

use telltale_model::{Labels, MatchOp, Matcher, Sample, TimeRange, WriteBatch, STALE_NAN_BITS};

use crate::MetricStore;

/// Expands to one `#[test]` per case of the suite, each on a fresh store from `$make`.
#[macro_export]
macro_rules! storage_conformance {
    ($make:expr) => {
        $crate::storage_conformance!(@cases $make;
            writes_then_reads_every_sample, range_is_inclusive, matchers_select_series,
            missing_label_matches_empty, special_floats_keep_their_bits,
            duplicate_timestamps, labels_and_values, many_series_sorted, empty_results);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let fixture = $make;
                $crate::conformance::$case(&*fixture);
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

fn write(store: &dyn MetricStore, series: &[(Labels, Vec<Sample>)]) {
    let mut b = WriteBatch::new();
    for (l, s) in series {
        b.push(l.clone(), s);
    }
    let stats = store.write(&b).expect("write");
    assert_eq!(stats.rejected.total(), 0, "{:?}", stats.rejected);
}

fn ramp(from: i64, n: i64, step: i64) -> Vec<Sample> {
    (0..n).map(|i| Sample::new(from + i * step, i as f64 * 1.5)).collect()
}

fn names(store: &dyn MetricStore, range: TimeRange, ms: &[Matcher]) -> Vec<String> {
    store.series(range, ms).expect("series").iter().map(|l| l.to_string()).collect()
}

/// Samples come back exactly as written, across several writes to the same series.
pub fn writes_then_reads_every_sample(store: &dyn MetricStore) {
    let a = labels(&[("__name__", "up"), ("job", "node")]);
    let all = ramp(1_000, 500, 15_000);
    write(store, &[(a.clone(), all[..200].to_vec())]);
    write(store, &[(a.clone(), all[200..].to_vec())]);
    let got = store.select(TimeRange::ALL, &[Matcher::equal("__name__", "up")]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, a);
    assert!(got[0].samples.iter().zip(&all).all(|(g, w)| g.bit_eq(w)) && got[0].samples.len() == all.len());
}

/// Both ends of a range are included, and samples outside are not returned.
pub fn range_is_inclusive(store: &dyn MetricStore) {
    let a = labels(&[("__name__", "x")]);
    write(store, &[(a, ramp(0, 10, 10))]);
    let got = store.select(TimeRange::new(20, 50), &[]).unwrap();
    let ts: Vec<_> = got[0].samples.iter().map(|s| s.t).collect();
    assert_eq!(ts, [20, 30, 40, 50]);
    assert!(store.select(TimeRange::new(91, 200), &[]).unwrap().is_empty());
    assert!(store.select(TimeRange::new(-100, -1), &[]).unwrap().is_empty());
}

/// Every matcher kind narrows the result, and all matchers must hold.
pub fn matchers_select_series(store: &dyn MetricStore) {
    let s = |job: &str, inst: &str| (labels(&[("__name__", "up"), ("job", job), ("instance", inst)]), ramp(0, 3, 10));
    write(store, &[s("node", "a"), s("node", "b"), s("api", "a"), s("db", "c")]);
    let r = TimeRange::ALL;
    assert_eq!(names(store, r, &[m(MatchOp::Equal, "job", "node")]).len(), 2);
    assert_eq!(names(store, r, &[m(MatchOp::NotEqual, "job", "node")]).len(), 2);
    assert_eq!(names(store, r, &[m(MatchOp::Regex, "job", "node|api")]).len(), 3);
    assert_eq!(names(store, r, &[m(MatchOp::Regex, "job", "no.*")]).len(), 2);
    assert_eq!(names(store, r, &[m(MatchOp::NotRegex, "job", "n.*|a.*")]).len(), 1);
    assert_eq!(
        names(store, r, &[m(MatchOp::Equal, "job", "node"), m(MatchOp::Equal, "instance", "b")]),
        [r#"up{instance="b", job="node"}"#]
    );
    assert!(names(store, r, &[m(MatchOp::Equal, "job", "nope")]).is_empty());
    assert_eq!(store.select(r, &[m(MatchOp::Regex, "instance", "a")]).unwrap().len(), 2);
}

/// A label a series lacks matches as the empty string, as in Prometheus.
pub fn missing_label_matches_empty(store: &dyn MetricStore) {
    write(
        store,
        &[
            (labels(&[("__name__", "a"), ("env", "prod")]), ramp(0, 2, 10)),
            (labels(&[("__name__", "b")]), ramp(0, 2, 10)),
        ],
    );
    let r = TimeRange::ALL;
    assert_eq!(names(store, r, &[m(MatchOp::Equal, "env", "")]), ["b"]);
    assert_eq!(names(store, r, &[m(MatchOp::NotEqual, "env", "")]), [r#"a{env="prod"}"#]);
    assert_eq!(names(store, r, &[m(MatchOp::Regex, "env", "prod|")]).len(), 2);
    assert_eq!(names(store, r, &[m(MatchOp::NotRegex, "env", ".+")]), ["b"]);
}

/// NaN, infinities, negative zero and the stale marker are stored bit for bit.
pub fn special_floats_keep_their_bits(store: &dyn MetricStore) {
    let values = [
        0.0,
        -0.0,
        f64::NAN,
        f64::from_bits(STALE_NAN_BITS),
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
        1e-300,
        0.1 + 0.2,
    ];
    let samples: Vec<_> = values.iter().enumerate().map(|(i, v)| Sample::new(i as i64 * 1000, *v)).collect();
    write(store, &[(labels(&[("__name__", "f")]), samples.clone())]);
    let got = &store.select(TimeRange::ALL, &[]).unwrap()[0].samples;
    assert_eq!(got.len(), samples.len());
    for (g, w) in got.iter().zip(&samples) {
        assert!(g.bit_eq(w), "{g:?} != {w:?}");
    }
}

/// Rewriting a sample with the same value is a no-op; another value at the same time is refused.
pub fn duplicate_timestamps(store: &dyn MetricStore) {
    let a = labels(&[("__name__", "d")]);
    write(store, &[(a.clone(), ramp(0, 3, 10))]);
    let mut b = WriteBatch::new();
    b.push(a.clone(), &[Sample::new(20, 3.0)]);
    let stats = store.write(&b).unwrap();
    assert_eq!((stats.samples, stats.rejected.total()), (0, 0));
    let mut b = WriteBatch::new();
    b.push(a.clone(), &[Sample::new(20, 99.0), Sample::new(30, 4.5)]);
    let stats = store.write(&b).unwrap();
    assert_eq!((stats.samples, stats.rejected.duplicate_timestamp), (1, 1));
    assert!(stats.rejected.first.is_some());
    let got = &store.select(TimeRange::ALL, &[]).unwrap()[0].samples;
    assert_eq!(got.iter().map(|s| s.v).collect::<Vec<_>>(), [0.0, 1.5, 3.0, 4.5]);
}

/// Label names and values honour matchers and time, sorted and without repeats.
pub fn labels_and_values(store: &dyn MetricStore) {
    write(
        store,
        &[
            (labels(&[("__name__", "up"), ("job", "node"), ("zone", "a")]), ramp(0, 2, 10)),
            (labels(&[("__name__", "up"), ("job", "api")]), ramp(0, 2, 10)),
            (labels(&[("__name__", "late"), ("job", "late")]), ramp(10_000, 2, 10)),
        ],
    );
    let all = TimeRange::ALL;
    assert_eq!(store.label_names(all, &[]).unwrap(), ["__name__", "job", "zone"]);
    assert_eq!(store.label_values("job", all, &[]).unwrap(), ["api", "late", "node"]);
    assert_eq!(store.label_values("job", TimeRange::new(0, 100), &[]).unwrap(), ["api", "node"]);
    let only_api = [Matcher::equal("job", "api")];
    assert_eq!(store.label_names(all, &only_api).unwrap(), ["__name__", "job"]);
    assert_eq!(store.label_values("zone", all, &only_api).unwrap(), Vec::<String>::new());
    assert!(store.label_values("nope", all, &[]).unwrap().is_empty());
}

/// Thousands of series come back sorted by labels, each with its own samples.
pub fn many_series_sorted(store: &dyn MetricStore) {
    let mut b = WriteBatch::new();
    let n = 3000;
    for i in (0..n).rev() {
        let inst = format!("host-{i:05}");
        let l = labels(&[("__name__", "node_load1"), ("instance", &inst)]);
        b.push(l, &[Sample::new(1000, i as f64), Sample::new(2000, i as f64 + 0.5)]);
    }
    assert_eq!(store.write(&b).unwrap().new_series, n);
    let got = store.select(TimeRange::new(1000, 1000), &[Matcher::equal("__name__", "node_load1")]).unwrap();
    assert_eq!(got.len(), n);
    assert!(got.windows(2).all(|w| w[0].labels < w[1].labels));
    for (i, s) in got.iter().enumerate() {
        assert_eq!(s.samples, [Sample::new(1000, i as f64)]);
    }
}

/// Reading an empty store, or with matchers nothing satisfies, gives empty results.
pub fn empty_results(store: &dyn MetricStore) {
    assert!(store.select(TimeRange::ALL, &[]).unwrap().is_empty());
    assert!(store.series(TimeRange::ALL, &[]).unwrap().is_empty());
    assert!(store.label_names(TimeRange::ALL, &[]).unwrap().is_empty());
    let empty = store.write(&WriteBatch::new()).unwrap();
    assert_eq!(empty.samples, 0);
}
