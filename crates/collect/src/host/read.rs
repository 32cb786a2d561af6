//! Reads small kernel files into one reused buffer.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A buffer that outlives the rounds, so reading /proc files allocates nothing once warm.
#[derive(Default)]
pub(crate) struct Reader {
    buf: Vec<u8>,
    path: PathBuf,
}

impl Reader {
    /// The whole file as text (kernel files are ASCII; anything else is replaced).
    pub(crate) fn read(&mut self, path: &Path) -> Result<&str> {
        self.read_opt(path)?
            .ok_or_else(|| Error::io("read", path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")))
    }

    /// Like [`Reader::read`], but a missing file is `Ok(None)`.
    pub(crate) fn read_opt(&mut self, path: &Path) -> Result<Option<&str>> {
        self.buf.clear();
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        f.read_to_end(&mut self.buf).map_err(|e| Error::io("read", path, e))?;
        if std::str::from_utf8(&self.buf).is_err() {
            let lossy = String::from_utf8_lossy(&self.buf).into_owned();
            self.buf = lossy.into_bytes();
        }
        self.path.clear();
        self.path.push(path);
        Ok(Some(std::str::from_utf8(&self.buf).unwrap_or("")))
    }
}

/// `base/rel`
pub(crate) fn join(base: &Path, rel: &str) -> PathBuf {
    base.join(rel)
}

/// Parses one number, naming the file and the text on failure.
pub(crate) fn num(path: &Path, s: &str) -> Result<f64> {
    s.parse::<f64>().map_err(|_| Error::parse(path, format!("{s:?} is not a number")))
}
