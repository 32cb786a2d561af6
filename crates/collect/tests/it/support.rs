//! Helpers shared by the scrape tests: a sink that records, a wall clock, a target lookup.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use telltale_collect::Sink;
use telltale_model::WriteBatch;

/// Keeps every batch written.
#[derive(Default)]
pub(crate) struct Recorder(Mutex<Vec<WriteBatch>>);

impl Sink for Recorder {
    fn write(&self, _source: &'static str, batch: &WriteBatch) -> telltale_collect::Result<()> {
        self.0.lock().unwrap().push(batch.clone());
        Ok(())
    }
}

impl Recorder {
    /// The newest `up` of job `job`.
    pub(crate) fn up(&self, job: &str) -> Option<f64> {
        let batches = self.0.lock().unwrap();
        let mut last = None;
        for b in batches.iter() {
            for (l, s) in b.iter() {
                if l.metric_name() == Some("up") && l.get("job") == Some(job) {
                    last = s.last().map(|s| s.v);
                }
            }
        }
        last
    }

    pub(crate) fn has(&self, job: &str, metric: &str) -> bool {
        let batches = self.0.lock().unwrap();
        batches.iter().any(|b| b.iter().any(|(l, _)| l.metric_name() == Some(metric) && l.get("job") == Some(job)))
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn clock() -> telltale_collect::scrape::Clock {
    Arc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
}

/// The active target of scrape pool `job` in a `/api/v1/targets` `data` object.
pub(crate) fn target(targets: &Value, job: &str) -> Value {
    targets["activeTargets"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["scrapePool"] == job))
        .cloned()
        .unwrap_or(Value::Null)
}
