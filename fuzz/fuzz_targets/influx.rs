//! Line protocol with every precision (the first byte picks it) and a `db` label.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::influx::{self, Precision};
use telltale_ingest::Limits;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let precision = ["ns", "us", "ms", "s", "m", "h"][usize::from(first) % 6].parse::<Precision>().unwrap();
    if let Ok(batch) = influx::decode(body, precision, 1_700_000_000_000, Some("fuzz"), &Limits::default()) {
        for (labels, samples) in batch.iter() {
            assert!(labels.metric_name().is_some());
            assert_eq!(samples.len(), 1);
        }
    }
});
