//! The auth crate's one error type.

use std::path::PathBuf;

use telltale_model::ErrorKind;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting (web config, `auth:` section, a request's field) is wrong; `key` is its path.
    #[error("{key}: {message}")]
    Config {
        /// The setting's path, e.g. `tls_server_config.cipher_suites[1]`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A user, service account or token that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A user or service account that already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// Reading or writing a file failed.
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Stored secrets cannot be opened: the key file is missing, damaged or not theirs.
    #[error("{message}")]
    Sealed {
        /// What cannot be read, and what to do.
        message: String,
    },
    /// A stored file (the auth store, the sealed secrets, the key file) does not parse.
    #[error("{} is damaged: {message}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
}

impl Error {
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config { key: key.into(), message: message.into() }
    }

    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { op, path: path.to_path_buf(), source }
    }

    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Io { .. } | Error::Corrupt { .. } | Error::Sealed { .. } => ErrorKind::Internal,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
