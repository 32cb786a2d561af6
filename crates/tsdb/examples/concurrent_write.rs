//! How well the write path scales with writer threads, without HTTP or decoding in the way.
//!
//! Builds `SERIES` node_exporter-like series (10 labels each), then writes `STEPS` scrapes of
//! them the way remote write arrives: each writer thread owns a share of the series and sends
//! batches of about 8,333 series with one sample each, in time order. Runs once with one
//! writer and once with `THREADS` writers on fresh data dirs and prints samples/s, CPU
//! seconds per million samples, and the speedup. Usage:
//! `cargo run --release -p telltale-tsdb --example concurrent_write [SERIES] [STEPS] [THREADS]`.

use std::time::Instant;

use telltale_model::{Labels, Sample, WriteBatch};
use telltale_storage::MetricWriter;
use telltale_tsdb::{Options, Tsdb};

fn cpu_seconds() -> f64 {
    // utime + stime of the whole process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, s)| s).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn series(n: usize) -> Vec<Labels> {
    let modes = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"];
    (0..n)
        .map(|i| {
            let host = format!("host-{:05}:9100", i / 428);
            let cpu = ((i / 8) % 8).to_string();
            let mode = modes[i % 8];
            let idx = (i % 428).to_string();
            Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", cpu.as_str()),
                ("datacenter", "eu-west-1"),
                ("env", "production"),
                ("instance", host.as_str()),
                ("job", "node"),
                ("mode", mode),
                ("rack", "r12"),
                ("series", idx.as_str()),
                ("team", "infrastructure"),
            ])
            .unwrap()
        })
        .collect()
}

/// Batches per writer thread, in the order that writer sends them.
fn batches(labels: &[Labels], steps: usize, threads: usize) -> Vec<Vec<WriteBatch>> {
    let per_batch = 8_333;
    let share = labels.len().div_ceil(threads);
    (0..threads)
        .map(|w| {
            let mine = &labels[(w * share).min(labels.len())..((w + 1) * share).min(labels.len())];
            let mut out = Vec::new();
            for step in 0..steps {
                let t = 1_700_000_000_000 + step as i64 * 15_000;
                for chunk in mine.chunks(per_batch) {
                    let mut b = WriteBatch::new();
                    for (i, l) in chunk.iter().enumerate() {
                        let v = ((step * 37 + i * 11) % 1000) as f64 / 100.0 + step as f64;
                        b.push_sample(l.clone(), Sample::new(t, v));
                    }
                    out.push(b);
                }
            }
            out
        })
        .collect()
}

fn run(labels: &[Labels], steps: usize, threads: usize) -> (f64, f64) {
    let work = batches(labels, steps, threads);
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    let samples: usize = work.iter().flatten().map(|b| b.sample_count()).sum();
    let (cpu0, start) = (cpu_seconds(), Instant::now());
    std::thread::scope(|s| {
        for mine in &work {
            let db = &db;
            s.spawn(move || {
                for b in mine {
                    db.write(b).unwrap();
                }
            });
        }
    });
    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let rate = samples as f64 / wall;
    let cpu_per_m = cpu / samples as f64 * 1e6;
    println!("{threads} writer(s): {rate:>12.0} samples/s, {cpu_per_m:.3} cpu-s per million samples, {wall:.2}s wall");
    (rate, cpu_per_m)
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (n, steps, threads) = (arg(1, 100_000), arg(2, 40), arg(3, 4));
    let labels = series(n);
    println!("{n} series x {steps} steps");
    let (one, _) = run(&labels, steps, 1);
    let (many, _) = run(&labels, steps, threads);
    println!("speedup with {threads} writers: {:.2}x", many / one);
}
