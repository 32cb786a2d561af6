//! The crate's one integration-test binary: real client payloads under `testdata/` with
//! snapshots of the decoded batch, and proptest round trips through real encoders (prost).

// Test helpers and the prost message structs are `pub` for use across modules of this binary.
#![allow(unreachable_pub)]

mod exposition;
mod influx;
mod prom_remote_write;
mod prompb;
mod snapshots;

use telltale_model::WriteBatch;

/// A batch as plain text, one series per line (`labels t value`), then the metadata: the
/// format of the `.decoded` snapshot files.
pub fn render(batch: &WriteBatch) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (labels, samples) in batch.iter() {
        for s in samples {
            let v = if telltale_model::is_stale_nan(s.v) { "StaleNaN".to_string() } else { format!("{:?}", s.v) };
            writeln!(out, "{labels} {} {v}", s.t).unwrap();
        }
    }
    for m in &batch.metadata {
        writeln!(out, "# {} {} help={:?} unit={:?}", m.metric_family, m.kind.as_str(), m.help, m.unit).unwrap();
    }
    out
}
