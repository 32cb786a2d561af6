//! Remote write 1.0 decode throughput on the benchmark's request shape: 10,000 series with
//! 10 labels (node_exporter-like names) and one sample each, snappy-compressed.
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

/// A `WriteRequest` of `n` series, encoded by hand as Prometheus's sender does.
fn write_request(n: usize) -> Vec<u8> {
    let families = ["node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_network_receive_bytes_total"];
    let mut req = Vec::new();
    let (mut ts, mut label, mut sample) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        ts.clear();
        let host = format!("host-{:05}", i / 100);
        let pairs = [
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
        ];
        for (name, value) in &pairs {
            label.clear();
            len_field(&mut label, 1, name.as_bytes());
            len_field(&mut label, 2, value.as_bytes());
            len_field(&mut ts, 1, &label);
        }
        sample.clear();
        sample.push(0x09);
        sample.extend_from_slice(&(i as f64 * 1.5).to_le_bytes());
        sample.push(0x10);
        varint(&mut sample, 1_700_000_000_000 + i as u64);
        len_field(&mut ts, 2, &sample);
        len_field(&mut req, 1, &ts);
    }
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
    g.bench_function("snappy_only_10k_series", |b| {
        let mut out = vec![0; raw.len()];
        b.iter(|| snap::raw::Decoder::new().decompress(&body, &mut out).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
