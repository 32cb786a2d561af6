/// The small set of error categories every crate's error maps to. Only the `api` crate
/// turns these into protocol status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller sent something malformed or semantically invalid.
    InvalidInput,
    /// The thing asked for does not exist.
    NotFound,
    /// A body or request is larger than a configured limit.
    TooLarge,
    /// A configured limit (series, labels, rate) was breached.
    LimitExceeded,
    /// The operation took longer than allowed.
    Timeout,
    /// Temporarily cannot serve (disk full, shutting down); retrying later may work.
    Unavailable,
    /// A bug or an unexpected I/O failure.
    Internal,
    /// The request conflicts with the current state (a document changed since it was read).
    Conflict,
    /// No credential, or one that is not valid.
    Unauthenticated,
    /// A valid credential that may not do this (scope or tenant).
    Forbidden,
}

impl ErrorKind {
    /// A short snake_case name, used as Prometheus's `errorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "bad_data",
            ErrorKind::NotFound => "not_found",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}
