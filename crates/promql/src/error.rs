use telltale_model::ErrorKind;

/// Errors from parsing or evaluating a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query text is not valid PromQL, or is valid syntax with invalid types or arguments.
    #[error("{0}")]
    BadQuery(String),
    /// Evaluation failed for a reason that depends on the data (e.g. duplicate label sets
    /// after dropping the metric name), as Prometheus's "execution" errors.
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples in memory than `max_samples` allows.
    #[error("query processing would load too many samples into memory in {stage} (limit {limit})")]
    TooManySamples {
        /// Where the limit was hit ("query execution").
        stage: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// The query selected more series than `max_series` allows.
    #[error("query selected more than {limit} series")]
    TooManySeries {
        /// The configured limit.
        limit: usize,
    },
    /// The query ran past its deadline.
    #[error("query timed out in {stage}")]
    Timeout {
        /// What was running when the deadline passed.
        stage: &'static str,
    },
    /// The store failed to answer a select.
    #[error("storage error while selecting series")]
    Storage(#[from] telltale_storage::Error),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error's category (Prometheus's `bad_data`, `execution`, `timeout`, ...).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadQuery(_) => ErrorKind::InvalidInput,
            Error::Execution(_) => ErrorKind::InvalidInput,
            Error::TooManySamples { .. } | Error::TooManySeries { .. } => ErrorKind::LimitExceeded,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Storage(e) => e.kind(),
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        Error::Execution(msg.into())
    }

    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Error::BadQuery(msg.into())
    }
}
