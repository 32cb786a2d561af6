//! The memory allocator: mimalloc instead of glibc's malloc, for Rust and C code alike.
//!
//! Why mimalloc: every write allocates a label set per series and frees it on another thread;
//! with glibc a fifth of ingest CPU went to malloc and free (docs/benchmarks.md, "What limits
//! ingest"). Why for C too (`override`): zstd's compression contexts otherwise come from
//! glibc's arenas, which kept them after a merge (an idle server held 150 MB instead of 75).
//! Transparent huge pages are off (`no_thp`): with them peak RSS during ingest doubled.

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc.h of the
/// version `libmimalloc-sys` builds; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process before it goes back to the OS, in ms.
/// mimalloc's default is 1 s; ingest and compaction free tens of MB every second (a flushed
/// head, a merged block), so at 1 s the peak RSS of a 10M-line ingest was 525 MiB, at 100 ms
/// 378 MiB, for the same CPU (docs/benchmarks.md, "Logs").
const PURGE_DELAY_MS: std::ffi::c_long = 100;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sets the purge delay, unless `MIMALLOC_PURGE_DELAY` in the environment chose one.
#[allow(unsafe_code)]
pub(crate) fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set stores an integer in mimalloc's option table; it takes no
    // pointers. It is called first thing in main, before other threads exist (mimalloc notes
    // it is not thread safe).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}
