use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use telltale_walfile::WalOptions;

use crate::error::{Error, Result};

/// How the log store keeps logs (`storage.logs` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Segments whose newest line is older than this (counted back from now) are deleted
    /// (`"30d"`); `"0s"` keeps logs forever.
    #[serde(with = "telltale_model::units::duration")]
    pub retention_time: Duration,
    /// When segments and WAL together pass this many bytes, the oldest segments are deleted
    /// (`"100GiB"`); 0: no size limit.
    #[serde(with = "telltale_model::units::size")]
    pub retention_size: u64,
    /// Shorter retention for some streams, e.g. `[{selector: '{env="dev"}', period: 1d}]`.
    /// Applied when a segment is rewritten, one block (a stream's part of a segment) at a time.
    pub retention_streams: Vec<StreamRetention>,
    /// The in-memory head is written out as a segment once its lines pass this size
    /// (`"32MiB"`). Memory for heads stays under three times this (one being written, one
    /// filling, each at most 1.5 times), plus about 60 bytes per line.
    #[serde(with = "telltale_model::units::size")]
    pub head_max_bytes: u64,
    /// ... or once its oldest line arrived this long ago (`"15m"`).
    #[serde(with = "telltale_model::units::duration")]
    pub head_max_age: Duration,
    /// Most lines in one block (a stream's row group in a segment): the unit the needle
    /// index skips.
    pub block_lines: usize,
    /// zstd level of segment pages as compaction writes them (1-22); higher packs tighter and
    /// writes slower.
    pub compression_level: i32,
    /// zstd level of the segments a head flush writes (1-22). Low, because the flusher must
    /// keep up with ingest (at level 6 compression was a third of ingest CPU); compaction
    /// rewrites them at `compression_level`.
    pub flush_compression_level: i32,
    /// Segments smaller than half of this are merged, into segments of about this much input
    /// each (`"128MiB"`; 0 turns compaction off); once writes stop, the merge is cut by time. Bigger merges share one id dictionary among more
    /// lines (fewer bytes on disk) but hold it in memory while they write: 128 MiB of flush
    /// segments, about 2.4M lines, hold 40 MB.
    #[serde(with = "telltale_model::units::size")]
    pub compaction_target: u64,
    /// Store lines as text instead of as templates and variables (`false`, the default, packs
    /// them about a third tighter). Only for tools that read the segment files' Parquet
    /// directly and want a `line` column; Telltale reads both.
    pub plain_lines: bool,
    /// WAL settings.
    pub wal: WalOptions,
}

/// A per-stream retention rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRetention {
    /// A stream selector, `{env="dev"}`.
    pub selector: String,
    /// How long its lines are kept.
    #[serde(with = "telltale_model::units::duration")]
    pub period: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retention_time: Duration::from_secs(30 * 86_400),
            retention_size: 0,
            retention_streams: Vec::new(),
            head_max_bytes: 32 << 20,
            head_max_age: Duration::from_secs(15 * 60),
            block_lines: 16_384,
            compression_level: 12,
            flush_compression_level: 1,
            compaction_target: 128 << 20,
            plain_lines: false,
            wal: WalOptions::default(),
        }
    }
}

impl Options {
    /// Checks values that cannot work.
    pub fn validate(&self) -> Result<()> {
        for (name, level) in
            [("compression_level", self.compression_level), ("flush_compression_level", self.flush_compression_level)]
        {
            if !(1..=22).contains(&level) {
                return Err(Error::InvalidOptions(format!("{name} must be between 1 and 22")));
            }
        }
        if self.block_lines < 16 {
            return Err(Error::InvalidOptions("block_lines must be at least 16".into()));
        }
        if self.head_max_bytes < 1 << 16 {
            return Err(Error::InvalidOptions("head_max_bytes must be at least 64KiB".into()));
        }
        self.wal.validate().map_err(Error::InvalidOptions)?;
        for r in &self.retention_streams {
            crate::selector::parse(&r.selector)
                .map_err(|e| Error::InvalidOptions(format!("retention_streams selector {:?}: {e}", r.selector)))?;
        }
        Ok(())
    }
}
