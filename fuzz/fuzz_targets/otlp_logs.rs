//! OTLP logs, protobuf and JSON (first byte picks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::{otlp, LogLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let r = if first & 1 == 0 {
        otlp::decode_logs_proto(body, 0, &LogLimits::default())
    } else {
        otlp::decode_logs_json(body, 0, &LogLimits::default())
    };
    if let Ok(b) = r {
        assert!(b.iter().all(|(l, _)| l.get("service_name").is_some()));
    }
});
