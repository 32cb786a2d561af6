//! Telltale's ingest decoders: pure functions from a protocol's request body to a
//! [`telltale_model::WriteBatch`]. No HTTP, no storage, no state between requests, so each
//! decoder is easy to test with captured payloads and to fuzz.
//!
//! Inputs: bytes as received (after the HTTP layer has undone `Content-Encoding`), plus the
//! protocol's options and limits. Outputs: a batch for `storage::MetricWriter`, or an error
//! whose `kind()` the API maps to a status code.
//!
//! The one design decision to know: every decoder reproduces what the reference server
//! (Prometheus 3 for remote write and OTLP metrics) would store for the same request, so
//! dashboards and alert rules written against that server keep working.
#![warn(missing_docs)]

pub mod otlp;
