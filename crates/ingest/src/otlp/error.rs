use telltale_model::ErrorKind;

/// Why an OTLP metrics request was rejected as a whole.
///
/// Points that cannot be stored (exponential histograms, delta temporality, ...) are not errors:
/// they are counted in [`super::Dropped`] so the caller can answer with an OTLP partial success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body is not a valid protobuf `ExportMetricsServiceRequest`.
    #[error("invalid otlp protobuf body: {0}")]
    Protobuf(#[source] prost::DecodeError),
    /// The body is not a valid OTLP/JSON `ExportMetricsServiceRequest`.
    #[error("invalid otlp json body: {0}")]
    Json(#[source] serde_json::Error),
    /// A Zipkin v2 body (`format` is `json` or `protobuf`) does not decode: the span decoders
    /// share this error type so the API handles every trace intake alike.
    #[error("invalid zipkin {format} body: {reason}")]
    Zipkin {
        /// `json` or `protobuf`.
        format: &'static str,
        /// What was wrong, one line.
        reason: String,
    },
    /// The options contradict each other (see [`super::OtlpOptions::validate`]).
    #[error("invalid otlp options: {0}")]
    InvalidOptions(&'static str),
    /// The request breaks a configured limit; the whole request is refused.
    #[error("otlp request exceeds {limit}: {value} > {max}{}", series_context(.series))]
    LimitExceeded {
        /// The name of the limit, as written in the configuration.
        limit: &'static str,
        /// The value seen.
        value: usize,
        /// The configured maximum.
        max: usize,
        /// The metric name concerned, when the limit is per series.
        series: Option<String>,
    },
}

fn series_context(series: &Option<String>) -> String {
    series.as_ref().map(|s| format!(" (metric {s:?})")).unwrap_or_default()
}

impl Error {
    /// The category, for the API layer to pick a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Protobuf(_) | Error::Json(_) | Error::Zipkin { .. } | Error::InvalidOptions(_) => {
                ErrorKind::InvalidInput
            }
            Error::LimitExceeded { .. } => ErrorKind::LimitExceeded,
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
