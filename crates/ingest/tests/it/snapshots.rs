//! Payloads produced by real clients (see the generator scripts next to them) decoded and
//! compared with a plain-text snapshot (`<fixture>.decoded`, the format of [`crate::render`]).
//! Adding a case means adding a file. After an intended change, refresh the snapshots with
//! `UPDATE_SNAPSHOTS=1 cargo test -p telltale-ingest --test it snapshots` and review the diff.

use std::path::{Path, PathBuf};

use telltale_ingest::{exposition, influx, prom_remote_write, Limits};

/// The default timestamp / "now" given to text decoders: 2023-11-14T22:13:20Z.
const NOW_MS: i64 = 1_700_000_000_000;

fn testdata(proto: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(proto)
}

fn fixtures(proto: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(testdata(proto))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(ext)))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no *{ext} fixtures in testdata/{proto}");
    v
}

fn check_snapshot(fixture: &Path, got: &str) {
    let snap = PathBuf::from(format!("{}.decoded", fixture.display()));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&snap)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)", snap.display()));
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{} differs from its snapshot at line {}:\n want: {:?}\n  got: {:?}\n(UPDATE_SNAPSHOTS=1 rewrites it)",
            fixture.display(),
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
}

#[test]
fn prom_remote_write_fixtures() {
    for f in fixtures("prom_remote_write", ".snappy") {
        let body = std::fs::read(&f).unwrap();
        let headers = std::fs::read_to_string(f.with_extension("headers")).unwrap_or_default();
        let ct = headers.lines().find_map(|l| l.strip_prefix("Content-Type: "));
        let version = prom_remote_write::version_from_content_type(ct).unwrap();
        let batch = prom_remote_write::decode_version(version, &body, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!batch.is_empty(), "{}", f.display());
        check_snapshot(&f, &crate::render(&batch));
    }
}

#[test]
fn prometheus_sends_samples_and_metadata() {
    let f = testdata("prom_remote_write").join("prometheus-2.42.0-samples.snappy");
    let b = prom_remote_write::decode(&std::fs::read(f).unwrap(), &Limits::default()).unwrap();
    assert!(b.series_count() > 100, "{}", b.series_count());
    assert!(b.iter().any(|(l, _)| l.metric_name() == Some("up") && l.get("job") == Some("prometheus")));
    let f = testdata("prom_remote_write").join("prometheus-2.42.0-metadata.snappy");
    let b = prom_remote_write::decode(&std::fs::read(f).unwrap(), &Limits::default()).unwrap();
    assert_eq!(b.series_count(), 0);
    assert!(b
        .metadata
        .iter()
        .any(|m| m.metric_family == "go_goroutines" && m.kind == telltale_model::MetricType::Gauge));
}

#[test]
fn exposition_fixtures() {
    for ext in [".prom", ".om.txt"] {
        for f in fixtures("exposition", ext) {
            let text = std::fs::read(&f).unwrap();
            let batch = exposition::decode(&text, NOW_MS, &Limits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(!batch.is_empty(), "{}", f.display());
            check_snapshot(&f, &crate::render(&batch));
        }
    }
}

#[test]
fn influx_fixtures() {
    for f in fixtures("influx", ".lp") {
        let body = std::fs::read(&f).unwrap();
        let batch = influx::decode(&body, influx::Precision::Nanoseconds, NOW_MS, Some("fixtures"), &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!batch.is_empty(), "{}", f.display());
        check_snapshot(&f, &crate::render(&batch));
    }
}
