//! Any body given to the OTLP/HTTP protobuf metrics decoder yields a batch or a one-line error,
//! never a panic. Seed corpus: crates/ingest/testdata/otlp/*.pb.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::otlp::{decode_metrics_proto, OtlpLimits, OtlpOptions};

fuzz_target!(|body: &[u8]| {
    let (opts, limits) = (OtlpOptions::default(), OtlpLimits::default());
    match decode_metrics_proto(body, &opts, &limits) {
        Ok(decoded) => assert!(decoded.batch.sample_count() <= limits.max_samples_per_request),
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }
});
