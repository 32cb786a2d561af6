//! Telltale's log store: what `LogWriter`/`LogReader` stand on in the server.
//!
//! Inputs: [`telltale_model::LogBatch`]es; outputs: rows by stream, time and line filter.
//! Data flow: a write goes to the WAL (acknowledged once it is there, so it survives
//! `kill -9`) and to the in-memory head; the head becomes an immutable segment (Parquet, zstd,
//! rows sorted by stream then time, one row group per stream block) once it is large or old;
//! maintenance deletes segments past retention, and small segments are merged once writes
//! stop (and by maintenance while they go on).
//!
//! The one design decision to know: each block carries a bloom filter over the 8-byte n-grams
//! of its tokens, so a needle search (`|= "3fa2c9e1b2d40a77"`) reads only blocks that may hold
//! the needle, while keeping LogQL's substring semantics (see `bloom.rs` for why n-grams, and
//! `docs/logs.md` for the measurement). Compaction stores lines as templates plus typed
//! variables (`linecodec.rs`), about a third smaller than zstd over the text. The on-disk
//! format is in `docs/format.md`.
#![warn(missing_docs)]

mod bloom;
mod db;
mod error;
mod head;
mod linecodec;
mod options;
mod segment;
mod selector;
mod sqlview;
mod wal;

pub use db::LogDb;
pub use error::{Error, Result};
pub use options::{Options, StreamRetention, WalOptions};
pub use sqlview::{LineDecoder, SqlView};
/// The Arrow and Parquet crates the store's files and [`SqlView`] are made with.
pub use {arrow_array, arrow_schema};

#[cfg(test)]
mod tests {
    use std::ops::Deref;

    use super::*;

    /// A store in a temp dir with a tiny head, so the suite's flushes make several segments.
    pub(crate) struct Fixture {
        db: LogDb,
        _dir: tempfile::TempDir,
    }

    impl Deref for Fixture {
        type Target = LogDb;
        fn deref(&self) -> &LogDb {
            &self.db
        }
    }

    pub(crate) fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options { block_lines: 100, compaction_target: 0, ..Options::default() };
        Fixture { db: LogDb::open(dir.path(), &opts).unwrap(), _dir: dir }
    }

    telltale_storage::log_conformance!(fixture());
}
