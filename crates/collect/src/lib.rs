//! Telltale's own sources of metrics: the built-in host collectors ([`host`]), Prometheus-style
//! scraping ([`scrape`]), and the agent's disk-buffered remote-write shipper ([`agent`]).
//!
//! Inputs: /proc and /sys (host), HTTP targets (scrape), configuration (`collectors:`,
//! `scrape_configs:`, `agent:`). Outputs: [`telltale_model::WriteBatch`]es handed to a
//! [`Sink`]: the server's store in `telltale serve`, the on-disk queue in `telltale agent`.
//! Nothing here knows which one it writes to.
//!
//! The one design decision to know: everything a collector or a scrape produces uses
//! node_exporter's and Prometheus's names, labels, units and filtering (their default flags),
//! so existing dashboards and alert rules work unchanged. Where Telltale differs, and why, is
//! written down in `docs/collect.md`.
#![warn(missing_docs)]

pub mod agent;
mod error;
pub mod host;
pub mod scrape;
mod staleness;
pub mod tls;

use telltale_model::WriteBatch;

pub use error::{Error, Result};
pub use staleness::Staleness;

/// Where collected and scraped batches go. Called on a blocking thread (storage is
/// synchronous); an implementation may block until the batch is durable.
pub trait Sink: Send + Sync + 'static {
    /// Stores or queues `batch`; `source` names the producer for self-metrics
    /// (`collectors`, `scrape`).
    fn write(&self, source: &'static str, batch: &WriteBatch) -> Result<()>;
}
