//! The encoder of remote write 1.0: a [`WriteBatch`] into a snappy-compressed
//! `prometheus.WriteRequest`, what `telltale agent` sends. The decoder's mirror image
//! (same spec: <https://prometheus.io/docs/specs/prw/remote_write_spec/>).
//!
//! Messages (prompb): `WriteRequest { repeated TimeSeries timeseries = 1; repeated
//! MetricMetadata metadata = 3; }`, `TimeSeries { repeated Label labels = 1; repeated Sample
//! samples = 2; }`, `Label { string name = 1; string value = 2; }`, `Sample { double value = 1;
//! int64 timestamp = 2; }`, `MetricMetadata { MetricType type = 1; string metric_family_name = 2;
//! string help = 4; string unit = 5; }`. Labels go in name order, as the spec requires
//! (a [`telltale_model::Labels`] is sorted already).

use telltale_model::{MetricType, WriteBatch};

/// Encodes `batch` as an uncompressed `WriteRequest`, appending to `out`.
pub fn encode_uncompressed(batch: &WriteBatch, out: &mut Vec<u8>) {
    let mut ts = Vec::with_capacity(256);
    for (labels, samples) in batch.iter() {
        ts.clear();
        for (name, value) in labels.iter() {
            let len = field_len(name.len()) + field_len(value.len());
            tag(&mut ts, 1, 2);
            varint(&mut ts, len as u64);
            string_field(&mut ts, 1, name);
            string_field(&mut ts, 2, value);
        }
        for s in samples {
            // value (double, tag 1) + timestamp (int64 varint, tag 2)
            let len = 1 + 8 + 1 + varint_len(s.t as u64);
            tag(&mut ts, 2, 2);
            varint(&mut ts, len as u64);
            tag(&mut ts, 1, 1);
            ts.extend_from_slice(&s.v.to_bits().to_le_bytes());
            tag(&mut ts, 2, 0);
            varint(&mut ts, s.t as u64);
        }
        tag(out, 1, 2);
        varint(out, ts.len() as u64);
        out.extend_from_slice(&ts);
    }
    for m in &batch.metadata {
        ts.clear();
        let kind = match m.kind {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        };
        if kind != 0 {
            tag(&mut ts, 1, 0);
            varint(&mut ts, kind);
        }
        string_field(&mut ts, 2, &m.metric_family);
        if !m.help.is_empty() {
            string_field(&mut ts, 4, &m.help);
        }
        if !m.unit.is_empty() {
            string_field(&mut ts, 5, &m.unit);
        }
        tag(out, 3, 2);
        varint(out, ts.len() as u64);
        out.extend_from_slice(&ts);
    }
}

/// Encodes `batch` as a snappy-compressed (block format) `WriteRequest`: a remote write 1.0
/// request body. `scratch` holds the uncompressed message and is reused across calls.
pub fn encode(batch: &WriteBatch, scratch: &mut Vec<u8>) -> Vec<u8> {
    scratch.clear();
    encode_uncompressed(batch, scratch);
    snap::raw::Encoder::new().compress_vec(scratch).unwrap_or_default()
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    out.push(((field << 3) as u8) | wire);
}

fn string_field(out: &mut Vec<u8>, field: u32, s: &str) {
    tag(out, field, 2);
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{prom_remote_write, Limits};
    use proptest::prelude::*;
    use telltale_model::{Labels, MetricMetadata, Sample};

    #[test]
    fn round_trips_through_the_decoder() {
        let mut b = WriteBatch::new();
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "h:1")]).unwrap();
        b.push(l, &[Sample::new(1000, 1.0), Sample::new(-5, f64::from_bits(telltale_model::STALE_NAN_BITS))]);
        b.metadata.push(MetricMetadata {
            metric_family: "up".into(),
            kind: MetricType::Gauge,
            help: "is it up".into(),
            unit: String::new(),
        });
        let body = encode(&b, &mut Vec::new());
        let d = prom_remote_write::decode(&body, &Limits::default()).unwrap();
        let got: Vec<_> = d.iter().map(|(l, s)| (l.clone(), s.to_vec())).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, b.iter().next().unwrap().0.clone());
        assert!(got[0].1[0].bit_eq(&Sample::new(1000, 1.0)));
        assert_eq!(got[0].1[1].v.to_bits(), telltale_model::STALE_NAN_BITS);
        assert_eq!(d.metadata, b.metadata);
    }

    proptest! {
        #[test]
        fn any_batch_round_trips(
            series in proptest::collection::vec(
                (proptest::collection::btree_map("[a-z_]{1,8}", "[ -~]{1,12}", 1..5),
                 proptest::collection::vec((any::<i64>(), any::<f64>()), 1..4)),
                0..8)
        ) {
            let mut b = WriteBatch::new();
            for (labels, samples) in &series {
                let l = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
                let s: Vec<Sample> = samples.iter().map(|&(t, v)| Sample::new(t, v)).collect();
                b.push(l, &s);
            }
            let body = encode(&b, &mut Vec::new());
            let d = prom_remote_write::decode(&body, &Limits::unlimited()).unwrap();
            prop_assert_eq!(d.series_count(), b.series_count());
            for ((l1, s1), (l2, s2)) in b.iter().zip(d.iter()) {
                prop_assert_eq!(l1, l2);
                prop_assert_eq!(s1.len(), s2.len());
                for (a, c) in s1.iter().zip(s2) {
                    prop_assert!(a.bit_eq(c));
                }
            }
        }
    }
}
