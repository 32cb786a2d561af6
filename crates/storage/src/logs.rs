//! The log side of the seam: [`LogWriter`] makes a [`LogBatch`] durable, [`LogReader`] reads
//! it back by stream matchers, time and line filters, so a store can skip whole blocks
//! (streams that do not match, times outside the range, needles absent from a block's index)
//! before it decodes a line.
//!
//! Reads push rows into a visitor instead of returning vectors: a query over millions of
//! lines never holds them all, lines are borrowed from the store's buffers, and the visitor
//! can stop a stream (enough lines) or the whole scan.

use telltale_model::{Labels, LineFilter, LogBatch, Matcher, Nanos, TimeRange};

use crate::{Maintenance, Result};

/// Counts from one [`LogWriter::write_logs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogWriteStats {
    /// Entries stored.
    pub entries: usize,
    /// Bytes of the stored lines.
    pub bytes: usize,
    /// Streams seen for the first time.
    pub new_streams: usize,
    /// Entries identical to one already stored (same stream, timestamp and line): dropped,
    /// as Loki does, so a retried push does not duplicate lines.
    pub duplicates: usize,
    /// Entries refused because they are older than the store keeps (retention).
    pub too_old: usize,
}

/// Order in which a stream's rows are visited (Loki's `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forward,
    /// Newest first.
    Backward,
}

/// What to read: streams whose labels satisfy every matcher, entries whose timestamp lies
/// in the inclusive nanosecond `range` and whose line passes every filter.
#[derive(Debug, Clone)]
pub struct LogSelect<'a> {
    /// Inclusive range, in nanoseconds.
    pub range: TimeRange,
    /// Stream matchers; all must hold (a missing label matches as the empty string).
    pub matchers: &'a [Matcher],
    /// Line filters; all must hold. The store applies them exactly.
    pub filters: &'a [LineFilter],
    /// Row order within a stream.
    pub direction: Direction,
    /// The visitor never reads [`LogRow::line`] (it counts rows), so a store may hand it an
    /// empty string instead of decoding lines. Ignored when there are filters.
    pub skip_lines: bool,
}

/// One row handed to a visitor; the strings are borrowed from the store.
#[derive(Debug, Clone, Copy)]
pub struct LogRow<'a> {
    /// Nanoseconds since the epoch.
    pub ts: Nanos,
    /// The line.
    pub line: &'a str,
    /// Structured metadata pairs, sorted by name.
    pub metadata: &'a [(&'a str, &'a str)],
    /// Names this row's metadata within one read: rows of a stream with the same non-zero
    /// id have the same metadata, so a reader may work on it once (0: not named).
    pub metadata_id: u64,
}

/// What a visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// The next row.
    Continue,
    /// No more rows of this stream; go on with the next stream.
    NextStream,
    /// Stop the whole scan.
    Stop,
}

/// Sizes Loki's `/index/stats` reports for a selector and range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Streams with data in the range.
    pub streams: u64,
    /// Stored blocks (head included as one per stream) holding that data.
    pub chunks: u64,
    /// Entries in the range.
    pub entries: u64,
    /// Bytes of their lines.
    pub bytes: u64,
}

/// Stores log entries. Shared between threads; each call is one unit of durability.
pub trait LogWriter: Send + Sync {
    /// Stores `batch`. When this returns `Ok`, the stored entries survive a crash of the
    /// process. Entries of one stream may arrive in any time order.
    fn write_logs(&self, batch: &LogBatch) -> Result<LogWriteStats>;
}

/// Reads log entries.
///
/// `select_logs` visits streams in label order; each stream's rows come consecutively
/// (never interleaved with another stream's), ordered by timestamp in `q.direction`, rows with
/// equal timestamps in the order they were written (reversed for backward).
pub trait LogReader: Send + Sync {
    /// Visits every matching row, as described on the trait.
    fn select_logs(&self, q: &LogSelect<'_>, visit: &mut dyn FnMut(&Labels, &LogRow<'_>) -> Visit) -> Result<()>;

    /// Labels of the streams with at least one entry in `range` (nanoseconds), sorted.
    fn log_streams(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<Labels>>;

    /// Label names of those streams, sorted, without repeats.
    fn log_label_names(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut names: Vec<String> =
            self.log_streams(range, matchers)?.iter().flat_map(|l| l.iter().map(|(n, _)| n.to_string())).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Values of label `name` over those streams, sorted, without repeats.
    fn log_label_values(&self, name: &str, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut values: Vec<String> =
            self.log_streams(range, matchers)?.iter().filter_map(|l| l.get(name).map(str::to_string)).collect();
        values.sort();
        values.dedup();
        Ok(values)
    }

    /// Streams, blocks, entries and bytes in `range` for `matchers`.
    fn log_stats(&self, range: TimeRange, matchers: &[Matcher]) -> Result<LogStats>;
}

/// A log store that writes, reads and has upkeep; what the server holds.
pub trait LogStore: LogWriter + LogReader + Maintenance {}
impl<T: LogWriter + LogReader + Maintenance> LogStore for T {}
