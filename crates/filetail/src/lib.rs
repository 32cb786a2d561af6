//! Follows log files the way Promtail does: paths by glob, new lines as they are appended,
//! across rotation (the file renamed and a new one created: the old one is read to its end
//! first, also when the new one appears a poll or more later) and truncation (copytruncate:
//! read again from the start), with the offset of every file checkpointed so a restart
//! resumes where the last stored line ended.
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
//!
//! [`Tailer::poll_at_most`] bounds what one poll reads (bytes and lines, a [`Budget`]), so a
//! caller that ships each poll as one request and commits after it is acknowledged holds at
//! most one request in memory however far behind it is; [`Poll::more`] says to poll again at
//! once. A rotated-away file is read to its end, across as many polls as that takes, before
//! the new file under its name is opened; until then the checkpoint holds the old file's
//! offset, which a restart finds again by its inode.
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
    /// The [`Budget`] ran out: more may be waiting, so poll again without pausing.
    pub more: bool,
}

/// The most one [`Tailer::poll_at_most`] reads. A line held back as partial and then emitted
/// may add up to `max_line` bytes on top of `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes read from the files.
    pub bytes: usize,
    /// Lines returned.
    pub lines: usize,
}

impl Budget {
    /// No bound.
    pub const UNLIMITED: Budget = Budget { bytes: usize::MAX, lines: usize::MAX };

