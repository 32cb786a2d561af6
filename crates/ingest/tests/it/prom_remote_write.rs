use std::collections::BTreeMap;

use proptest::prelude::*;
use telltale_ingest::prom_remote_write::{self, Version};
use telltale_ingest::{Error, Limits};
use telltale_model::{ErrorKind, Labels, MetricType, Sample};

use crate::prompb::{snappy, v1, v2};

fn label(name: &str, value: &str) -> v1::Label {
    v1::Label { name: name.into(), value: value.into() }
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> v1::TimeSeries {
    v1::TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: samples.iter().map(|&(timestamp, value)| v1::Sample { value, timestamp }).collect(),
        ..Default::default()
    }
}

#[test]
fn v1_series_samples_and_metadata() {
    let req = v1::WriteRequest {
        timeseries: vec![
            // Unsorted labels and an empty value: sorted, and the empty one dropped.
            series(&[("job", "node"), ("__name__", "up"), ("zone", "")], &[(1000, 1.0), (2000, f64::NAN)]),
            series(&[("__name__", "stale")], &[(3000, f64::from_bits(telltale_model::STALE_NAN_BITS))]),
            // Exemplar-only series: nothing to store.
            v1::TimeSeries {
                labels: vec![label("__name__", "ex")],
                exemplars: vec![v1::Exemplar { labels: vec![label("trace_id", "x")], value: 1.0, timestamp: 5 }],
                ..Default::default()
            },
        ],
        metadata: vec![v1::MetricMetadata {
            r#type: 1,
            metric_family_name: "http_requests_total".into(),
            help: "Requests.".into(),
            unit: "".into(),
        }],
    };
    let b = prom_remote_write::decode(&snappy(&req), &Limits::default()).unwrap();
    assert_eq!(
        crate::render(&b),
        "up{job=\"node\"} 1000 1.0\nup{job=\"node\"} 2000 NaN\nstale 3000 StaleNaN\n\
         # http_requests_total counter help=\"Requests.\" unit=\"\"\n"
    );
}

#[test]
fn v1_native_histograms_are_counted_and_rejected() {
    let mut s = series(&[("__name__", "h")], &[]);
    s.histograms = vec![v1::Histogram { count_int: 3, sum: 1.5, schema: 3, timestamp: 1 }; 2];
    let req = v1::WriteRequest {
        timeseries: vec![s.clone(), s, series(&[("__name__", "f")], &[(1, 1.0)])],
        metadata: vec![],
    };
    let e = prom_remote_write::decode(&snappy(&req), &Limits::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string()
            .starts_with("unsupported: native histograms are not supported yet (the request holds 4 in 2 series)"),
        "{e}"
    );
}

