//! OTLP/JSON traces: any body decodes or fails with a one-line error; a decoded batch rendered
//! by `resource_spans_json` (what the Tempo read API serves) decodes to the same batch.
//! Seed corpus: crates/ingest/testdata/otlp_traces/*.json.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::otlp::{decode_traces_json, resource_spans_json, TraceLimits};

fuzz_target!(|body: &[u8]| {
    match decode_traces_json(body, &TraceLimits::default()) {
        Ok(d) => {
            assert!(d.batch.spans().all(|(_, _, s)| !s.trace_id.is_zero() && !s.span_id.is_zero()));
            let json = serde_json::json!({ "resourceSpans": resource_spans_json(&d.batch) }).to_string();
            let again = decode_traces_json(json.as_bytes(), &TraceLimits::unlimited()).expect("rendered JSON decodes");
            assert_eq!(again.rejected, 0);
            assert_eq!(format!("{:?}", again.batch), format!("{:?}", d.batch));
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }
});
