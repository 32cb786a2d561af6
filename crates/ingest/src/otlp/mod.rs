//! OTLP/HTTP metrics (`POST /v1/metrics`): an `ExportMetricsServiceRequest` as protobuf
//! (`application/x-protobuf`) or OTLP/JSON (`application/json`) to a [`WriteBatch`] of
//! Prometheus-style series. Logs (`POST /v1/logs`, [`decode_logs_proto`]) become a
//! `LogBatch`, and traces (`POST /v1/traces`, [`decode_traces_proto`], [`decode_traces_json`])
//! a `SpanBatch` with [`DecodedSpans`] counting what was refused or cut to [`TraceLimits`];
//! [`encode_traces_proto`] and [`resource_spans_json`] render spans back for the read APIs.
//!
//! Specs: the OTLP protocol <https://opentelemetry.io/docs/specs/otlp/> (JSON encoding:
//! <https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>) and the mapping
//! <https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/#otlp-metric-points-to-prometheus>.
//! Where the spec leaves room, this follows Prometheus 3's own OTLP receiver, so series names
//! and labels match what a Prometheus server would store; `docs/otlp.md` lists each decision.
//!
//! Inputs: the request body, already un-gzipped by the HTTP layer, plus [`OtlpOptions`] and
//! [`OtlpLimits`]. Output: a [`Decoded`] holding the batch and the [`Dropped`] counts of points
//! that were not stored (exponential histograms, delta temporality, ...), which the API turns into
//! an OTLP `partial_success` and a warning rather than losing them silently.
//!
//! The one decision to know: gauges, sums, classic histograms and summaries become plain float
//! series (`_total`, `_bucket{le}`, `_sum`, `_count`, `{quantile}`), resource attributes become
//! `job`/`instance` plus one `target_info` series per resource, and nothing is kept between
//! requests (so delta temporality cannot be accumulated and is dropped by default).
//!
//! ```
//! use telltale_ingest::otlp::{decode_metrics_json, OtlpLimits, OtlpOptions};
//!
//! let body = br#"{"resourceMetrics": [{
//!   "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
//!   "scopeMetrics": [{"metrics": [{"name": "http.server.active_requests", "unit": "{request}",
//!     "sum": {"aggregationTemporality": 2, "isMonotonic": false,
//!       "dataPoints": [{"asInt": "3", "timeUnixNano": "1700000000000000000"}]}}]}]}]}"#;
//! let decoded = decode_metrics_json(body, &OtlpOptions::default(), &OtlpLimits::default())?;
//! let (labels, samples) = decoded.batch.iter().next().unwrap();
//! assert_eq!(labels.to_string(), r#"http_server_active_requests{job="api"}"#);
//! assert_eq!((samples[0].t, samples[0].v), (1_700_000_000_000, 3.0));
//! assert!(decoded.dropped.message().is_none());
//! # Ok::<(), telltale_ingest::otlp::Error>(())
//! ```

mod convert;
mod error;
mod json;
mod logs;
mod names;
mod options;
mod traces;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use telltale_model::WriteBatch;

pub use error::{Error, Result};
pub use logs::{decode_logs_json, decode_logs_proto};
pub use options::{DeltaTemporality, OtlpLimits, OtlpOptions, TranslationStrategy};
pub use traces::{
    convert_traces, decode_traces_json, decode_traces_proto, encode_traces_proto, resource_spans_json, traces_response,
    DecodedSpans, TraceLimits,
};
pub(crate) use traces::{finish, Refusal, Refused};

/// A decoded request: the series to write, and what could not be turned into series.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Series with their samples, plus metric metadata (type, help, unit).
    pub batch: WriteBatch,
    /// Counts of what was left out, for an OTLP partial success and a warning.
    pub dropped: Dropped,
}

/// What a request held that was not stored. Data point counts follow OTLP's
/// `ExportMetricsPartialSuccess.rejected_data_points` (one histogram point is one data point).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Exponential histogram points: native histograms are not supported yet.
    pub exponential_histogram_points: u64,
    /// Sum and histogram points with delta temporality (see [`DeltaTemporality`]).
    pub delta_points: u64,
    /// Sum and histogram points whose temporality is unspecified or unknown.
    pub invalid_temporality_points: u64,
    /// Number points with neither `as_double` nor `as_int`.
    pub points_without_value: u64,
    /// Points whose metric name, or one of whose attribute keys, leaves nothing valid after
    /// translation (for example a name made only of punctuation).
    pub invalid_name_points: u64,
    /// Metrics with no data (no gauge, sum, histogram, exponential histogram or summary).
    pub metrics_without_data: u64,
    /// Exemplars: not stored yet. They are not data points, so they do not count as rejected.
    pub exemplars: u64,
}

