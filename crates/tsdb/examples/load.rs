//! Loads a data set dumped from `../shared/bench/tsbench.py` (see `docs/format.md`,
//! "Measuring") into a fresh data directory, flushes, and prints ingest rate, bytes per
//! sample on disk, peak RSS, and reopen time. Usage: `load PREFIX DATA_DIR`, where
//! `PREFIX.labels` holds one series per line (`name=value` pairs joined by U+0001) and
//! `PREFIX.bin` holds `u32 N, u32 T`, then N*T `i64` timestamps and N*T `f64` values.

use std::time::Instant;

use telltale_model::{Labels, Sample, TimeRange, WriteBatch};
use telltale_storage::{Maintenance, MetricReader, MetricWriter};
use telltale_tsdb::{Options, Tsdb};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find(|l| l.starts_with("VmHWM")).and_then(|l| l.split_whitespace().nth(1));
    kb.and_then(|k| k.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() { dir_size(&e.path()) } else { m.len() };
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (prefix, dir) = (&args[1], std::path::Path::new(&args[2]));
    let labels: Vec<Labels> = std::fs::read_to_string(format!("{prefix}.labels"))
        .unwrap()
        .lines()
        .map(|l| Labels::from_pairs(l.split('\u{1}').map(|p| p.split_once('=').unwrap())).unwrap())
        .collect();
    let raw = std::fs::read(format!("{prefix}.bin")).unwrap();
    let n = u32::from_le_bytes(raw[0..4].try_into().unwrap()) as usize;
    let t = u32::from_le_bytes(raw[4..8].try_into().unwrap()) as usize;
    let at = |i: usize| i64::from_le_bytes(raw[8 + i * 8..16 + i * 8].try_into().unwrap());
    let val = |i: usize| f64::from_le_bytes(raw[8 + (n * t + i) * 8..16 + (n * t + i) * 8].try_into().unwrap());
    let rss_before = peak_rss_mib();
    let _ = std::fs::remove_dir_all(dir);
    let db = Tsdb::open(dir, &Options::default()).unwrap();
    let start = Instant::now();
    // Like remote write: each request carries a slice of series with a few samples each.
    let per_req = 4;
    for step in (0..t).step_by(per_req) {
        for chunk in (0..n).collect::<Vec<_>>().chunks(2500) {
            let mut b = WriteBatch::new();
            for &s in chunk {
                let samples: Vec<Sample> =
                    (step..(step + per_req).min(t)).map(|k| Sample::new(at(s * t + k), val(s * t + k))).collect();
                b.push(labels[s].clone(), &samples);
            }
            db.write(&b).unwrap();
        }
    }
    let ingest = start.elapsed().as_secs_f64();
    let samples = (n * t) as f64;
    println!("ingest: {:.2}s, {:.0} samples/s", ingest, samples / ingest);
    println!("peak rss during ingest: {:.0} MiB (data set alone {:.0} MiB)", peak_rss_mib(), rss_before);
    let wal = dir_size(&dir.join("wal"));
    let start = Instant::now();
    db.flush().unwrap();
    println!("flush: {:.2}s; wal before flush {:.1} MiB", start.elapsed().as_secs_f64(), wal as f64 / 1048576.0);
    let blocks = dir_size(&dir.join("blocks"));
    let total = dir_size(dir);
    println!(
        "blocks: {} bytes = {:.3} B/sample; whole dir {:.3} B/sample",
        blocks,
        blocks as f64 / samples,
        total as f64 / samples
    );
    drop(db);
    let start = Instant::now();
    let db = Tsdb::open(dir, &Options::default()).unwrap();
    println!("reopen: {:.2}s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let got = db.select(TimeRange::ALL, &[]).unwrap();
    let count: usize = got.iter().map(|s| s.samples.len()).sum();
    println!("select all: {} series, {} samples in {:.2}s", got.len(), count, start.elapsed().as_secs_f64());
    let mut bad = 0;
    let idx: std::collections::HashMap<&Labels, usize> = labels.iter().enumerate().map(|(i, l)| (l, i)).collect();
    for s in &got {
        let i = idx[&s.labels];
        bad += s
            .samples
            .iter()
            .enumerate()
            .filter(|(k, x)| !x.bit_eq(&Sample::new(at(i * t + k), val(i * t + k))))
            .count();
    }
    println!("mismatched samples: {bad}");
}
