//! The two facts the kernel and libc give only through C calls: the clock discipline
//! (`adjtimex(2)`, read-only) and the local time zone (`localtime_r(3)`). rustix and nix wrap
//! neither, so this is the crate's one module allowed `unsafe` (each block says why it holds).

/// What `adjtimex(2)` reports, with the kernel's own units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timex {
    // The kernel's types (`c_long`, `c_int`), not widened: these are read-outs.
    /// The return value: the clock state (`TIME_ERROR` = 5: not synchronised).
    pub(crate) state: i32,
    pub(crate) offset: libc::c_long,
    pub(crate) freq: libc::c_long,
    pub(crate) maxerror: libc::c_long,
    pub(crate) esterror: libc::c_long,
    pub(crate) status: i32,
    pub(crate) constant: libc::c_long,
    pub(crate) tick: libc::c_long,
    pub(crate) ppsfreq: libc::c_long,
    pub(crate) jitter: libc::c_long,
    pub(crate) shift: i32,
    pub(crate) stabil: libc::c_long,
    pub(crate) jitcnt: libc::c_long,
    pub(crate) calcnt: libc::c_long,
    pub(crate) errcnt: libc::c_long,
    pub(crate) stbcnt: libc::c_long,
    pub(crate) tai: i32,
}

/// Reads the kernel's clock state without changing anything (`modes = 0`).
pub(crate) fn adjtimex() -> std::io::Result<Timex> {
    // SAFETY: `libc::timex` is a plain C struct of integers (and padding); all-zero is a
    // valid value, and `modes = 0` asks the kernel to only read.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    t.modes = 0;
    // SAFETY: `t` is a valid, exclusively borrowed `timex` for the duration of the call; the
    // kernel writes only within it.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Timex {
        state,
        offset: t.offset,
        freq: t.freq,
        maxerror: t.maxerror,
        esterror: t.esterror,
        status: t.status,
        constant: t.constant,
        tick: t.tick,
        ppsfreq: t.ppsfreq,
        jitter: t.jitter,
        shift: t.shift,
        stabil: t.stabil,
        jitcnt: t.jitcnt,
        calcnt: t.calcnt,
        errcnt: t.errcnt,
        stbcnt: t.stbcnt,
        tai: t.tai,
    })
}

extern "C" {
    /// POSIX `tzset(3)` (not in the `libc` crate): re-reads `TZ` and /etc/localtime, so a
    /// changed zone is seen without a restart.
    fn tzset();
}

/// The local time zone at `unix_seconds`: its abbreviation (`UTC`, `CEST`) and its offset
/// east of UTC in seconds, as libc resolves `TZ` and /etc/localtime (Go does the same).
pub(crate) fn local_zone(unix_seconds: i64) -> Option<(String, libc::c_long)> {
    let t = libc::time_t::try_from(unix_seconds).ok()?;
    // SAFETY: `tm` is a plain C struct; all-zero (a null `tm_zone`) is valid until filled.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `tzset` only (re)reads TZ into libc's globals. `localtime_r` writes into our
    // `tm` only, and `t` outlives the call. Both are thread-safe in glibc and musl.
    let ok = unsafe {
        tzset();
        !libc::localtime_r(&t, &mut tm).is_null()
    };
    if !ok {
        return None;
    }
    let name = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null `tm_zone` points to a NUL-terminated string in libc's static
        // time zone data, valid until the next `tzset`; it is copied out at once.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
    };
    Some((name, tm.tm_gmtoff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_clock_and_the_zone() {
        let t = adjtimex().unwrap();
        assert!((0..=5).contains(&t.state), "{t:?}");
        assert!(t.tick > 0, "{t:?}");
        let (name, offset) = local_zone(1_700_000_000).unwrap();
        assert!(!name.is_empty());
        assert!(offset.abs() <= 14 * 3600);
    }
}
