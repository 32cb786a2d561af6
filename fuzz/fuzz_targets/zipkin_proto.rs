//! Zipkin v2 protobuf (`ListOfSpans`): any body decodes or fails with a one-line error; what
//! `to_json` renders for the read API decodes as Zipkin JSON, refusing nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::otlp::TraceLimits;
use telltale_ingest::zipkin;

fuzz_target!(|body: &[u8]| {
    match zipkin::decode_proto(body, &TraceLimits::default()) {
        Ok(d) => {
            assert!(d.batch.spans().all(|(_, _, s)| !s.trace_id.is_zero() && !s.span_id.is_zero()));
            let json = zipkin::to_json(&d.batch).to_string();
            let again = zipkin::decode_json(json.as_bytes(), &TraceLimits::default()).expect("rendered JSON decodes");
            assert_eq!((again.rejected, again.batch.span_count()), (0, d.batch.span_count()));
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }
});