    fn is_spent(&self) -> bool {
        self.bytes == 0 || self.lines == 0
    }
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
    /// Rotated-away files still being read to their end, under the path they had; the new
    /// file under that path is opened once its old one is finished.
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
        self.poll_at_most(Budget::UNLIMITED)
    }

    /// Reads what was appended since the last poll, at most `budget` of it (files in path
    /// order; what is left is read by the next poll).
    pub fn poll_at_most(&mut self, mut budget: Budget) -> Poll {
        let budget = &mut budget;
        let mut poll = Poll::default();
        // Rotated files first: their remaining lines are older.
        for (path, mut f) in std::mem::take(&mut self.draining) {
            if !budget.is_spent() {
                let (lines, at_end) = read_new(&mut f, self.max_line, true, budget, &mut poll.problems, &path);
                push_lines(&mut poll, &path, lines);
                if at_end {
                    continue;
                }
            }
            self.draining.push((path, f));
        }
        for path in self.matching() {
            if budget.is_spent() {
                break;
            }
            if self.draining.iter().any(|(p, _)| *p == path) {
                continue; // the new file waits until the old one is read to its end
            }
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
                    // Rotated: drain the old file, then follow the new one from its start.
                    if let Some(mut old) = self.files.remove(&path) {
                        let (lines, at_end) =
                            read_new(&mut old, self.max_line, true, budget, &mut poll.problems, &path);
                        push_lines(&mut poll, &path, lines);
                        if !at_end {
                            self.draining.push((path, old));
                            continue;
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
                                    let (lines, at_end) =
                                        read_new(&mut f, self.max_line, true, budget, &mut poll.problems, &old);
                                    push_lines(&mut poll, &path, lines);
                                    if !at_end {
                                        self.draining.push((path, f));
                                        continue;
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
            if budget.is_spent() {
                break;
            }
            if let Some(f) = self.files.get_mut(&path) {
                let (lines, _) = read_new(f, self.max_line, false, budget, &mut poll.problems, &path);
                push_lines(&mut poll, &path, lines);
            }
        }
        // Files whose path vanished (renamed with no new file yet, or deleted) are read to
        // their end by the next poll, then dropped.
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| fs::metadata(p).is_err()).cloned().collect();
        for p in gone {
            if let Some(f) = self.files.remove(&p) {
                self.draining.push((p, f));
            }
        }
        poll.more = budget.is_spent();
        poll
    }

    /// Writes the offsets of every line returned so far (call after storing them).
    pub fn commit(&self) -> Result<()> {
        let mut all: BTreeMap<&PathBuf, Position> = self.saved.iter().map(|(p, x)| (p, *x)).collect();
        for (p, f) in self.files.iter().chain(self.draining.iter().map(|(p, f)| (p, f))) {
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

fn push_lines(poll: &mut Poll, path: &Path, lines: Vec<String>) {
    if !lines.is_empty() {
        poll.files.push(FileLines { path: path.to_path_buf(), lines });
    }
}

/// Complete lines appended since `f.pos.offset`, within `budget` (which is charged); with
/// `flush_partial`, a last line without newline too once the end is reached (the file will
/// not grow any more). Also says whether the end of the file was reached (or it cannot be
/// read): `false` means the budget stopped the read.
fn read_new(
    f: &mut Followed,
    max_line: usize,
    flush_partial: bool,
    budget: &mut Budget,
    problems: &mut Vec<String>,
    path: &Path,
) -> (Vec<String>, bool) {
    let mut buf = Vec::new();
    let want = u64::try_from(budget.bytes).unwrap_or(u64::MAX);
    let read = f.file.seek(SeekFrom::Start(f.pos.offset)).and_then(|_| (&mut f.file).take(want).read_to_end(&mut buf));
    if let Err(e) = read {
        problems.push(format!("cannot read {}: {e}", path.display()));
        return (Vec::new(), true);
    }
    let mut at_end = (buf.len() as u64) < want;
    budget.bytes -= buf.len();
    f.pos.offset += buf.len() as u64;
    let mut lines = Vec::new();
    let mut data = std::mem::take(&mut f.partial);
    data.extend_from_slice(&buf);
    let mut start = 0;
    let base = f.pos.offset - data.len() as u64;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            if lines.len() == budget.lines {
                // Out of lines: the rest is read again by the next poll.
                f.pos.offset = base + start as u64;
                f.committed_candidate = f.pos.offset;
                budget.lines = 0;
                return (lines, false);
            }
            let mut line = &data[start..i];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            lines.push(String::from_utf8_lossy(line).into_owned());
            start = i + 1;
        }
    }
    let mut rest = data[start..].to_vec();
    if !rest.is_empty() && ((flush_partial && at_end) || rest.len() >= max_line) {
        if lines.len() < budget.lines {
            lines.push(String::from_utf8_lossy(&rest).into_owned());
            start = data.len();
            rest.clear();
        } else {
            at_end = false;
        }
    }
    f.committed_candidate = base + start as u64;
    f.partial = rest;
    budget.lines -= lines.len();
    (lines, at_end)
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

    /// Polls with `budget` until a poll has nothing more, committing after each one, as the
    /// agent does; returns the lines of each poll.
    fn drain(t: &mut Tailer, budget: Budget) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        loop {
            let p = t.poll_at_most(budget);
            t.commit().unwrap();
            let more = p.more;
            out.push(lines(&p));
            if !more {
                return out;
            }
        }
    }

    #[test]
    fn a_budget_bounds_each_poll_and_the_rest_follows() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let cp = dir.path().join("cp.json");
        let globs = [log.display().to_string()];
        append(&log, "l1\nl2\nl3\nl4\nl5\nl6\nl7\n");
        let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
        let by_lines = drain(&mut t, Budget { bytes: usize::MAX, lines: 3 });
        assert_eq!(by_lines, [vec!["l1", "l2", "l3"], vec!["l4", "l5", "l6"], vec!["l7"]]);
        // Bytes: 7 bytes hold two 3-byte lines and the start of a third, held back.
        append(&log, "m1\nm2\nm3\nm4\n");
        let by_bytes = drain(&mut t, Budget { bytes: 7, lines: usize::MAX });
        assert_eq!(by_bytes.concat(), ["m1", "m2", "m3", "m4"]);
        assert!(by_bytes.iter().all(|p| p.len() <= 2), "{by_bytes:?}");
        // A restart in the middle of a backlog resumes at the last committed line.
        append(&log, "n1\nn2\nn3\n");
        let first = t.poll_at_most(Budget { bytes: usize::MAX, lines: 2 });
        assert_eq!((lines(&first), first.more), (vec!["n1".to_string(), "n2".to_string()], true));
        t.commit().unwrap();
        let _unacknowledged = t.poll_at_most(Budget { bytes: usize::MAX, lines: 2 });
        let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
        assert_eq!(lines(&t.poll()), ["n3"]);
    }

    #[test]
    fn a_rotated_file_is_finished_across_polls_before_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let cp = dir.path().join("cp.json");
        let globs = [log.display().to_string()];
        let budget = Budget { bytes: usize::MAX, lines: 2 };
        append(&log, "a1\n");
        let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
        assert_eq!(drain(&mut t, budget).concat(), ["a1"]);
        append(&log, "a2\na3\na4\nlast");
        fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, "b1\nb2\n");
        let p = t.poll_at_most(budget);
        assert_eq!(lines(&p), ["a2", "a3"]);
        t.commit().unwrap();
        // Stopped while the old file is half read: the checkpoint points into it.
        let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
        assert_eq!(drain(&mut t, budget), [vec!["a4", "last"], vec!["b1", "b2"], vec![]]);
        // And without a restart.
        append(&log, "b3\nb4\nb5\n");
        fs::rename(&log, dir.path().join("app.log.2")).unwrap();
        append(&log, "c1\n");
        assert_eq!(drain(&mut t, budget), [vec!["b3", "b4"], vec!["b5", "c1"], vec![]]);
        let mut t = Tailer::open(&globs, &cp, 1 << 20).unwrap();
        assert!(lines(&t.poll()).is_empty());
    }

    #[test]
    fn a_file_renamed_before_its_successor_exists_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "a1\n");
        let mut t = Tailer::open(&[log.display().to_string()], &dir.path().join("cp.json"), 1 << 20).unwrap();
        assert_eq!(lines(&t.poll()), ["a1"]);
        fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        assert!(lines(&t.poll()).is_empty());
        // The writer has not reopened yet.
        append(&dir.path().join("app.log.1"), "a2\n");
        append(&log, "b1\n");
        assert_eq!(lines(&t.poll()), ["a2", "b1"]);
    }
}