#[test]
fn v1_invalid_series_and_limits() {
    let dec = |req: v1::WriteRequest, limits: &Limits| prom_remote_write::decode(&snappy(&req), limits).unwrap_err();
    let one =
        |labels: &[(&str, &str)]| v1::WriteRequest { timeseries: vec![series(labels, &[(1, 1.0)])], metadata: vec![] };

    let e = dec(one(&[("__name__", "x"), ("a", "1"), ("a", "2")]), &Limits::default());
    assert_eq!(e.to_string(), r#"invalid series "x": duplicate label name "a""#);
    let e = dec(one(&[("", "1")]), &Limits::default());
    assert_eq!(e.to_string(), "invalid series without __name__: empty label name");
    let e = dec(one(&[("a", "")]), &Limits::default());
    assert_eq!(e.to_string(), "invalid series {}: series has no labels");

    let many: Vec<(String, String)> = (0..31).map(|i| (format!("l{i:02}"), "v".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let e = dec(one(&many), &Limits::default());
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(e.to_string().starts_with("max_labels_per_series (30) exceeded by series {l00=\"v\""), "{e}");

    let long = "x".repeat(5000);
    let e = dec(one(&[("__name__", "m"), ("big", &long)]), &Limits::default());
    assert!(e.to_string().starts_with("max_label_value_length (4096) exceeded by label big=\"xxxx"), "{e}");
    assert!(e.to_string().ends_with("(5000 bytes) of series \"m\""), "{e}");

    let req = v1::WriteRequest {
        timeseries: (0..3).map(|i| series(&[("__name__", "m"), ("i", &i.to_string())], &[(1, 1.0)])).collect(),
        metadata: vec![],
    };
    let limits = Limits { max_series_per_request: 2, ..Limits::default() };
    assert_eq!(dec(req.clone(), &limits).kind(), ErrorKind::TooLarge);
    let limits = Limits { max_samples_per_request: 2, ..Limits::default() };
    assert_eq!(dec(req, &limits).to_string(), "max_samples_per_request (2) exceeded by the request");
}

#[test]
fn v1_wire_errors_are_one_line_with_offsets() {
    let good = v1::WriteRequest { timeseries: vec![series(&[("__name__", "up")], &[(1, 1.0)])], metadata: vec![] };
    let raw = prost::Message::encode_to_vec(&good);
    // Every truncation is an error (or an empty message), never a panic.
    for cut in 1..raw.len() {
        match prom_remote_write::decode_uncompressed(&raw[..cut], &Limits::default()) {
            Ok(b) => assert!(b.is_empty()),
            Err(e) => {
                assert!(e.to_string().starts_with("invalid protobuf at byte "), "{e}");
                assert!(!e.to_string().contains('\n'));
            }
        }
    }
    // Invalid UTF-8 in a label value.
    let mut bad = raw.clone();
    let pos = bad.windows(2).position(|w| w == b"up").unwrap();
    bad[pos] = 0xff;
    let e = prom_remote_write::decode_uncompressed(&bad, &Limits::default()).unwrap_err();
    assert_eq!(e.to_string(), format!("invalid protobuf at byte {pos}: string is not valid utf-8"));
    // A known field with the wrong wire type (timeseries as varint).
    let e = prom_remote_write::decode_uncompressed(&[0x08, 0x01], &Limits::default()).unwrap_err();
    assert_eq!(e.to_string(), "invalid protobuf at byte 1: unexpected wire type for a known field");
    // Unknown fields are skipped (forward compatibility).
    let mut with_unknown = vec![0x78, 0x05]; // field 15, varint 5
    with_unknown.extend_from_slice(&raw);
    assert_eq!(prom_remote_write::decode_uncompressed(&with_unknown, &Limits::default()).unwrap().sample_count(), 1);
}

fn sym(symbols: &mut Vec<String>, s: &str) -> u32 {
    match symbols.iter().position(|x| x == s) {
        Some(i) => i as u32,
        None => {
            symbols.push(s.to_string());
            (symbols.len() - 1) as u32
        }
    }
}

#[test]
fn v2_symbols_samples_and_metadata() {
    let mut symbols = vec![String::new()];
    let mut refs = |pairs: &[(&str, &str)]| -> Vec<u32> {
        pairs.iter().flat_map(|(n, v)| [sym(&mut symbols, n), sym(&mut symbols, v)]).collect()
    };
    let a = refs(&[("__name__", "http_requests_total"), ("code", "200")]);
    let b = refs(&[("__name__", "http_requests_total"), ("code", "500")]);
    let c = refs(&[("__name__", "temp_celsius")]);
    let help = sym(&mut symbols, "Requests.");
    let unit = sym(&mut symbols, "celsius");
    let md = |t, help_ref, unit_ref| Some(v2::Metadata { r#type: t, help_ref, unit_ref });
    let s = |t, v| v1::Sample { value: v, timestamp: t };
    let req = v2::Request {
        symbols,
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: a,
                samples: vec![s(1, 1.0), s(2, 2.0)],
                metadata: md(1, help, 0),
                created_timestamp: 5,
                ..Default::default()
            },
            v2::TimeSeries { labels_refs: b, samples: vec![s(1, 3.0)], metadata: md(1, help, 0), ..Default::default() },
            v2::TimeSeries {
                labels_refs: c,
                samples: vec![s(1, -4.5)],
                metadata: md(2, 0, unit),
                ..Default::default()
            },
        ],
    };
    let batch = prom_remote_write::decode_v2(&snappy(&req), &Limits::default()).unwrap();
    assert_eq!(
        crate::render(&batch),
        "http_requests_total{code=\"200\"} 1 1.0\nhttp_requests_total{code=\"200\"} 2 2.0\n\
         http_requests_total{code=\"500\"} 1 3.0\ntemp_celsius 1 -4.5\n\
         # http_requests_total counter help=\"Requests.\" unit=\"\"\n# temp_celsius gauge help=\"\" unit=\"celsius\"\n"
    );
    assert_eq!(batch.metadata[1].kind, MetricType::Gauge);

    // The same request through the content-type switch.
    let v = prom_remote_write::version_from_content_type(Some(
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    ))
    .unwrap();
    assert_eq!(v, Version::V2);
    assert_eq!(prom_remote_write::decode_version(v, &snappy(&req), &Limits::default()).unwrap().sample_count(), 4);
}

#[test]
fn v2_bad_refs() {
    let dec = |ts: v2::TimeSeries| {
        let req = v2::Request { symbols: vec!["".into(), "__name__".into(), "x".into()], timeseries: vec![ts] };
        prom_remote_write::decode_v2(&snappy(&req), &Limits::default()).unwrap_err()
    };
    let samples = vec![v1::Sample { value: 1.0, timestamp: 1 }];
    let e = dec(v2::TimeSeries { labels_refs: vec![1, 9], samples: samples.clone(), ..Default::default() });
    assert!(e.to_string().ends_with("symbol reference out of range"), "{e}");
    let e = dec(v2::TimeSeries { labels_refs: vec![1, 2, 1], samples: samples.clone(), ..Default::default() });
    assert!(e.to_string().ends_with("labels_refs has an odd length"), "{e}");
    let e = dec(v2::TimeSeries {
        labels_refs: vec![1, 2],
        samples: samples.clone(),
        metadata: Some(v2::Metadata { r#type: 1, help_ref: 77, unit_ref: 0 }),
        ..Default::default()
    });
    assert!(e.to_string().ends_with("symbol reference out of range"), "{e}");
    let e = dec(v2::TimeSeries {
        labels_refs: vec![1, 2],
        histograms: vec![v1::Histogram { count_int: 1, sum: 1.0, schema: 0, timestamp: 1 }],
        ..Default::default()
    });
    assert!(e.to_string().contains("native histograms are not supported yet (the request holds 1 in 1 series)"), "{e}");
}

#[test]
fn wrong_version_decodes_to_nothing_or_an_error() {
    // The 2.0 spec reserves fields 1-3 so a 1.0 body read as 2.0 is empty, and vice versa.
    let v1req = v1::WriteRequest { timeseries: vec![series(&[("__name__", "up")], &[(1, 1.0)])], metadata: vec![] };
    assert!(prom_remote_write::decode_v2(&snappy(&v1req), &Limits::default()).unwrap().is_empty());
    let v2req = v2::Request {
        symbols: vec!["".into(), "__name__".into(), "up".into()],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2],
            samples: vec![v1::Sample { value: 1.0, timestamp: 1 }],
            ..Default::default()
        }],
    };
    assert!(prom_remote_write::decode(&snappy(&v2req), &Limits::default()).unwrap().is_empty());
}

/// Label sets as Prometheus would send them: unique non-empty names, any UTF-8 values.
fn label_sets() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,12}", "\\PC{0,20}", 1..12)
}

