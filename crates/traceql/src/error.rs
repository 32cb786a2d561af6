use telltale_model::ErrorKind;

/// Why a TraceQL query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query does not parse, or parses but is not a valid query (type errors, a bad regex).
    #[error("parse error at line {line}, col {col}: {message}")]
    Parse {
        /// Byte offset in the query where the problem was found.
        pos: usize,
        /// 1-based line of `pos`.
        line: usize,
        /// 1-based column (characters) of `pos` in that line.
        col: usize,
        /// One line saying what was wrong, in Tempo's words where Tempo has words for it.
        message: String,
    },
    /// The query parsed but cannot run as asked (a metrics query evaluated as a search, a bad
    /// step).
    #[error("{0}")]
    Execution(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error's category: every error here is the caller's input.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Parse { .. } | Error::Execution(_) => ErrorKind::InvalidInput,
        }
    }

    /// A parse error at byte `pos` of `src`.
    pub(crate) fn parse(src: &str, pos: usize, message: impl Into<String>) -> Self {
        let mut pos = pos.min(src.len());
        while !src.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &src[..pos];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error::Parse { pos, line, col, message: message.into() }
    }
}
