//! Elasticsearch bulk NDJSON: items and stored entries agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::{es_bulk, LogLimits};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = es_bulk::decode(data, Some("fuzz"), 0, &LogLimits::default()) {
        let stored = b.items.iter().filter(|i| i.error.is_none()).count();
        assert_eq!(stored, b.batch.entry_count());
        let _ = es_bulk::response(&b.items, 1);
    }
});
