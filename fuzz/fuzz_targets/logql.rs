//! LogQL: any text parses or fails cleanly; what parses runs over a small store without panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_logql::{Engine, EngineOptions, Query};
use telltale_storage::{Direction, MemLogStore};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if telltale_logql::parse(text).is_err() {
        return;
    }
    let store = MemLogStore::new();
    let q = Query { text, start: 0, end: 60_000_000_000, step: 10_000_000_000, limit: 10, direction: Direction::Forward, categorize: false, instant: false };
    let _ = Engine::new(EngineOptions::default()).query(&store, &q);
});
