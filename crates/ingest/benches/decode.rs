//! Remote write decode throughput on the benchmark's request shape: 10,000 series with
//! 10 labels (node_exporter-like names) and one sample each, snappy-compressed; 1.0 and 2.0.
//!
//! Run: `cargo bench -p telltale-ingest --bench decode`. Throughput is reported in samples/s
//! (criterion's "elements").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use telltale_ingest::{prom_remote_write, Limits};

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn len_field(buf: &mut Vec<u8>, field: u8, payload: &[u8]) {
    buf.push((field << 3) | 2);
    varint(buf, payload.len() as u64);
    buf.extend_from_slice(payload);
}

/// The label pairs of series `i`: 10 labels, node_exporter-like.
fn pairs(i: usize) -> [(&'static str, String); 10] {
    let families = ["node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_network_receive_bytes_total"];
    let host = format!("host-{:05}", i / 100);
    [
        ("__name__", families[i % 3].to_string()),
        ("cpu", format!("{}", i % 8)),
        ("datacenter", "eu-west-1".to_string()),
        ("device", format!("eth{}", i % 4)),
        ("env", "production".to_string()),
        ("host", host.clone()),
        ("instance", format!("{host}:9100")),
        ("job", "node".to_string()),
        ("mode", ["idle", "user", "system", "iowait"][i % 4].to_string()),
        ("series", format!("{i}")),
    ]
}

fn sample(buf: &mut Vec<u8>, i: usize) {
    buf.clear();
    buf.push(0x09);
    buf.extend_from_slice(&(i as f64 * 1.5).to_le_bytes());
    buf.push(0x10);
    varint(buf, 1_700_000_000_000 + i as u64);
}

/// A 1.0 `WriteRequest` of `n` series, encoded by hand as Prometheus's sender does.
fn write_request(n: usize) -> Vec<u8> {
    let mut req = Vec::new();
    let (mut ts, mut label, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        ts.clear();
        for (name, value) in &pairs(i) {
            label.clear();
            len_field(&mut label, 1, name.as_bytes());
            len_field(&mut label, 2, value.as_bytes());
            len_field(&mut ts, 1, &label);
        }
        sample(&mut s, i);
        len_field(&mut ts, 2, &s);
        len_field(&mut req, 1, &ts);
    }
    req
}

/// The same series as a 2.0 `Request`, with counter metadata on every series (as Prometheus 3
/// sends it).
fn write_request_v2(n: usize) -> Vec<u8> {
    let mut symbols: Vec<String> = vec![String::new(), "Seconds.".into()];
    let mut index = std::collections::HashMap::new();
    let mut sym = |s: &str, symbols: &mut Vec<String>| -> u64 {
        *index.entry(s.to_string()).or_insert_with(|| {
            symbols.push(s.to_string());
            symbols.len() as u64 - 1
        })
    };
    let mut series = Vec::new();
    let (mut ts, mut refs, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        ts.clear();
        refs.clear();
        for (name, value) in &pairs(i) {
            varint(&mut refs, sym(name, &mut symbols));
            varint(&mut refs, sym(value, &mut symbols));
        }
        len_field(&mut ts, 1, &refs);
        sample(&mut s, i);
        len_field(&mut ts, 2, &s);
        len_field(&mut ts, 5, &[0x08, 0x01, 0x18, 0x01]);
        len_field(&mut series, 5, &ts);
    }
    let mut req = Vec::new();
    for s in &symbols {
        len_field(&mut req, 4, s.as_bytes());
    }
    req.extend_from_slice(&series);
    req
}

fn bench(c: &mut Criterion) {
    let n = 10_000;
    let raw = write_request(n);
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let limits = Limits::default();
    assert_eq!(prom_remote_write::decode(&body, &limits).unwrap().sample_count(), n);

    let mut g = c.benchmark_group("prom_remote_write");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode_v1_10k_series", |b| b.iter(|| prom_remote_write::decode(&body, &limits).unwrap()));
    g.bench_function("decode_v1_uncompressed_10k_series", |b| {
        b.iter(|| prom_remote_write::decode_uncompressed(&raw, &limits).unwrap())
    });
    let body_v2 = snap::raw::Encoder::new().compress_vec(&write_request_v2(n)).unwrap();
    assert_eq!(prom_remote_write::decode_v2(&body_v2, &limits).unwrap().sample_count(), n);
    g.bench_function("decode_v2_10k_series", |b| b.iter(|| prom_remote_write::decode_v2(&body_v2, &limits).unwrap()));
    g.bench_function("snappy_only_10k_series", |b| {
        let mut out = vec![0; raw.len()];
        b.iter(|| snap::raw::Decoder::new().decompress(&body, &mut out).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
