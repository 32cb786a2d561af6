//! Dashboard documents as the dashboards API receives them: any bytes, parsed and checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if telltale_dashboards::validate(&doc).is_ok() {
        // What the store relies on after a successful check.
        assert!(doc["title"].as_str().is_some_and(|t| !t.trim().is_empty()));
        if let Some(rows) = doc.get("rows").and_then(|r| r.as_array()) {
            for row in rows {
                assert!(row.is_object());
            }
        }
    }
});
