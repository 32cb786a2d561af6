//! Decompressed chunk pages shared by every reader of every block, bounded in bytes.
//!
//! A block's chunks are zstd-compressed in pages of about 128 KiB, so reading one series
//! means reading and decompressing its whole page. Dashboards ask the same small queries
//! again and again; keeping recently used pages decompressed makes those repeat reads cost
//! a hash lookup instead. Eviction drops the least recently used page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// A page's identity: the block's process-unique number (never reused, unlike its address)
/// and the page number in that block.
pub(crate) type PageKey = (u64, u32);

/// Hands out block numbers for [`PageKey`].
pub(crate) fn next_block_uid() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The shared cache. A budget of 0 turns it off.
#[derive(Debug, Default)]
pub(crate) struct SharedPages {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pages: HashMap<PageKey, (Arc<[u8]>, u64)>,
    bytes: usize,
    tick: u64,
}

impl SharedPages {
    /// A cache holding at most `budget` bytes of pages.
    pub(crate) fn new(budget: usize) -> Self {
        Self { budget, inner: Mutex::default() }
    }

    /// The page, if cached; marks it recently used.
    pub(crate) fn get(&self, key: PageKey) -> Option<Arc<[u8]>> {
        if self.budget == 0 {
            return None;
        }
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let (page, used) = inner.pages.get_mut(&key)?;
        *used = tick;
        Some(page.clone())
    }

    /// Caches `page`, evicting the least recently used pages beyond the budget.
    pub(crate) fn insert(&self, key: PageKey, page: Arc<[u8]>) {
        // A page larger than a quarter of the budget would push out everything else.
        if page.len() > self.budget / 4 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let (tick, len) = (inner.tick, page.len());
        if let Some((old, _)) = inner.pages.insert(key, (page, tick)) {
            inner.bytes -= old.len();
        }
        inner.bytes += len;
        while inner.bytes > self.budget {
            let Some((&oldest, _)) = inner.pages.iter().min_by_key(|(_, (_, used))| *used) else { break };
            if let Some((gone, _)) = inner.pages.remove(&oldest) {
                inner.bytes -= gone.len();
            }
        }
    }

    /// Forgets every page of a block (deleted or quarantined).
    pub(crate) fn forget_block(&self, uid: u64) {
        let mut inner = self.inner.lock();
        let mut freed = 0;
        inner.pages.retain(|k, (p, _)| {
            let keep = k.0 != uid;
            if !keep {
                freed += p.len();
            }
            keep
        });
        inner.bytes -= freed;
    }

    /// Bytes of pages held.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: usize) -> Arc<[u8]> {
        vec![0u8; n].into()
    }

    #[test]
    fn evicts_least_recently_used_beyond_the_budget() {
        let c = SharedPages::new(400);
        c.insert((1, 0), page(100));
        c.insert((1, 1), page(100));
        c.insert((1, 2), page(100));
        assert!(c.get((1, 0)).is_some());
        c.insert((2, 0), page(100));
        c.insert((2, 1), page(100));
        assert_eq!(c.bytes(), 400);
        assert!(c.get((1, 1)).is_none(), "least recently used goes first");
        assert!(c.get((1, 0)).is_some());
        c.forget_block(1);
        assert_eq!(c.bytes(), 200);
        assert!(c.get((1, 0)).is_none() && c.get((2, 1)).is_some());
        c.insert((3, 0), page(101));
        assert!(c.get((3, 0)).is_none(), "pages over a quarter of the budget are not kept");
        let off = SharedPages::new(0);
        off.insert((1, 0), page(1));
        assert!(off.get((1, 0)).is_none());
    }
}
