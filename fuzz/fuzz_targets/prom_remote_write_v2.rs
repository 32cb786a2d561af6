//! Remote write 2.0: symbols, label refs, metadata; raw protobuf and snappy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::{prom_remote_write, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(batch) = prom_remote_write::decode_v2_uncompressed(data, &limits) {
        for (labels, samples) in batch.iter() {
            assert!(!labels.is_empty());
            assert!(!samples.is_empty());
        }
    }
    let _ = prom_remote_write::decode_v2(data, &limits);
});
