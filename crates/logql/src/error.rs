use telltale_model::ErrorKind;

/// Why a LogQL query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query does not parse, or is valid syntax used where it is not allowed.
    #[error("parse error at line {line}, col {col}: {message}")]
    Parse {
        /// 1-based line in the query.
        line: usize,
        /// 1-based column (characters) in that line.
        col: usize,
        /// What was expected or wrong.
        message: String,
    },
    /// The query parsed but cannot run as asked (a log query as an instant query, pipeline
    /// errors left in a metric query, a step too small for the range).
    #[error("{0}")]
    Execution(String),
    /// A query limit was reached.
    #[error("{limit} exceeded: {detail}")]
    Limit {
        /// The limit's configuration name.
        limit: &'static str,
        /// What was asked against what is allowed.
        detail: String,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] telltale_storage::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Parse { .. } | Error::Execution(_) => ErrorKind::InvalidInput,
            Error::Limit { .. } => ErrorKind::LimitExceeded,
            Error::Storage(e) => e.kind(),
        }
    }

    /// A parse error at byte `pos`; [`crate::parse`] turns the offset into line and column.
    pub(crate) fn parse(pos: usize, message: impl Into<String>) -> Self {
        Error::Parse { line: 0, col: pos, message: message.into() }
    }

    /// Resolves a byte offset made by [`Error::parse`] into line and column of `src`.
    pub(crate) fn locate(self, src: &str) -> Self {
        match self {
            Error::Parse { line: 0, col: pos, message } => {
                let before = &src[..pos.min(src.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                Error::Parse { line, col, message }
            }
            e => e,
        }
    }
}