impl Dropped {
    /// The number of data points not stored, for `ExportMetricsPartialSuccess.rejected_data_points`.
    pub fn rejected_data_points(&self) -> u64 {
        self.exponential_histogram_points
            + self.delta_points
            + self.invalid_temporality_points
            + self.points_without_value
            + self.invalid_name_points
    }

    /// A one-line explanation of what was dropped (for `partial_success.error_message` and logs),
    /// or `None` when nothing was.
    pub fn message(&self) -> Option<String> {
        let parts = [
            (self.exponential_histogram_points, "exponential histogram points (not supported yet)"),
            (self.delta_points, "delta temporality points (export cumulative temporality instead)"),
            (self.invalid_temporality_points, "points with unspecified aggregation temporality"),
            (self.points_without_value, "number points without a value"),
            (self.invalid_name_points, "points whose metric or attribute name is not translatable"),
            (self.metrics_without_data, "metrics without data"),
            (self.exemplars, "exemplars (not stored yet)"),
        ];
        let text: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
        (!text.is_empty()).then(|| format!("dropped {}", text.join(", ")))
    }
}

impl Decoded {
    /// The `ExportMetricsServiceResponse` body to answer with, as protobuf: empty when everything
    /// was stored, else a `partial_success` with the rejected count and [`Dropped::message`].
    pub fn response_proto(&self) -> Vec<u8> {
        metrics_response(false, self.dropped.rejected_data_points(), &self.dropped.message().unwrap_or_default())
    }

    /// The same response as OTLP/JSON (`{}` when everything was stored).
    pub fn response_json(&self) -> Vec<u8> {
        metrics_response(true, self.dropped.rejected_data_points(), &self.dropped.message().unwrap_or_default())
    }
}

/// An `ExportMetricsServiceResponse` body, protobuf or OTLP/JSON: with a `partial_success` of
/// `rejected` points and `message` when either is set, else empty (`{}` in JSON). The server
/// adds the points its store refused to those the decoder dropped.
/// See <https://opentelemetry.io/docs/specs/otlp/#partial-success-1>.
pub fn metrics_response(json: bool, rejected: u64, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty()).then(|| proto::ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: message.to_string(),
    });
    match (json, partial) {
        (false, partial_success) => proto::ExportMetricsServiceResponse { partial_success }.encode_to_vec(),
        (true, None) => b"{}".to_vec(),
        // int64 as a string, as OTLP/JSON writes 64-bit integers.
        (true, Some(p)) => serde_json::json!({"partialSuccess": {
            "rejectedDataPoints": p.rejected_data_points.to_string(),
            "errorMessage": p.error_message,
        }})
        .to_string()
        .into_bytes(),
    }
}

/// Decodes a protobuf `ExportMetricsServiceRequest` body (`Content-Type: application/x-protobuf`).
pub fn decode_metrics_proto(body: &[u8], opts: &OtlpOptions, limits: &OtlpLimits) -> Result<Decoded> {
    let req = ExportMetricsServiceRequest::decode(body).map_err(Error::Protobuf)?;
    convert_metrics(&req, opts, limits)
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest` body (`Content-Type: application/json`):
/// lowerCamelCase keys, 64-bit integers as strings or numbers, enums as integers (or names),
/// non-finite doubles as `"NaN"`/`"Infinity"`, unknown keys ignored, as
/// <https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding> describes.
pub fn decode_metrics_json(body: &[u8], opts: &OtlpOptions, limits: &OtlpLimits) -> Result<Decoded> {
    let req = json::parse(body).map_err(Error::Json)?;
    convert_metrics(&req, opts, limits)
}

/// Converts an already decoded request (for an OTLP/gRPC server sharing these messages).
pub fn convert_metrics(req: &ExportMetricsServiceRequest, opts: &OtlpOptions, limits: &OtlpLimits) -> Result<Decoded> {
    convert::Converter::new(opts, limits).run(req)
}

/// The generated OTLP messages this module decodes, re-exported so callers (tests, a gRPC
/// service, benchmarks) use the very same types and version.
pub mod proto {
    pub use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    pub use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    pub use opentelemetry_proto::tonic::metrics::v1::*;
    pub use opentelemetry_proto::tonic::resource::v1::Resource;
}
