//! Follows log files the way Promtail does: paths by glob, new lines as they are appended,
//! across rotation (the file renamed and a new one created: the old one is read to its end
//! first) and truncation (copytruncate: read again from the start), with the offset of every
//! file checkpointed so a restart resumes where the last stored line ended.
//!
//! Inputs: globs and a checkpoint file. Outputs: complete lines per file, from [`Tailer::poll`];
//! the caller stores them and then calls [`Tailer::commit`], which writes the offsets
//! (atomically: temp file, fsync, rename). Nothing here knows HTTP or the store, so
//! `telltale serve` and `telltale agent` use it alike.
//!
//! Truncation is noticed when a file is shorter than what was read of it (as Promtail does): a
//! file truncated and then written past the old offset before the next poll loses the lines
//! before that offset.
//!
//! The one decision to know: a partial last line (no newline yet) is held back and not
//! checkpointed, so a line is never split in two entries; at most `max_line` bytes of it are
//! held, then it is emitted as is.
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of the tailer: only the checkpoint file and bad globs; unreadable log files are
/// skipped and reported in [`Poll::problems`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A glob does not parse.
    #[error("invalid glob {pattern:?}: {reason}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// The checkpoint file cannot be read or written.
    #[error("cannot {op} checkpoint file {}: {source}", .path.display())]
    Checkpoint {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The error's category.
    pub fn kind(&self) -> telltale_model::ErrorKind {
        match self {
            Error::Glob { .. } => telltale_model::ErrorKind::InvalidInput,
            Error::Checkpoint { .. } => telltale_model::ErrorKind::Internal,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    dev: u64,
    inode: u64,
    offset: u64,
}

/// One followed file.
#[derive(Debug)]
struct Followed {
    file: File,
    pos: Position,
    /// Bytes read after the last newline.
    partial: Vec<u8>,
    /// The offset the partial line starts at (what is checkpointed).
    committed_candidate: u64,
}

/// New lines of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLines {
    /// The path the lines were read under.
    pub path: PathBuf,
    /// Complete lines, without their newline (a `\r` before it is dropped too).
    pub lines: Vec<String>,
}

/// What one poll found.
#[derive(Debug, Default)]
pub struct Poll {
    /// New lines, per file.
    pub files: Vec<FileLines>,
    /// Files that could not be read, in words.
    pub problems: Vec<String>,
}

/// Follows the files matching some globs.
#[derive(Debug)]
pub struct Tailer {
    patterns: Vec<glob::Pattern>,
    raw: Vec<String>,
    checkpoint: PathBuf,
    max_line: usize,
    /// By path.
    files: BTreeMap<PathBuf, Followed>,
    /// Rotated-away files still being read to their end.
    draining: Vec<(PathBuf, Followed)>,
    /// Offsets from the checkpoint not yet matched to an open file.
    saved: HashMap<PathBuf, Position>,
}

fn id(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

impl Tailer {
    /// Follows `globs`, resuming from `checkpoint` (created if missing).
    pub fn open(globs: &[String], checkpoint: &Path, max_line: usize) -> Result<Tailer> {
        let patterns = globs
            .iter()
            .map(|g| glob::Pattern::new(g).map_err(|e| Error::Glob { pattern: g.clone(), reason: e.to_string() }))
            .collect::<Result<_>>()?;
        let saved: HashMap<PathBuf, Position> = match fs::read(checkpoint) {
            Ok(b) => {
                serde_json::from_slice::<BTreeMap<PathBuf, Position>>(&b).unwrap_or_default().into_iter().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => return Err(Error::Checkpoint { op: "read", path: checkpoint.into(), source }),
        };
        Ok(Tailer {
            patterns,
            raw: globs.to_vec(),
            checkpoint: checkpoint.to_path_buf(),
            max_line: max_line.max(1),
            files: BTreeMap::new(),
            draining: Vec::new(),
            saved,
        })
    }

    fn matching(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for g in &self.raw {
            if let Ok(paths) = glob::glob(g) {
                out.extend(paths.flatten().filter(|p| p.is_file()));
            }
        }
        out.sort();
        out.dedup();
        let _ = &self.patterns;
        out
    }

    /// Reads what was appended since the last poll.
    pub fn poll(&mut self) -> Poll {
        let mut poll = Poll::default();
        // Rotated files first: their remaining lines are older.
        let draining = std::mem::take(&mut self.draining);
        for (path, mut f) in draining {
            let lines = read_new(&mut f, self.max_line, true, &mut poll.problems, &path);
            if !lines.is_empty() {
                poll.files.push(FileLines { path: path.clone(), lines });
            }
        }
        for path in self.matching() {
            let Ok(meta) = fs::metadata(&path) else { continue };
            let (dev, inode) = id(&meta);
            match self.files.get_mut(&path) {
                Some(f) if (f.pos.dev, f.pos.inode) == (dev, inode) => {
                    if meta.len() < f.pos.offset {
                        // Truncated in place (copytruncate): start again.
                        f.pos.offset = 0;
                        f.committed_candidate = 0;
                        f.partial.clear();
                    }
                }
                Some(_) => {
                    // Rotated: drain the old file, follow the new one from its start.
                    if let Some(mut old) = self.files.remove(&path) {
                        let lines = read_new(&mut old, self.max_line, true, &mut poll.problems, &path);
                        if !lines.is_empty() {
                            poll.files.push(FileLines { path: path.clone(), lines });
                        }
                    }
                    if let Some(f) = open_at(&path, dev, inode, 0, &mut poll.problems) {
                        self.files.insert(path.clone(), f);
                    }
                }
                None => {
                    let start = match self.saved.remove(&path) {
                        Some(p) if (p.dev, p.inode) == (dev, inode) && p.offset <= meta.len() => p.offset,
                        Some(p) => {
                            // Rotated while we were down: finish the old file if it is still
                            // next to the new one (app.log.1), then read the new one whole.
                            if let Some(old) = find_inode(&path, p) {
                                if let Some(mut f) = open_at(&old, p.dev, p.inode, p.offset, &mut poll.problems) {
                                    let lines = read_new(&mut f, self.max_line, true, &mut poll.problems, &old);
                                    if !lines.is_empty() {
                                        poll.files.push(FileLines { path: path.clone(), lines });
                                    }
                                }
                            }
                            0
                        }
                        None => 0,
                    };
                    if let Some(f) = open_at(&path, dev, inode, start, &mut poll.problems) {
                        self.files.insert(path.clone(), f);
                    }
                }
            }
            if let Some(f) = self.files.get_mut(&path) {
                let lines = read_new(f, self.max_line, false, &mut poll.problems, &path);
                if !lines.is_empty() {
                    poll.files.push(FileLines { path: path.clone(), lines });
                }
            }
        }
        // Files that vanished (deleted, not replaced) are dropped.
        self.files.retain(|p, _| fs::metadata(p).is_ok());
        poll
    }

    /// Writes the offsets of every line returned so far (call after storing them).
    pub fn commit(&self) -> Result<()> {
        let mut all: BTreeMap<&PathBuf, Position> = self.saved.iter().map(|(p, x)| (p, *x)).collect();
        for (p, f) in &self.files {
            all.insert(p, Position { offset: f.committed_candidate, ..f.pos });
        }
        let body = serde_json::to_vec_pretty(&all).unwrap_or_default();
        let tmp = self.checkpoint.with_extension("tmp");
        let err = |op, source| Error::Checkpoint { op, path: self.checkpoint.clone(), source };
        let mut f = File::create(&tmp).map_err(|e| err("create", e))?;
        f.write_all(&body).and_then(|()| f.sync_all()).map_err(|e| err("write", e))?;
        fs::rename(&tmp, &self.checkpoint).map_err(|e| err("rename", e))?;
        Ok(())
    }
}

fn open_at(path: &Path, dev: u64, inode: u64, offset: u64, problems: &mut Vec<String>) -> Option<Followed> {
    match File::open(path) {
        Ok(file) => Some(Followed {
            file,
            pos: Position { dev, inode, offset },
            partial: Vec::new(),
            committed_candidate: offset,
        }),
        Err(e) => {
            problems.push(format!("cannot open {}: {e}", path.display()));
            None
        }
    }
}

/// A file in `path`'s directory with the checkpointed inode (the rotated-away file).
fn find_inode(path: &Path, p: Position) -> Option<PathBuf> {
    let dir = path.parent()?;
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|c| fs::metadata(c).is_ok_and(|m| id(&m) == (p.dev, p.inode)))
}

/// Complete lines appended since `f.pos.offset`; with `flush_partial`, a last line without
/// newline too (the file will not grow any more).
fn read_new(
    f: &mut Followed,
    max_line: usize,
    flush_partial: bool,
    problems: &mut Vec<String>,
    path: &Path,
) -> Vec<String> {
    let mut buf = Vec::new();
    if let Err(e) = f.file.seek(SeekFrom::Start(f.pos.offset)).and_then(|_| f.file.read_to_end(&mut buf)) {
        problems.push(format!("cannot read {}: {e}", path.display()));
        return Vec::new();
    }
    f.pos.offset += buf.len() as u64;
    let mut lines = Vec::new();
    let mut data = std::mem::take(&mut f.partial);
    data.extend_from_slice(&buf);
    let mut start = 0;
    let base = f.pos.offset - data.len() as u64;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            let mut line = &data[start..i];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            lines.push(String::from_utf8_lossy(line).into_owned());
            start = i + 1;
        }
    }
    let mut rest = data[start..].to_vec();
    if !rest.is_empty() && (flush_partial || rest.len() >= max_line) {
        lines.push(String::from_utf8_lossy(&rest).into_owned());
        start = data.len();
        rest.clear();
    }
    f.committed_candidate = base + start as u64;
    f.partial = rest;
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(p: &Path, s: &str) {
        let mut f = fs::OpenOptions::new().create(true).append(true).open(p).unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    fn lines(poll: &Poll) -> Vec<String> {
        poll.files.iter().flat_map(|f| f.lines.clone()).collect()
    }

    #[test]
    fn follows_appends_and_holds_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "one\ntwo\r\nthr");
        let mut t =
            Tailer::open(&[format!("{}/*.log", dir.path().display())], &dir.path().join("cp.json"), 1 << 20).unwrap();
        assert_eq!(lines(&t.poll()), ["one", "two"]);
        append(&log, "ee\n");
        assert_eq!(lines(&t.poll()), ["three"]);
        assert!(lines(&t.poll()).is_empty());
    }

    #[test]
    fn rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "a1\n");
        let mut t = Tailer::open(&[log.display().to_string()], &dir.path().join("cp.json"), 1 << 20).unwrap();
        assert_eq!(lines(&t.poll()), ["a1"]);
        append(&log, "a2\n");
        fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, "b1\n");
        assert_eq!(lines(&t.poll()), ["a2", "b1"], "the rotated file is read to its end first");
        // copytruncate: noticed when the file is shorter than what was read.
        fs::write(&log, "").unwrap();
        assert!(lines(&t.poll()).is_empty());
        append(&log, "c1\n");
        assert_eq!(lines(&t.poll()), ["c1"]);
        fs::write(&log, "d\n").unwrap();
        assert_eq!(lines(&t.poll()), ["d"]);
    }

    #[test]
    fn a_restart_resumes_without_losing_or_repeating() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let cp = dir.path().join("cp.json");
        let globs = [log.display().to_string()];
        append(&log, "1\n2\n");
        {
            let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
            assert_eq!(lines(&t.poll()), ["1", "2"]);
            t.commit().unwrap();
            append(&log, "3\npart");
            assert_eq!(lines(&t.poll()), ["3"]);
            t.commit().unwrap();
        }
        append(&log, "ial\n4\n");
        let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
        assert_eq!(lines(&t.poll()), ["partial", "4"]);
        t.commit().unwrap();
        // Rotated while stopped: the old file's rest, then the new file.
        append(&log, "5\n");
        fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, "6\n");
        let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
        assert_eq!(lines(&t.poll()), ["5", "6"]);
    }
}
