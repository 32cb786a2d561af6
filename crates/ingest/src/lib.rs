//! Pure decoders for Telltale's write paths: request bytes in, [`telltale_model::WriteBatch`]
//! out. No HTTP and no storage live here: the `api` crate reads the body and headers (and undoes
//! `Content-Encoding`), calls a decoder, and hands the batch to a store. That keeps every decoder
//! easy to test with captured payloads and to fuzz.
//!
//! One module per protocol, each linking its upstream spec: [`prom_remote_write`] (Prometheus
//! remote write 1.0 and 2.0), [`exposition`] (Prometheus text 0.0.4 and OpenMetrics 1.0),
//! [`influx`] (InfluxDB line protocol), [`otlp`] (OTLP/HTTP metrics, protobuf and JSON); for logs
//! [`loki`] (Loki push, JSON and protobuf), [`es_bulk`] (Elasticsearch `_bulk`), OTLP logs and
//! [`syslog`] (RFC 5424/3164) into a [`telltale_model::LogBatch`]. Every
//! decoder enforces the same [`Limits`] while it decodes and fails with one [`Error`] whose
//! [`Error::kind`] the api maps to a status code.
//!
//! Two design decisions to know: decoders borrow label strings from the request buffer and
//! build each series' [`telltale_model::Labels`] with a reused builder, so a decoded series
//! costs one allocation; and every decoder reproduces what the reference server (Prometheus 3
//! for remote write and OTLP) would store for the same request, so dashboards and alert rules
//! keep working. Naming and limit decisions are in `docs/ingest.md` and `docs/otlp.md`.
#![warn(missing_docs)]

mod error;
pub mod limits;
pub mod loglimits;
mod pb;
mod series;

pub mod es_bulk;
pub mod exposition;
pub mod influx;
pub mod loki;
pub mod otlp;
pub mod prom_remote_write;
mod prom_remote_write_encode;
pub mod syslog;
pub mod zipkin;

pub use error::{Error, Result};
pub use limits::Limits;
pub use loglimits::LogLimits;
