//! LogQL, Loki's query language, evaluated over the [`telltale_storage::LogReader`] seam.
//!
//! Input: a query string and a time (instant) or a `[start, end, step]` range, in
//! nanoseconds. Output: log streams (for log queries) or samples (for metric queries), in
//! the shapes Loki's HTTP API returns ([`QueryResult`]).
//!
//! The one design decision to know: line filters that directly follow the selector are
//! pushed down to the store ([`telltale_storage::LogSelect::filters`]), so the store's index
//! skips blocks that cannot match before a line is decoded; everything else (parsers, label
//! filters, formatting) runs here, row by row. Additive range aggregations
//! (`count_over_time`, `rate`, `bytes_over_time`, `sum_over_time`, ...) are folded into
//! per-step buckets as rows stream by, so counting ten million lines keeps no line in memory.
//! Loki's behaviour is the reference; where Telltale differs it is written in `docs/logs.md`.
#![warn(missing_docs)]

pub mod ast;
mod engine;
mod error;
mod json;
mod lexer;
mod parser;
pub mod pipeline;
mod template;
mod value;

pub use engine::{rule_query, Engine, EngineOptions, LogLine, LogStream, Query, QueryResult, StepSeries};
pub use error::{Error, Result};
pub use parser::parse;
pub use value::fmt_num;
