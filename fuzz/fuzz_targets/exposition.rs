//! Exposition text in both formats, with the first byte choosing the format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::exposition::{self, Format};
use telltale_ingest::Limits;

fuzz_target!(|data: &[u8]| {
    let Some((&first, text)) = data.split_first() else { return };
    let format = if first & 1 == 0 { Format::Prometheus } else { Format::OpenMetrics };
    if let Ok(batch) = exposition::decode_format(text, format, 1_700_000_000_000, &Limits::default()) {
        for (labels, _) in batch.iter() {
            assert!(labels.metric_name().is_some_and(|n| !n.is_empty()));
        }
    }
    let _ = exposition::decode(data, 0, &Limits::default());
});
