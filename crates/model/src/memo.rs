//! A small process-wide memo for pure, costly derivations keyed by text (a compiled regex, a
//! parsed query): dashboards and rules send the same texts again and again.

use std::collections::HashMap;
use std::sync::Mutex;

/// Remembers up to `capacity` values by their text key; when full it starts afresh, so a
/// stream of distinct texts costs no more than no memo at all. Meant for `static` use.
pub struct Memo<V> {
    capacity: usize,
    map: Mutex<Option<HashMap<String, V>>>,
}

impl<V: Clone> Memo<V> {
    /// An empty memo (const, so it can be a `static`).
    pub const fn new(capacity: usize) -> Self {
        Memo { capacity, map: Mutex::new(None) }
    }

    /// The value for `key`: remembered, or made by `make` and remembered when it succeeds.
    /// `make` runs outside the lock.
    pub fn get_or_try<E>(&self, key: &str, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(v) = self.map.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|m| m.get(key)) {
            return Ok(v.clone());
        }
        let v = make()?;
        let mut guard = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key.to_string(), v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_successes_and_starts_afresh_when_full() {
        let m: Memo<usize> = Memo::new(2);
        let calls = std::cell::Cell::new(0usize);
        let get = |k: &str| {
            m.get_or_try(k, || {
                calls.set(calls.get() + 1);
                if k == "bad" {
                    Err("no")
                } else {
                    Ok(k.len())
                }
            })
        };
        assert_eq!(get("ab"), Ok(2));
        assert_eq!(get("ab"), Ok(2));
        assert_eq!(get("bad"), Err("no"));
        assert_eq!(get("bad"), Err("no"));
        assert_eq!(get("abc"), Ok(3));
        assert_eq!(get("abcd"), Ok(4)); // full: cleared, then remembered
        assert_eq!(get("ab"), Ok(2));
        assert_eq!(calls.get(), 6, "ab once before the clear, once after; bad twice (errors are not kept)");
    }
}
