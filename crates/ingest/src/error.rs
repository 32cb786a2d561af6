use telltale_model::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request body could not be decoded. Every message is one line, lowercase, and names
/// what was wrong and where (byte offset, line number, or series), so it can be sent back to
/// the client as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The snappy block could not be decompressed.
    #[error("invalid snappy block: {0}")]
    Snappy(#[source] snap::Error),
    /// The protobuf message is malformed (truncated, bad wire type, bad length, not UTF-8).
    #[error("invalid protobuf at byte {offset}: {reason}")]
    Protobuf {
        /// Byte offset in the decompressed message.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A text line (exposition format, line protocol) could not be parsed.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong, with the offending text quoted (truncated).
        reason: String,
    },
    /// A series is well-formed on the wire but not a valid label set (duplicate or empty label
    /// name, no labels at all).
    #[error("invalid series {series}: {reason}")]
    InvalidSeries {
        /// The series in Prometheus notation (or the raw pairs when they could not be built).
        series: String,
        /// What was wrong.
        reason: String,
    },
    /// A configured [`crate::Limits`] value was breached; `limit` is its config key.
    #[error("{limit} ({max}) exceeded by {subject}")]
    Limit {
        /// The config key of the limit (`max_labels_per_series`, ...).
        limit: &'static str,
        /// The configured value.
        max: u64,
        /// What breached it: a series, a label, or the request.
        subject: String,
    },
    /// The request uses a feature this decoder does not support yet (native histograms).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The Content-Type names a message this receiver does not decode. Remote write 2.0 asks
    /// receivers to answer this with 415 Unsupported Media Type, so the api crate matches on it.
    #[error("unsupported content type {0:?}: want application/x-protobuf with proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request")]
    UnsupportedContentType(String),
}

impl Error {
    /// The error's category, which the api crate maps to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Limit { limit, .. } if crate::limits::is_request_size_limit(limit) => ErrorKind::TooLarge,
            Error::Limit { .. } => ErrorKind::LimitExceeded,
            Error::Snappy(_)
            | Error::Protobuf { .. }
            | Error::Syntax { .. }
            | Error::InvalidSeries { .. }
            | Error::Unsupported(_)
            | Error::UnsupportedContentType(_) => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn syntax(line: usize, reason: impl Into<String>) -> Self {
        Error::Syntax { line, reason: reason.into() }
    }
}

/// Quotes at most the first 64 bytes of `text` for an error message, cut on a char boundary.
pub(crate) fn excerpt(text: &[u8]) -> String {
    const MAX: usize = 64;
    let s = String::from_utf8_lossy(text);
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", &s[..end])
}
