//! The seam between everything that writes or reads metrics and the engine that stores
//! them. Decoders produce a [`WriteBatch`]; a [`MetricWriter`] makes it durable; query
//! engines read only through [`MetricReader`] and never name the engine behind it.
//!
//! The traits are synchronous: storage work is CPU and disk work, and async callers go
//! through `spawn_blocking`. [`MemStore`] is the reference implementation, and
//! [`conformance`] holds the one test suite every implementation must pass
//! (`storage_conformance!(...)`). The log side is the same shape: [`LogWriter`], [`LogReader`],
//! [`MemLogStore`], and `log_conformance!` in [`logconformance`].
#![warn(missing_docs)]

pub mod conformance;
mod error;
pub mod logconformance;
pub mod logs;
mod mem;
mod memlogs;

pub use error::{Error, Result};
pub use logs::{Direction, LogReader, LogRow, LogSelect, LogStats, LogStore, LogWriteStats, LogWriter, Visit};
pub use mem::MemStore;
pub use memlogs::MemLogStore;
use telltale_model::{Labels, Matcher, Sample, TimeRange, WriteBatch};

/// Counts from one [`MetricWriter::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Samples stored.
    pub samples: usize,
    /// Series seen for the first time.
    pub new_series: usize,
    /// Samples refused, by reason; the rest of the batch was stored.
    pub rejected: Rejected,
}

/// Samples a write refused. The batch's other samples are stored regardless, so a
/// client that does not retry a 4xx loses only what was wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Older than the newest sample of their series by more than the out-of-order window.
    pub out_of_order: usize,
    /// Older than anything the store still accepts (before the head or retention).
    pub too_old: usize,
    /// Same timestamp as a stored sample but a different value.
    pub duplicate_timestamp: usize,
    /// A human-readable description of the first refusal (series and timestamp).
    pub first: Option<String>,
}

impl Rejected {
    /// Total samples refused.
    pub fn total(&self) -> usize {
        self.out_of_order + self.too_old + self.duplicate_timestamp
    }
}

/// A series and its samples within the range asked for, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Its samples, strictly increasing in time.
    pub samples: Vec<Sample>,
}

/// Stores samples. Shared between threads; each call is one unit of durability.
pub trait MetricWriter: Send + Sync {
    /// Stores every acceptable sample of `batch`. When this returns `Ok`, those samples
    /// survive a crash of the process; refusals are counted in [`WriteStats::rejected`].
    fn write(&self, batch: &WriteBatch) -> Result<WriteStats>;
}

/// Reads samples by label matchers and time. Every method takes an inclusive range;
/// every matcher must hold (a missing label matches as the empty string). Results are
/// sorted: series by their labels, names and values lexicographically.
pub trait MetricReader: Send + Sync {
    /// Series with at least one sample in `range`, and those samples.
    fn select(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<Series>>;

    /// Labels of the series that have data in `range`. An engine may include a series
    /// whose stored chunk overlaps the range without a sample inside it, as Prometheus does.
    fn series(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<Labels>>;

    /// Label names used by the series [`MetricReader::series`] would return
    /// (all series when `matchers` is empty).
    fn label_names(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<String>>;

    /// Values of label `name` over the series [`MetricReader::series`] would return.
    fn label_values(&self, name: &str, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<String>>;
}

/// A store that both writes and reads; what the server and the tests hold.
pub trait MetricStore: MetricWriter + MetricReader + Maintenance {}
impl<T: MetricWriter + MetricReader + Maintenance> MetricStore for T {}

/// What the server needs from any store besides reads and writes: a forced flush,
/// numbers for `/metrics`, and the problems found on open for `/-/ready`.
pub trait Maintenance: Send + Sync {
    /// Persists everything buffered in memory into immutable on-disk files (what
    /// `/internal/force_flush` calls). A store without such files does nothing.
    fn flush(&self) -> Result<()>;

    /// The store's own numbers (series, samples, bytes on disk, ...), served on `/metrics`.
    fn stats(&self) -> Vec<Stat>;

    /// Files found corrupt or missing, each already quarantined, in words an operator can
    /// act on (path and reason). Empty when all is well.
    fn problems(&self) -> Vec<String>;
}

/// One self-metric of a store, rendered by the server as `name value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    /// Metric name, prefixed `telltale_`.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: telltale_model::MetricType,
    /// Current value.
    pub value: f64,
}

/// Whether `labels` satisfies every matcher.
pub fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}
