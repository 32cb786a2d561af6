use std::io;
use std::path::{Path, PathBuf};

use telltale_model::ErrorKind;

/// Errors from the trace store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The disk (or quota) is full; writes fail until space returns, reads keep working.
    #[error("no space left on device: cannot {op} {}", .path.display())]
    DiskFull {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("cannot {op} {}", .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file does not hold what its format promises.
    #[error("{} is corrupt: {reason}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The options cannot work together.
    #[error("invalid trace store options: {0}")]
    InvalidOptions(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DiskFull { .. } => ErrorKind::Unavailable,
            Error::InvalidOptions(_) => ErrorKind::InvalidInput,
            Error::Io { .. } | Error::Corrupt { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.to_path_buf(), reason: reason.into() }
    }
}

/// Maps an `io::Error` on `path`, recognising a full disk or quota.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| telltale_walfile::io_err(op, path)(e).into()
}

impl From<telltale_walfile::Error> for Error {
    fn from(e: telltale_walfile::Error) -> Self {
        match e {
            telltale_walfile::Error::DiskFull { op, path } => Error::DiskFull { op, path },
            telltale_walfile::Error::Io { op, path, source } => Error::Io { op, path, source },
            other => Error::Io { op: "use wal", path: PathBuf::new(), source: io::Error::other(other.to_string()) },
        }
    }
}
