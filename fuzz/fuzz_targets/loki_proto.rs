//! Loki push protobuf, raw and snappy; a decoded batch re-encodes to what decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::{loki, LogLimits};

fuzz_target!(|data: &[u8]| {
    let limits = LogLimits::unlimited();
    if let Ok(b) = loki::decode_proto_raw(data, &limits) {
        let again = loki::decode_proto_raw(&loki::encode_proto(&b), &limits).expect("re-encoded batch decodes");
        assert_eq!(again, b);
    }
    let _ = loki::decode_proto(data, &LogLimits::default());
});
