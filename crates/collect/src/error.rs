use std::path::PathBuf;

use telltale_model::ErrorKind;

/// Why collecting, scraping or shipping failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file under /proc, /sys or the queue directory cannot be read or written.
    #[error("cannot {op} {}", .path.display())]
    Io {
        /// What was attempted (`read`, `open`, `statfs`, ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what the kernel documents.
    #[error("cannot parse {}: {reason}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offending text.
        reason: String,
    },
    /// The data a collector reads does not exist on this kernel (no PSI, no IPv6): the
    /// collector reports failure quietly, as node_exporter's `ErrNoData`.
    #[error("no data: {0}")]
    NoData(String),
    /// A configuration value is invalid; `key` is its path in the config file.
    #[error("{key}: {message}")]
    Config {
        /// Dotted key path (`scrape_configs[0].relabel_configs[1].regex`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A scrape failed (connection, HTTP status, body, parse, limits).
    #[error("{0}")]
    Scrape(String),
    /// The destination refused or could not take a batch.
    #[error("cannot store batch: {0}")]
    Sink(String),
}

impl Error {
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } | Error::Parse { .. } => ErrorKind::InvalidInput,
            Error::NoData(_) => ErrorKind::NotFound,
            Error::Scrape(_) | Error::Sink(_) => ErrorKind::Unavailable,
            Error::Io { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Parse { path: path.into(), reason: reason.into() }
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { key: key.into(), message: message.into() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
