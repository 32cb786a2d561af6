//! PromQL evaluation for Telltale: parses with the `promql-parser` crate and evaluates over
//! the [`telltale_storage::MetricReader`] seam, never a concrete store.
//!
//! Input: a query string plus an instant or a `[start, end, step]` range; output: a
//! [`Value`] (scalar, string, vector or matrix) with Prometheus 3.x semantics for float
//! samples, plus annotations. [`Value::to_prometheus_json`] gives the HTTP API's `data`.
//!
//! The one design decision to know: like Prometheus's engine, every node is evaluated for
//! all steps at once, so an instant query is a range query with one step and per-series
//! work (grouping keys, match signatures) happens once per series rather than per step.
//! The metric name is removed lazily (Prometheus 3's delayed name removal) when the query
//! finishes. [`promqltest`] runs Prometheus's own test scripts against this engine.
#![warn(missing_docs)]

mod aggregate;
mod binary;
mod engine;
mod error;
mod eval;
mod functions;
mod hash;
mod histogram;
pub mod promqltest;
mod value;

pub use engine::{parse, Annotations, Engine, EngineOptions, QueryOutput};
pub use error::{Error, Result};
pub use value::{format_float, labels_json, timestamp_json, InstantSample, PrometheusData, Series, Value};
