//! The log vocabulary: a [`LogEntry`] (nanosecond timestamp, line, structured metadata) and a
//! [`LogBatch`] of entries grouped by stream, what every log decoder produces and every log
//! store consumes. Also the [`LineFilter`] a query pushes down to a store.

use std::fmt;
use std::ops::Range;

use regex::Regex;

use crate::Labels;

/// Nanoseconds since the Unix epoch, as Loki counts a log entry's time.
pub type Nanos = i64;

/// One log line of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When it happened, in nanoseconds since the epoch.
    pub ts: Nanos,
    /// The line itself, as sent (no trailing newline).
    pub line: String,
    /// Per-entry name/value pairs kept beside the line (Loki's structured metadata, the
    /// other fields of an Elasticsearch document, OTLP attributes), not part of the stream.
    pub metadata: Labels,
}

impl LogEntry {
    /// An entry without structured metadata.
    pub fn new(ts: Nanos, line: impl Into<String>) -> Self {
        Self { ts, line: line.into(), metadata: Labels::empty() }
    }
}

/// What a log decoder produces and a log writer consumes: streams (label sets) with their
/// entries. All entries live in one vector, so a batch of N streams costs N label
/// allocations and no per-stream vector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogBatch {
    streams: Vec<(Labels, Range<u32>)>,
    entries: Vec<LogEntry>,
    /// Lines the decoder shortened to the configured line size limit (counted, not hidden).
    pub truncated_lines: usize,
}

impl LogBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds entries of stream `labels`; a stream pushed twice appears twice.
    pub fn push(&mut self, labels: Labels, entries: impl IntoIterator<Item = LogEntry>) {
        let start = self.entries.len() as u32;
        self.entries.extend(entries);
        self.streams.push((labels, start..self.entries.len() as u32));
    }

    /// Adds one entry to the last stream if it has the same labels, else starts a new stream.
    pub fn push_entry(&mut self, labels: &Labels, entry: LogEntry) {
        let n = self.entries.len() as u32;
        match self.streams.last_mut() {
            Some((l, r)) if l == labels && r.end == n => r.end += 1,
            _ => self.streams.push((labels.clone(), n..n + 1)),
        }
        self.entries.push(entry);
    }

    /// Each stream with its entries, in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Labels, &[LogEntry])> + '_ {
        self.streams.iter().map(|(l, r)| (l, &self.entries[r.start as usize..r.end as usize]))
    }

    /// Number of stream entries (a stream pushed twice counts twice).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Number of log entries over all streams.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of all lines (what Loki's rate limits count).
    pub fn line_bytes(&self) -> usize {
        self.entries.iter().map(|e| e.line.len()).sum()
    }

    /// Whether the batch holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Moves every stream of `other` into this batch.
    pub fn extend(&mut self, other: LogBatch) {
        let mut entries = other.entries.into_iter();
        for (l, r) in other.streams {
            let n = (r.end - r.start) as usize;
            self.push(l, entries.by_ref().take(n));
        }
        self.truncated_lines += other.truncated_lines;
    }
}

/// How a [`LineFilter`] tests a line (LogQL's `|=`, `!=`, `|~`, `!~`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `|= "text"`: the line contains the text.
    Contains,
    /// `!= "text"`: the line does not contain the text.
    NotContains,
    /// `|~ "re"`: the regular expression matches somewhere in the line (unanchored, as Loki).
    Regex,
    /// `!~ "re"`: the regular expression matches nowhere in the line.
    NotRegex,
}

/// A line filter a query hands to a store, so the store can skip blocks that cannot match
/// (a `Contains` needle absent from a block's index) and return only matching lines.
#[derive(Clone)]
pub struct LineFilter {
    /// The test.
    pub op: FilterOp,
    /// The text or the regular expression's source.
    pub value: String,
    regex: Option<Regex>,
}

impl LineFilter {
    /// A filter; regular expressions are compiled here (unanchored, as in Loki).
    pub fn new(op: FilterOp, value: impl Into<String>) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            FilterOp::Regex | FilterOp::NotRegex => Some(Regex::new(&value)?),
            FilterOp::Contains | FilterOp::NotContains => None,
        };
        Ok(Self { op, value, regex })
    }

    /// `|= "text"`.
    pub fn contains(text: impl Into<String>) -> Self {
        Self { op: FilterOp::Contains, value: text.into(), regex: None }
    }

    /// Whether `line` passes.
    pub fn matches(&self, line: &str) -> bool {
        match (self.op, &self.regex) {
            (FilterOp::Contains, _) => line.contains(self.value.as_str()),
            (FilterOp::NotContains, _) => !line.contains(self.value.as_str()),
            (FilterOp::Regex, Some(re)) => re.is_match(line),
            (FilterOp::NotRegex, Some(re)) => !re.is_match(line),
            (FilterOp::Regex | FilterOp::NotRegex, None) => unreachable!("regex compiled in new"),
        }
    }
}

impl fmt::Display for LineFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            FilterOp::Contains => "|=",
            FilterOp::NotContains => "!=",
            FilterOp::Regex => "|~",
            FilterOp::NotRegex => "!~",
        };
        write!(f, "{op} {:?}", self.value)
    }
}

impl fmt::Debug for LineFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for LineFilter {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.value == other.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_groups_entries_by_stream() {
        let a = Labels::from_pairs([("job", "a")]).unwrap();
        let b = Labels::from_pairs([("job", "b")]).unwrap();
        let mut batch = LogBatch::new();
        batch.push_entry(&a, LogEntry::new(1, "x"));
        batch.push_entry(&a, LogEntry::new(2, "yy"));
        batch.push_entry(&b, LogEntry::new(3, "z"));
        batch.push(a.clone(), [LogEntry::new(4, "w")]);
        assert_eq!(batch.stream_count(), 3);
        assert_eq!((batch.entry_count(), batch.line_bytes()), (4, 5));
        let sizes: Vec<_> = batch.iter().map(|(l, e)| (l.get("job").unwrap(), e.len())).collect();
        assert_eq!(sizes, [("a", 2), ("b", 1), ("a", 1)]);
        let mut other = LogBatch::new();
        other.extend(batch.clone());
        assert_eq!(other, batch);
    }

    #[test]
    fn filters() {
        assert!(LineFilter::contains("err").matches("an error"));
        assert!(LineFilter::new(FilterOp::NotContains, "err").unwrap().matches("fine"));
        assert!(LineFilter::new(FilterOp::Regex, "e.r").unwrap().matches("an error"));
        assert!(!LineFilter::new(FilterOp::NotRegex, "^an").unwrap().matches("an error"));
        assert!(LineFilter::new(FilterOp::Regex, "(").is_err());
        assert_eq!(LineFilter::contains("a\"b").to_string(), r#"|= "a\"b""#);
    }
}
