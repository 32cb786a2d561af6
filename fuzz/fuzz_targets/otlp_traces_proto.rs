//! OTLP traces protobuf: any body decodes or fails with a one-line error; every stored span has
//! valid ids; a decoded batch re-encodes (`encode_traces_proto`) to what decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::otlp::{decode_traces_proto, encode_traces_proto, TraceLimits};

fuzz_target!(|body: &[u8]| {
    match decode_traces_proto(body, &TraceLimits::default()) {
        Ok(d) => {
            assert!(d.batch.spans().all(|(_, _, s)| !s.trace_id.is_zero() && !s.span_id.is_zero()));
            assert_eq!(d.rejected == 0, d.reason.is_none());
            let again = decode_traces_proto(&encode_traces_proto(&d.batch), &TraceLimits::unlimited())
                .expect("a re-encoded batch decodes");
            assert_eq!(again.rejected, 0);
            // Debug, not ==: a NaN attribute is not equal to itself.
            assert_eq!(format!("{:?}", again.batch), format!("{:?}", d.batch));
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }
});
