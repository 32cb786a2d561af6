//! Syslog: any bytes parse (a message that is no format is kept whole); framing never loses
//! bytes it was given as complete messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_ingest::{syslog, LogLimits};

fuzz_target!(|data: &[u8]| {
    let m = syslog::parse(data, 0);
    assert!(!m.facility.is_empty() && !m.severity.is_empty());
    let _ = syslog::decode(&[data], 0, &LogLimits::default());
    let mut f = syslog::Framer::new();
    for chunk in data.chunks(7) {
        for msg in f.push(chunk, 4096) {
            assert!(msg.len() <= 4096);
        }
    }
    let _ = f.finish();
});