fn samples() -> impl Strategy<Value = Vec<(i64, u64)>> {
    prop::collection::vec((any::<i64>(), any::<u64>()), 1..4)
}

fn expected(pairs: &BTreeMap<String, String>, samples: &[(i64, u64)]) -> Option<(Labels, Vec<Sample>)> {
    let labels = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
    if labels.is_empty() {
        return None;
    }
    Some((labels, samples.iter().map(|&(t, bits)| Sample::new(t, f64::from_bits(bits))).collect()))
}

fn check(batch: &telltale_model::WriteBatch, want: &[(Labels, Vec<Sample>)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(batch.series_count(), want.len());
    for ((l, s), (wl, ws)) in batch.iter().zip(want) {
        prop_assert_eq!(l, wl);
        prop_assert_eq!(s.len(), ws.len());
        for (a, b) in s.iter().zip(ws) {
            prop_assert!(a.bit_eq(b), "{:?} != {:?}", a, b);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn v1_round_trip(input in prop::collection::vec((label_sets(), samples()), 0..20)) {
        // Labels go on the wire in random (map) order, values may be empty.
        let req = v1::WriteRequest {
            timeseries: input.iter().map(|(pairs, samples)| v1::TimeSeries {
                labels: pairs.iter().rev().map(|(n, v)| label(n, v)).collect(),
                samples: samples.iter().map(|&(timestamp, bits)| v1::Sample { value: f64::from_bits(bits), timestamp }).collect(),
                ..Default::default()
            }).collect(),
            metadata: vec![],
        };
        let want: Vec<_> = input.iter().filter_map(|(p, s)| expected(p, s)).collect();
        let all_named = want.len() == input.len();
        match prom_remote_write::decode(&snappy(&req), &Limits::unlimited()) {
            Ok(batch) => check(&batch, &want)?,
            // A label set whose values are all empty is an error.
            Err(Error::InvalidSeries { .. }) => prop_assert!(!all_named),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
    }

    #[test]
    fn v2_round_trip(input in prop::collection::vec((label_sets(), samples()), 0..20)) {
        let mut symbols = vec![String::new()];
        let timeseries = input.iter().map(|(pairs, samples)| v2::TimeSeries {
            labels_refs: pairs.iter().flat_map(|(n, v)| [sym(&mut symbols, n), sym(&mut symbols, v)]).collect(),
            samples: samples.iter().map(|&(timestamp, bits)| v1::Sample { value: f64::from_bits(bits), timestamp }).collect(),
            ..Default::default()
        }).collect();
        let req = v2::Request { symbols, timeseries };
        let want: Vec<_> = input.iter().filter_map(|(p, s)| expected(p, s)).collect();
        let all_named = want.len() == input.len();
        match prom_remote_write::decode_v2(&snappy(&req), &Limits::unlimited()) {
            Ok(batch) => check(&batch, &want)?,
            Err(Error::InvalidSeries { .. }) => prop_assert!(!all_named),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let limits = Limits::default();
        let _ = prom_remote_write::decode_uncompressed(&bytes, &limits);
        let _ = prom_remote_write::decode_v2_uncompressed(&bytes, &limits);
        let _ = prom_remote_write::decode(&bytes, &limits);
        let _ = prom_remote_write::decode_v2(&bytes, &limits);
    }
}
