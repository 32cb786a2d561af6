use telltale_model::ErrorKind;

/// What can go wrong: only a bad configuration (the generator itself cannot fail).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An [`crate::Options`] field holds a value the generator cannot use.
    #[error("invalid spanmetrics option {field}: {reason}")]
    InvalidOptions {
        /// The field's name as written in the config file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// The category the API and the config loader map to a status or an exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidOptions { .. } => ErrorKind::InvalidInput,
        }
    }
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
