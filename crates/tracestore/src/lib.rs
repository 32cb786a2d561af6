//! Telltale's trace store: where every span the server accepts is kept, and read back by
//! trace id (with no time range needed), by search, and as a catalogue of services,
//! operations and attribute values.
//!
//! Inputs: [`telltale_model::SpanBatch`]es; outputs: whole traces, parts of traces matching a
//! [`Search`], catalogue lists. Data flow: a write goes to the WAL (acknowledged once it is
//! there, so it survives `kill -9`) and to the in-memory head, which is indexed by trace id;
//! the head becomes an immutable segment once it is large or old; maintenance deletes segments
//! past retention.
//!
//! The one design decision to know: a segment holds its spans sorted by trace id and cut into
//! blocks at trace boundaries, and its footer lists each block's trace-id range. A trace-id
//! lookup is then a binary search per segment and one block read, whatever the time range,
//! and a trace lives in one place per segment. The footer's per-block services, span names,
//! longest duration, error flag and attribute bloom let a search skip blocks. The on-disk
//! format is in `docs/format.md`.
#![warn(missing_docs)]

mod codec;
mod db;
mod error;
mod options;
mod segment;

pub use db::{Search, Stats, TraceDb, TraceRead, WriteStats};
pub use error::{Error, Result};
pub use options::{Options, Sampling, WalOptions};
pub use segment::TagScope;
