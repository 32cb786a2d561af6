//! Chunk encode/decode and head append throughput. Run: `cargo bench -p telltale-tsdb`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use telltale_model::{Labels, Sample, WriteBatch};
use telltale_storage::MetricWriter;
use telltale_tsdb::bench_api::{decode_chunk, encode_chunk};
use telltale_tsdb::{Options, Tsdb};

/// A counter in 1/100 ticks and a gauge with repeats, like node_exporter's.
fn samples(n: i64) -> Vec<Sample> {
    (0..n).map(|i| Sample::new(1_700_000_000_000 + i * 15_000, ((i * 1237) % 9000 + i * 50) as f64 / 100.0)).collect()
}

fn chunks(c: &mut Criterion) {
    let s = samples(120);
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(s.len() as u64));
    g.bench_function("encode_120", |b| b.iter(|| encode_chunk(&s)));
    let data = encode_chunk(&s);
    let mut out = Vec::with_capacity(120);
    g.bench_function("decode_120", |b| {
        b.iter(|| {
            out.clear();
            decode_chunk(&data, &mut out).unwrap();
        })
    });
    g.finish();
}

fn head_append(c: &mut Criterion) {
    let series: Vec<Labels> = (0..10_000)
        .map(|i| {
            let inst = format!("host-{:05}:9100", i / 100);
            let cpu = (i % 100).to_string();
            Labels::from_pairs([("__name__", "node_cpu_seconds_total"), ("instance", &inst), ("cpu", &cpu)]).unwrap()
        })
        .collect();
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(series.len() as u64));
    g.sample_size(20);
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), &Options::default()).unwrap();
    let mut t = 0i64;
    g.bench_function("append_10k_series_1_sample", |b| {
        b.iter_batched(
            || {
                t += 15_000;
                let mut batch = WriteBatch::new();
                for (i, l) in series.iter().enumerate() {
                    batch.push_sample(l.clone(), Sample::new(t, (t / 1000 + i as i64) as f64));
                }
                batch
            },
            |batch| db.write(&batch).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, chunks, head_append);
criterion_main!(benches);
