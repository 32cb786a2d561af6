//! Remote write 1.0: the raw protobuf layer (most inputs) and the snappy layer on top.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::{prom_remote_write, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(batch) = prom_remote_write::decode_uncompressed(data, &limits) {
        // Every decoded series is a valid, non-empty label set with samples.
        for (labels, samples) in batch.iter() {
            assert!(!labels.is_empty());
            assert!(!samples.is_empty());
        }
    }
    let _ = prom_remote_write::decode(data, &limits);
});
