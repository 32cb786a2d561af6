//! Live tail: every accepted log batch is offered to the subscribers of
//! `/loki/api/v1/tail`, who filter it with their own query. Nothing is buffered for a
//! subscriber that falls behind: it is told how many batches it missed, as Loki reports
//! dropped entries.

use std::sync::Arc;

use telltale_model::LogBatch;
use tokio::sync::broadcast;

/// Batches a subscriber may lag before it misses some.
const CAPACITY: usize = 1024;

/// The broadcast point of accepted log batches, each with its tenant (subscribers keep their
/// own tenant's).
#[derive(Debug)]
pub(crate) struct TailHub {
    tx: broadcast::Sender<Arc<(String, LogBatch)>>,
}

impl Default for TailHub {
    fn default() -> Self {
        Self { tx: broadcast::channel(CAPACITY).0 }
    }
}

impl TailHub {
    /// Offers `tenant`'s `batch` to the subscribers, if there are any (no copy otherwise).
    pub(crate) fn publish(&self, tenant: &str, batch: &LogBatch) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new((tenant.to_string(), batch.clone())));
        }
    }

    /// A new subscription to every tenant's batches.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<(String, LogBatch)>> {
        self.tx.subscribe()
    }
}
