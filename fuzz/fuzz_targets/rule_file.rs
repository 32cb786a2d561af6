//! Prometheus rule files as `telltale check rules` reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = telltale_alerting::rulefile::parse(text, "fuzz.yml");
});
