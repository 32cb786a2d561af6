use std::time::Duration;

use serde::{Deserialize, Serialize};
pub use telltale_walfile::WalOptions;

use crate::error::{Error, Result};

/// How the trace store keeps spans (`storage.traces` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Segments whose newest span ended longer ago than this are deleted (`"15d"`); `"0s"`
    /// keeps spans forever.
    #[serde(with = "telltale_model::units::duration")]
    pub retention_time: Duration,
    /// When segments and WAL together pass this many bytes, the oldest segments are deleted
    /// (`"50GiB"`); 0: no size limit.
    #[serde(with = "telltale_model::units::size")]
    pub retention_size: u64,
    /// The in-memory head is written out as a segment once its spans pass this size, counted
    /// as encoded (`"64MiB"`); the head's memory is about three times this.
    #[serde(with = "telltale_model::units::size")]
    pub head_max_bytes: u64,
    /// ... or once its oldest span arrived this long ago (`"5m"`).
    #[serde(with = "telltale_model::units::duration")]
    pub head_max_age: Duration,
    /// Spans per block (the unit a read decompresses and the per-block indexes skip).
    pub block_spans: usize,
    /// zstd level of segment blocks (1-22).
    pub compression_level: i32,
    /// A trace read returns at most this many spans and says it is partial past them.
    pub max_spans_per_trace: usize,
    /// Segments smaller than this are merged into bigger ones (`"256MiB"`), joining the parts of
    /// traces that crossed a head flush; 0 turns compaction off.
    #[serde(with = "telltale_model::units::size")]
    pub compaction_target: u64,
    /// Tail sampling of what is kept (off by default: everything is kept).
    pub sampling: Sampling,
    /// WAL settings.
    pub wal: WalOptions,
}

/// Tail sampling, decided per trace when the head is written out as a segment (a trace's spans
/// that arrived within one head window, `head_max_age` and up, are decided together). It
/// applies to storage only: reads of the head see every span, and the RED metrics count every
/// span before sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    /// Sample at all.
    pub enabled: bool,
    /// Keep every trace with a span whose status is error.
    pub keep_errors: bool,
    /// Keep every trace at least this long, first start to last end (`"1s"`; `"0s"`: none by
    /// duration).
    #[serde(with = "telltale_model::units::duration")]
    pub keep_slower_than: Duration,
    /// Keep this percentage of the other traces, chosen by trace id (so every part of a trace,
    /// and every server sampling the same way, makes the same choice).
    pub keep_percent: f64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { enabled: false, keep_errors: true, keep_slower_than: Duration::from_secs(1), keep_percent: 10.0 }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retention_time: Duration::from_secs(15 * 86_400),
            retention_size: 0,
            head_max_bytes: 64 << 20,
            head_max_age: Duration::from_secs(5 * 60),
            block_spans: 8192,
            compression_level: 3,
            max_spans_per_trace: 100_000,
            compaction_target: 256 << 20,
            sampling: Sampling::default(),
            wal: WalOptions::default(),
        }
    }
}

impl Options {
    /// Checks values that cannot work.
    pub fn validate(&self) -> Result<()> {
        if !(1..=22).contains(&self.compression_level) {
            return Err(Error::InvalidOptions("compression_level must be between 1 and 22".into()));
        }
        if self.block_spans < 16 {
            return Err(Error::InvalidOptions("block_spans must be at least 16".into()));
        }
        if self.head_max_bytes < 1 << 16 {
            return Err(Error::InvalidOptions("head_max_bytes must be at least 64KiB".into()));
        }
        if self.max_spans_per_trace == 0 {
            return Err(Error::InvalidOptions("max_spans_per_trace must be at least 1".into()));
        }
        if !(0.0..=100.0).contains(&self.sampling.keep_percent) {
            return Err(Error::InvalidOptions("sampling.keep_percent must be between 0 and 100".into()));
        }
        self.wal.validate().map_err(Error::InvalidOptions)
    }
}
