//! Loki push JSON: every decoded stream has labels, no line is over the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::{loki, LogLimits};

fuzz_target!(|data: &[u8]| {
    let limits = LogLimits { max_line_size: 1024, ..LogLimits::default() };
    if let Ok(b) = loki::decode_json(data, &limits) {
        for (labels, entries) in b.iter() {
            assert!(!labels.is_empty());
            assert!(entries.iter().all(|e| e.line.len() <= 1024));
        }
    }
});
