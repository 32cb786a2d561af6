//! Integration tests: the conformance suite, crash recovery, corruption, retention,
//! compaction, out-of-order writes and concurrency, each on a temporary data directory.

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use telltale_model::{Labels, Matcher, Sample, TimeRange, WriteBatch};
use telltale_storage::{Maintenance, MetricReader, MetricWriter};
use telltale_tsdb::{Options, Tsdb};

mod scenarios;

/// A store in its own temporary directory, dropped together.
pub struct Fixture {
    pub db: Tsdb,
    pub dir: tempfile::TempDir,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::with(Options::default())
    }
}

impl Fixture {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(opts: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Tsdb::open(dir.path(), &opts).expect("open");
        Fixture { db, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Deref for Fixture {
    type Target = Tsdb;
    fn deref(&self) -> &Tsdb {
        &self.db
    }
}

telltale_storage::storage_conformance!(Fixture::new());

mod conformance_after_flush {
    //! The same suite with every write followed by a flush, so reads come from blocks.
    use super::*;

    pub(crate) struct Flushing(Fixture);

    impl Deref for Flushing {
        type Target = Flushing;
        fn deref(&self) -> &Flushing {
            self
        }
    }

    impl MetricWriter for Flushing {
        fn write(&self, b: &WriteBatch) -> telltale_storage::Result<telltale_storage::WriteStats> {
            let s = self.0.write(b)?;
            self.0.flush()?;
            Ok(s)
        }
    }

    impl MetricReader for Flushing {
        fn select(&self, r: TimeRange, m: &[Matcher]) -> telltale_storage::Result<Vec<telltale_storage::Series>> {
            self.0.select(r, m)
        }
        fn series(&self, r: TimeRange, m: &[Matcher]) -> telltale_storage::Result<Vec<Labels>> {
            self.0.series(r, m)
        }
        fn label_names(&self, r: TimeRange, m: &[Matcher]) -> telltale_storage::Result<Vec<String>> {
            self.0.label_names(r, m)
        }
        fn label_values(&self, n: &str, r: TimeRange, m: &[Matcher]) -> telltale_storage::Result<Vec<String>> {
            self.0.label_values(n, r, m)
        }
    }

    impl Maintenance for Flushing {
        fn flush(&self) -> telltale_storage::Result<()> {
            self.0.flush()
        }
        fn stats(&self) -> Vec<telltale_storage::Stat> {
            self.0.stats()
        }
        fn problems(&self) -> Vec<String> {
            self.0.problems()
        }
    }

    telltale_storage::storage_conformance!(Flushing(Fixture::new()));
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

pub fn batch(series: &[(Labels, Vec<Sample>)]) -> WriteBatch {
    let mut b = WriteBatch::new();
    for (l, s) in series {
        b.push(l.clone(), s);
    }
    b
}

pub fn all(db: &Tsdb) -> Vec<telltale_storage::Series> {
    db.select(TimeRange::ALL, &[]).unwrap()
}

pub fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}
