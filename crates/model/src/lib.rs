//! Telltale's vocabulary, shared by every other crate: [`Labels`], [`Matcher`], [`Sample`],
//! [`WriteBatch`], [`TimeRange`] and [`ErrorKind`]; for logs [`LogEntry`], [`LogBatch`] and
//! [`LineFilter`]; for traces [`Span`] and [`SpanBatch`].
//!
//! No I/O lives here. The one design decision to know: a [`Labels`] set is a single
//! immutable byte buffer (sorted, length-prefixed names and values, like Prometheus's
//! `stringlabels`), so a decoded series costs one allocation, hashing and comparing are
//! a memcmp, and the storage engine can persist the encoded form as is.
#![warn(missing_docs)]

pub mod base64;
mod batch;
mod error;
mod labels;
mod logs;
mod matcher;
mod memo;
mod spans;
mod time;
pub mod units;

pub use batch::{MetricMetadata, MetricType, Sample, WriteBatch, STALE_NAN_BITS};
pub use error::ErrorKind;
pub use labels::{Labels, LabelsBuilder, LabelsError, METRIC_NAME};
pub use logs::{FilterOp, LineFilter, LogBatch, LogEntry, Nanos};
pub use matcher::{anchored_regex, MatchOp, Matcher};
pub use memo::Memo;
pub use spans::{
    attr, AttrValue, KeyValue, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TraceId, UNKNOWN_SERVICE,
};
pub use time::{civil_from_days, TimeRange, Timestamp};

/// True when `v` is Prometheus's staleness marker (a NaN with a specific bit pattern).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}
