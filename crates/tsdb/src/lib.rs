//! Telltale's metrics engine: stores samples written through [`telltale_storage::MetricWriter`]
//! and serves them through [`telltale_storage::MetricReader`].
//!
//! Data flows: a write is validated against the in-memory head, logged to the write-ahead
//! log (`wal/`), then appended to the head's Gorilla-compressed chunks. [`Tsdb::maintain`]
//! cuts old head data into immutable blocks (`blocks/<id>/`), compacts small blocks into
//! larger ones, deletes blocks past retention and truncates the WAL. Reads merge blocks
//! and head, newest source winning on equal timestamps. Corrupt files go to `quarantine/`
//! and are listed by [`telltale_storage::Maintenance::problems`]. `docs/format.md` gives
//! every file's layout byte by byte.
//!
//! The one design decision to know: writes are serialised by the WAL lock and checked
//! against the head *before* anything is logged, so the WAL holds exactly the accepted
//! samples, a failed WAL write (disk full) leaves neither log nor head changed, and
//! replay rebuilds the same head. Lookups, encoding and reads run outside that lock.
#![warn(missing_docs)]

mod block;
mod blockchunk;
mod chunk;
mod db;
mod encoding;
mod error;
mod head;
mod options;
mod pagecache;
mod postings;
mod wal;

pub use chunk::ChunkError;
pub use db::Tsdb;
pub use error::{Error, Result};
pub use options::{Fsync, Options, WalOptions};

/// The on-disk format version written and read (see `docs/format.md`).
pub const FORMAT_VERSION: u32 = block::FORMAT_VERSION;

#[doc(hidden)]
/// Chunk codec entry points for the benchmarks; not a stable API.
pub mod bench_api {
    use telltale_model::Sample;

    /// Encodes samples into one chunk.
    pub fn encode_chunk(samples: &[Sample]) -> Box<[u8]> {
        crate::chunk::encode(samples)
    }

    /// Decodes one chunk.
    pub fn decode_chunk(data: &[u8], out: &mut Vec<Sample>) -> Result<(), crate::ChunkError> {
        crate::chunk::decode(data, out)
    }
}
