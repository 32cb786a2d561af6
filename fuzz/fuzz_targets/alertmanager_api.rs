//! Bodies of `POST /api/v2/alerts` and `POST /api/v2/silences`, and `filter=` matchers:
//! refused with an error or accepted, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_alerting::am::{matchers, Alertmanager, AlertQuery};

fuzz_target!(|data: &[u8]| {
    let am = Alertmanager::new();
    let now = 1_700_000_000_000;
    let _ = am.post_alerts(data, now);
    let _ = am.post_silence(data, now);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = matchers::parse(s);
        let _ = am.alerts(&AlertQuery { filter: vec![s.to_string()], ..Default::default() }, now);
    }
    let (due, _) = am.tick(now + 3_600_000);
    drop(due);
});
