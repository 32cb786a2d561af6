//! textfile: `*.prom` files in a directory, written by cron jobs and scripts (pending
//! updates, backups, "reboot required"), exposed as if collected, as node_exporter's
//! textfile collector with `--collector.textfile.directory`.
//!
//! Each file is parsed on its own with the exposition decoder; a file that does not parse,
//! or has client-side timestamps, is skipped whole and sets `node_textfile_scrape_error 1`
//! (the alert `NodeTextFileCollectorScrapeError` watches it). Files read get
//! `node_textfile_mtime_seconds{file}`, so stale files can be alerted on.

use std::path::Path;
use std::time::UNIX_EPOCH;

use telltale_model::{LabelsBuilder, MetricType, Timestamp};

use super::Out;
use crate::error::Result;

/// Largest file read; a larger one counts as an error (node_exporter has no limit, but a
/// runaway script must not exhaust the agent's memory).
const MAX_FILE: u64 = 16 << 20;

/// Reads `dir/*.prom` (nothing if `dir` is empty); see the module docs.
pub(crate) fn textfile(dir: &Path, now: Timestamp, out: &mut Out<'_>) -> Result<()> {
    let mut error = false;
    let mut mtimes: Vec<(String, f64)> = Vec::new();
    if !dir.as_os_str().is_empty() {
        let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "prom") && p.is_file())
                .collect(),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot list the textfile directory");
                error = true;
                Vec::new()
            }
        };
        files.sort();
        for path in files {
            match read(&path, now, out) {
                // node_exporter labels the mtime with the file's full path.
                Ok(mtime) => mtimes.push((path.display().to_string(), mtime)),
                Err(why) => {
                    tracing::debug!(file = %path.display(), error = %why, "textfile skipped");
                    error = true;
                }
            }
        }
    }
    if !mtimes.is_empty() {
        out.family("node_textfile_mtime_seconds", "Unixtime mtime of textfiles successfully read.", MetricType::Gauge);
        for (file, m) in &mtimes {
            out.put(&[("file", file)], *m);
        }
    }
    out.gauge(
        "node_textfile_scrape_error",
        "1 if there was an error opening or reading a file, 0 otherwise",
        if error { 1.0 } else { 0.0 },
    );
    Ok(())
}

/// Adds one file's samples (with the base labels) and returns its mtime in seconds.
fn read(path: &Path, now: Timestamp, out: &mut Out<'_>) -> Result<f64, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    let batch = telltale_ingest::exposition::decode_format(
        &text,
        telltale_ingest::exposition::Format::Prometheus,
        now,
        &telltale_ingest::Limits::unlimited(),
    )
    .map_err(|e| e.to_string())?;
    if batch.iter().any(|(_, s)| s.iter().any(|s| s.t != now)) {
        return Err("textfile contains unsupported client-side timestamps, skipping entire file".into());
    }
    // The base labels (job, instance) win over a file's own, as a scrape's target labels do.
    out.add_decoded(batch, |labels, base| {
        let mut b = LabelsBuilder::new();
        for (k, v) in labels.iter() {
            b.push(k, v);
        }
        for (k, v) in base {
            b.set(k, v);
        }
        b.build().ok()
    });
    let mtime = meta.modified().ok().and_then(|m| m.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
    // Whole seconds, as node_exporter 1.5 reports it.
    Ok(mtime.as_secs() as f64)
}
