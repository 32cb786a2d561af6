use telltale_model::ErrorKind;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store cannot take writes right now (disk full, closing); reads still work.
    #[error("storage unavailable: {reason}")]
    Unavailable {
        /// What the operator should know, e.g. "no space left on device in /data/wal".
        reason: String,
    },
    /// A query asked for more than a configured limit allows.
    #[error("{limit} exceeded: {detail}")]
    LimitExceeded {
        /// The limit's configuration name.
        limit: &'static str,
        /// What was asked for against what is allowed.
        detail: String,
    },
    /// A bad argument (e.g. a matcher set that selects everything where that is refused).
    #[error("{0}")]
    InvalidInput(String),
    /// Anything else: I/O failures, broken invariants.
    #[error("{context}")]
    Internal {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::LimitExceeded { .. } => ErrorKind::LimitExceeded,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Wraps any error as [`Error::Internal`] with context.
    pub fn internal(context: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal { context: context.into(), source: source.into() }
    }
}
