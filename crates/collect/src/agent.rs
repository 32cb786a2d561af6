//! `telltale agent`'s shipping: an on-disk queue of remote-write requests, bounded by size,
//! and a sender that drains it to a remote-write endpoint with retries; and [`push_logs`],
//! which sends tailed log lines to a Loki push endpoint under the same retry rules
//! ([`deliver`]).
//!
//! Queue: segment files `DIR/NNNNNNNNNNNNNNNNNNNN.seg` of records `[len u32][crc32c u32]
//! [samples u32][payload]` (little-endian; the payload is a snappy `WriteRequest`, ready to
//! send), and `DIR/cursor` (`segment offset`), rewritten atomically after each acknowledged
//! request. Appends are plain writes (a killed agent loses nothing it queued; a power cut
//! may lose the last second, segments are fsynced when they are closed). When the queue is
//! over its size, the oldest segment goes, sent or not, and its unsent samples are counted
//! as dropped. On start, the last segment is cut at its first torn record and sending
//! resumes at the cursor.
//!
//! Sender: one request per record, in order. 2xx: next. 5xx, 429 and connection errors:
//! retried with exponential backoff (`min_backoff` doubling to `max_backoff`, full jitter),
//! forever, so an outage only delays. Other 4xx: the server will never take it; dropped and
//! counted. Shutdown: retries end `drain_timeout` after the stop. Decisions are in
//! `docs/collect.md`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use telltale_model::{units, Labels, LabelsBuilder, LogBatch, WriteBatch};

use crate::error::{Error, Result};
use crate::scrape::config::{authorization_header, Authorization, BasicAuth};
use crate::tls::TlsConfig;
use crate::Sink;

/// `agent:`: where and how `telltale agent` ships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The remote-write URL (`--remote-write` overrides it).
    pub remote_write_url: String,
    /// Where lines of tailed files (`logs.files`) are pushed (Loki's push API). Empty: the
    /// remote-write URL with its trailing `/api/v1/write` replaced by `/loki/api/v1/push`.
    pub logs_push_url: String,
    /// Most bytes the on-disk queue may hold; past it the oldest data is dropped (and counted).
    #[serde(with = "units::size")]
    pub max_queue_size: u64,
    /// Most series per request; bigger batches are split.
    pub max_series_per_send: usize,
    /// Longest a request may take.
    #[serde(with = "units::duration")]
    pub timeout: Duration,
    /// First retry delay; it doubles on each failure ...
    #[serde(with = "units::duration")]
    pub min_backoff: Duration,
    /// ... up to this.
    #[serde(with = "units::duration")]
    pub max_backoff: Duration,
    /// How long shutdown waits for the queue to drain before leaving the rest on disk.
    #[serde(with = "units::duration")]
    pub drain_timeout: Duration,
    /// TLS settings for an `https://` remote-write URL (Prometheus's `tls_config`: CA,
    /// client certificate, server name, versions).
    #[serde(skip_serializing_if = "TlsConfig::is_default")]
    pub tls_config: TlsConfig,
    /// HTTP basic authentication for the remote-write URL (Grafana Cloud, a proxy in front).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// The `Authorization` header (type and credentials) for the remote-write URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Extra headers on every request (`X-Scope-OrgID` for a multi-tenant receiver).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// An HTTP proxy (`http://host:port`) to send through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            remote_write_url: String::new(),
            logs_push_url: String::new(),
            max_queue_size: 512 << 20,
            max_series_per_send: 2000,
            timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            tls_config: TlsConfig::default(),
            basic_auth: None,
            authorization: None,
            headers: BTreeMap::new(),
            proxy_url: None,
        }
    }
}

impl Options {
    /// Checks the values; errors name the key under `agent`.
    pub fn validate(&self) -> Result<()> {
        if self.max_queue_size < 1 << 20 {
            return Err(Error::config("agent.max_queue_size", "must be at least 1MiB"));
        }
        if self.max_series_per_send == 0 {
            return Err(Error::config("agent.max_series_per_send", "must be greater than zero"));
        }
        if self.min_backoff.is_zero() || self.max_backoff < self.min_backoff {
            return Err(Error::config("agent.max_backoff", "backoffs must be > 0 and max_backoff >= min_backoff"));
        }
        for (key, u) in
            [("agent.remote_write_url", &self.remote_write_url), ("agent.logs_push_url", &self.logs_push_url)]
        {
            if !(u.is_empty() || u.starts_with("http://") || u.starts_with("https://")) {
                return Err(Error::config(key, "must be an http:// or https:// URL"));
            }
        }
        self.tls_config.validate().map_err(|m| Error::config("agent.tls_config", m))?;
        if self.basic_auth.is_some() && self.authorization.is_some() {
            return Err(Error::config("agent.authorization", "at most one of basic_auth and authorization may be set"));
        }
        for name in self.headers.keys() {
            if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(Error::config(format!("agent.headers.{name}"), "not a valid HTTP header name"));
            }
            let reserved = ["authorization", "content-type", "content-encoding", "content-length", "user-agent"];
            if reserved.contains(&name.to_ascii_lowercase().as_str())
                || name.to_ascii_lowercase().starts_with("x-prometheus-remote-write")
            {
                return Err(Error::config(
                    format!("agent.headers.{name}"),
                    "is set by the agent itself and cannot be overridden",
                ));
            }
        }
        if let Some(u) = &self.proxy_url {
            ureq::Proxy::new(u).map_err(|e| Error::config("agent.proxy_url", e.to_string()))?;
        }
        Ok(())
    }

    /// Where tailed log lines go: `logs_push_url`, or the remote-write URL with its
    /// `/api/v1/write` replaced by `/loki/api/v1/push`.
    pub fn logs_push_url(&self) -> Result<String> {
        if !self.logs_push_url.is_empty() {
            return Ok(self.logs_push_url.clone());
        }
        match self.remote_write_url.strip_suffix("/api/v1/write") {
            Some(base) => Ok(format!("{base}/loki/api/v1/push")),
            None => Err(Error::config(
                "agent.logs_push_url",
                "needed for logs.files when agent.remote_write_url does not end in /api/v1/write",
            )),
        }
    }
}

/// The agent's counters (served as `telltale_agent_*`).
#[derive(Debug, Default)]
pub struct Stats {
    /// Samples put in the queue.
    pub enqueued_samples: AtomicU64,
    /// Samples the server acknowledged.
    pub sent_samples: AtomicU64,
    /// Samples dropped because the queue was full.
    pub dropped_full_samples: AtomicU64,
    /// Samples dropped because the server refused them with a 4xx.
    pub dropped_rejected_samples: AtomicU64,
    /// Requests that failed and were retried.
    pub retries: AtomicU64,
    /// Bytes in the queue now.
    pub queue_bytes: AtomicU64,
    /// Tailed log lines the server acknowledged.
    pub sent_log_lines: AtomicU64,
    /// Tailed log lines dropped because the server refused them with a 4xx.
    pub dropped_rejected_log_lines: AtomicU64,
    /// Log pushes that failed and were retried.
    pub log_push_retries: AtomicU64,
}

impl Stats {
    /// The counters as a batch with `labels` (job, instance) stamped `t`.
    pub fn to_batch(&self, base: &[(&str, &str)], t: i64) -> WriteBatch {
        let mut b = WriteBatch::new();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let rows: [(&str, &str, f64); 9] = [
            ("telltale_agent_enqueued_samples_total", "", g(&self.enqueued_samples)),
            ("telltale_agent_sent_samples_total", "", g(&self.sent_samples)),
            ("telltale_agent_dropped_samples_total", "queue_full", g(&self.dropped_full_samples)),
            ("telltale_agent_dropped_samples_total", "rejected", g(&self.dropped_rejected_samples)),
            ("telltale_agent_retries_total", "", g(&self.retries)),
            ("telltale_agent_queue_bytes", "", g(&self.queue_bytes)),
            ("telltale_agent_sent_log_lines_total", "", g(&self.sent_log_lines)),
            ("telltale_agent_dropped_log_lines_total", "rejected", g(&self.dropped_rejected_log_lines)),
            ("telltale_agent_log_push_retries_total", "", g(&self.log_push_retries)),
        ];
        for (name, reason, v) in rows {
            let mut lb = LabelsBuilder::new();
            lb.push("__name__", name);
            for (k, v) in base {
                lb.push(k, v);
            }
            lb.push("reason", reason);
            if let Ok(l) = lb.build() {
                b.push_sample(l, telltale_model::Sample::new(t, v));
            }
        }
        b
    }
}

const HEADER: usize = 12;

#[derive(Debug, Clone, Copy, Default)]
struct Seg {
    bytes: u64,
}

struct Inner {
    dir: PathBuf,
    segs: BTreeMap<u64, Seg>,
    head: File,
    head_seq: u64,
    cursor: (u64, u64),
    max_bytes: u64,
    seg_size: u64,
    closed: bool,
}

/// One queued request.
#[derive(Debug, Clone)]
pub struct Record {
    seq: u64,
    next: u64,
    /// The snappy `WriteRequest`.
    pub payload: Vec<u8>,
    /// How many samples it carries.
    pub samples: u32,
}

/// The on-disk queue (see the module docs).
pub struct Queue {
    inner: Mutex<Inner>,
    ready: Condvar,
    stats: Arc<Stats>,
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

/// Reads the record at `off` of `path`: `Ok(None)` at a clean end, `Err` for a torn one.
fn read_record(f: &mut File, off: u64) -> std::io::Result<Option<(Vec<u8>, u32)>> {
    f.seek(SeekFrom::Start(off))?;
    let mut h = [0u8; HEADER];
    match f.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(h[0..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(h[4..8].try_into().unwrap_or_default());
    let samples = u32::from_le_bytes(h[8..12].try_into().unwrap_or_default());
    let mut payload = vec![0u8; len];
    f.read_exact(&mut payload)?;
    if crc32c::crc32c(&payload) != crc {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "record checksum mismatch"));
    }
    Ok(Some((payload, samples)))
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, bounded by `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64, stats: Arc<Stats>) -> Result<Arc<Queue>> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let mut segs = BTreeMap::new();
        for e in std::fs::read_dir(dir).map_err(io("list", dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(seq) = name.strip_suffix(".seg").and_then(|s| s.parse::<u64>().ok()) {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                segs.insert(seq, Seg { bytes: len });
            }
        }
        // Cut the newest segment at its first torn record (a crash mid-append).
        if let Some((&last, _)) = segs.iter().next_back() {
            let path = seg_path(dir, last);
            let mut f = OpenOptions::new().read(true).write(true).open(&path).map_err(io("open", &path))?;
            let mut off = 0u64;
            loop {
                match read_record(&mut f, off) {
                    Ok(Some((p, _))) => off += (HEADER + p.len()) as u64,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(segment = %path.display(), offset = off, error = %e, "queue segment torn, truncating");
                        break;
                    }
                }
            }
            f.set_len(off).map_err(io("truncate", &path))?;
            segs.insert(last, Seg { bytes: off });
        }
        let head_seq = segs.keys().next_back().map_or(1, |s| s + 1);
        let head_path = seg_path(dir, head_seq);
        let head = OpenOptions::new().create(true).append(true).open(&head_path).map_err(io("create", &head_path))?;
        segs.insert(head_seq, Seg::default());
        let cursor_path = dir.join("cursor");
        let first = *segs.keys().next().unwrap_or(&head_seq);
        let mut cursor = std::fs::read_to_string(&cursor_path)
            .ok()
            .and_then(|s| {
                let mut it = s.split_ascii_whitespace().map(|x| x.parse::<u64>().ok());
                Some((it.next()??, it.next()??))
            })
            .unwrap_or((first, 0));
        if !segs.contains_key(&cursor.0) || cursor.0 < first {
            cursor = (first, 0);
        }
        let seg_size = (max_bytes / 8).clamp(64 << 10, 64 << 20);
        let q = Queue {
            inner: Mutex::new(Inner {
                dir: dir.to_path_buf(),
                segs,
                head,
                head_seq,
                cursor,
                max_bytes,
                seg_size,
                closed: false,
            }),
            ready: Condvar::new(),
            stats,
        };
        q.update_bytes(&q.lock());
        Ok(Arc::new(q))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update_bytes(&self, inner: &Inner) {
        let total: u64 = inner.segs.values().map(|s| s.bytes).sum();
        self.stats.queue_bytes.store(total, Ordering::Relaxed);
    }

    /// Appends one request carrying `samples` samples.
    pub fn push(&self, payload: &[u8], samples: u32) -> Result<()> {
        let mut g = self.lock();
        let inner = &mut *g;
        let rec_len = (HEADER + payload.len()) as u64;
        let head_bytes = inner.segs.get(&inner.head_seq).map_or(0, |s| s.bytes);
        if head_bytes > 0 && head_bytes + rec_len > inner.seg_size {
            let old = seg_path(&inner.dir, inner.head_seq);
            let _ = inner.head.sync_data();
            inner.head_seq += 1;
            let path = seg_path(&inner.dir, inner.head_seq);
            inner.head = OpenOptions::new().create(true).append(true).open(&path).map_err(io("create", &path))?;
            inner.segs.insert(inner.head_seq, Seg::default());
            tracing::debug!(closed = %old.display(), "queue segment rolled");
        }
        // Make room: drop the oldest closed segments, sent or not.
        loop {
            let total: u64 = inner.segs.values().map(|s| s.bytes).sum();
            let Some((&oldest, _)) = inner.segs.iter().next() else { break };
            if total + rec_len <= inner.max_bytes || oldest == inner.head_seq {
                break;
            }
            let path = seg_path(&inner.dir, oldest);
            if inner.cursor.0 <= oldest {
                let from = if inner.cursor.0 == oldest { inner.cursor.1 } else { 0 };
                let lost = count_samples(&path, from);
                self.stats.dropped_full_samples.fetch_add(lost, Ordering::Relaxed);
                tracing::warn!(segment = %path.display(), samples = lost, "queue full, dropping its oldest unsent data");
                let next = inner.segs.range(oldest + 1..).next().map_or(inner.head_seq, |(s, _)| *s);
                inner.cursor = (next, 0);
            }
            let _ = std::fs::remove_file(&path);
            inner.segs.remove(&oldest);
        }
        let mut h = [0u8; HEADER];
        h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        h[8..12].copy_from_slice(&samples.to_le_bytes());
        let path = seg_path(&inner.dir, inner.head_seq);
        inner.head.write_all(&h).and_then(|_| inner.head.write_all(payload)).map_err(io("append to", &path))?;
        if let Some(s) = inner.segs.get_mut(&inner.head_seq) {
            s.bytes += rec_len;
        }
        self.stats.enqueued_samples.fetch_add(u64::from(samples), Ordering::Relaxed);
        self.update_bytes(inner);
        drop(g);
        self.ready.notify_all();
        Ok(())
    }

    /// The next unsent record, waiting up to `wait` for one; `None` if there is none (or the
    /// queue is closed).
    pub fn next(&self, wait: Duration) -> Option<Record> {
        let mut g = self.lock();
        loop {
            let (seq, off) = g.cursor;
            let bytes = g.segs.get(&seq).map_or(0, |s| s.bytes);
            if off < bytes {
                let path = seg_path(&g.dir, seq);
                let rec = File::open(&path).and_then(|mut f| read_record(&mut f, off));
                match rec {
                    Ok(Some((payload, samples))) => {
                        let next = off + (HEADER + payload.len()) as u64;
                        return Some(Record { seq, next, payload, samples });
                    }
                    Ok(None) | Err(_) => {
                        tracing::warn!(segment = %path.display(), offset = off, "unreadable queue record, skipping the rest of the segment");
                        g.cursor.1 = bytes;
                        continue;
                    }
                }
            }
            if seq < g.head_seq {
                // Finished a closed segment: move on and delete it.
                let next = g.segs.range(seq + 1..).next().map_or(g.head_seq, |(s, _)| *s);
                g.cursor = (next, 0);
                let _ = std::fs::remove_file(seg_path(&g.dir, seq));
                g.segs.remove(&seq);
                self.update_bytes(&g);
                continue;
            }
            if g.closed {
                return None;
            }
            let (ng, timeout) = self.ready.wait_timeout(g, wait).unwrap_or_else(|p| p.into_inner());
            g = ng;
            if timeout.timed_out() {
                return None;
            }
        }
    }

    /// Marks `rec` as done (sent or dropped) and persists the cursor.
    pub fn commit(&self, rec: &Record) -> Result<()> {
        let mut g = self.lock();
        if g.cursor.0 != rec.seq {
            return Ok(()); // its segment was dropped meanwhile
        }
        g.cursor.1 = rec.next;
        let (dir, cursor) = (g.dir.clone(), g.cursor);
        drop(g);
        let tmp = dir.join("cursor.tmp");
        std::fs::write(&tmp, format!("{} {}\n", cursor.0, cursor.1)).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, dir.join("cursor")).map_err(io("rename", &tmp))?;
        Ok(())
    }

    /// Whether every record was sent.
    pub fn is_drained(&self) -> bool {
        let g = self.lock();
        g.cursor.0 == g.head_seq && g.cursor.1 >= g.segs.get(&g.head_seq).map_or(0, |s| s.bytes)
    }

    /// Syncs the head segment and wakes the sender so it can stop.
    pub fn close(&self) {
        let mut g = self.lock();
        let _ = g.head.sync_data();
        g.closed = true;
        drop(g);
        self.ready.notify_all();
    }
}

fn count_samples(path: &Path, from: u64) -> u64 {
    let Ok(mut f) = File::open(path) else { return 0 };
    let mut off = from;
    let mut n = 0u64;
    while let Ok(Some((p, s))) = read_record(&mut f, off) {
        n += u64::from(s);
        off += (HEADER + p.len()) as u64;
    }
    n
}

/// The agent's [`Sink`]: encodes batches as remote-write requests (split at
/// `max_series_per_send`, external labels added) and queues them.
pub struct QueueSink {
    queue: Arc<Queue>,
    max_series: usize,
    external: Vec<(String, String)>,
}

impl QueueSink {
    /// A sink writing to `queue`.
    pub fn new(queue: Arc<Queue>, max_series: usize, external: &BTreeMap<String, String>) -> Self {
        Self { queue, max_series, external: external.iter().map(|(k, v)| (k.clone(), v.clone())).collect() }
    }

    fn relabel(&self, l: &Labels) -> Labels {
        if self.external.is_empty() {
            return l.clone();
        }
        let mut b = l.to_builder();
        for (k, v) in &self.external {
            if l.get(k).is_none() {
                b.push(k, v);
            }
        }
        b.build().unwrap_or_else(|_| l.clone())
    }
}

impl Sink for QueueSink {
    fn write(&self, _source: &'static str, batch: &WriteBatch) -> Result<()> {
        let mut scratch = Vec::new();
        let mut part = WriteBatch::new();
        part.metadata = batch.metadata.clone();
        for (l, s) in batch.iter() {
            part.push(self.relabel(l), s);
            if part.series_count() >= self.max_series {
                let body = telltale_ingest::prom_remote_write::encode(&part, &mut scratch);
                self.queue.push(&body, part.sample_count() as u32)?;
                part = WriteBatch::new();
            }
        }
        if !part.is_empty() {
            let body = telltale_ingest::prom_remote_write::encode(&part, &mut scratch);
            self.queue.push(&body, part.sample_count() as u32)?;
        }
        Ok(())
    }
}

/// What one attempt to send gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Sent,
    /// 4xx other than 429: will never succeed; the server's reason.
    Rejected(String),
    /// 5xx, 429, connection errors: try again.
    Retry(String),
}

/// One POST of `body` with `headers`, plus the configured headers and credentials.
fn post(agent: &ureq::Agent, opts: &Options, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Outcome {
    let mut req = agent.post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    for (k, v) in &opts.headers {
        req = req.header(k, v);
    }
    // Read per request, so a rotated password or token file is used at once.
    match authorization_header(opts.basic_auth.as_ref(), opts.authorization.as_ref()) {
        Ok(Some(h)) => req = req.header("Authorization", h),
        Ok(None) => {}
        Err(e) => return Outcome::Retry(e),
    }
    let res = req.send(body);
    match res {
        Ok(mut r) => {
            let code = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            match code {
                200..=299 => Outcome::Sent,
                429 | 500..=599 => Outcome::Retry(format!("server returned HTTP {code}: {}", text.trim())),
                _ => Outcome::Rejected(format!("server returned HTTP {code}: {}", text.trim())),
            }
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

fn send(agent: &ureq::Agent, opts: &Options, url: &str, body: &[u8]) -> Outcome {
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ];
    post(agent, opts, url, &headers, body)
}

/// Pushes `batch` to a Loki push endpoint as Promtail does: a snappy-compressed
/// `logproto.PushRequest` (`Content-Type: application/x-protobuf`, no `Content-Encoding`).
pub fn push_logs(agent: &ureq::Agent, opts: &Options, url: &str, batch: &LogBatch) -> Outcome {
    let raw = telltale_ingest::loki::encode_proto(batch);
    let body = match snap::raw::Encoder::new().compress_vec(&raw) {
        Ok(b) => b,
        // Only for inputs over snappy's 4 GiB block limit, far past any batch made here.
        Err(e) => return Outcome::Rejected(format!("cannot compress the push request: {e}")),
    };
    post(agent, opts, url, &[("Content-Type", "application/x-protobuf")], &body)
}

/// How [`deliver`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The server took the request.
    Sent,
    /// The server refused it for good (a 4xx other than 429), with its reason.
    Rejected(String),
    /// Shutdown's `drain_timeout` ran out while retrying: it may or may not be stored.
    Abandoned,
}

/// Sends with `send` until the server takes or refuses the request; 5xx, 429 and connection
/// errors are retried with [`backoff`] and counted in `retries`. A message on `stop` starts
/// shutdown (`stopping` holds since when, shared across calls); from then on retrying ends
/// after `opts.drain_timeout`. `what` names the request in the log (`remote write`).
pub fn deliver(
    opts: &Options,
    what: &str,
    retries: &AtomicU64,
    stop: &mpsc::Receiver<()>,
    stopping: &mut Option<Instant>,
    mut send: impl FnMut() -> Outcome,
) -> Delivery {
    let mut attempt = 0u32;
    loop {
        let why = match send() {
            Outcome::Sent => return Delivery::Sent,
            Outcome::Rejected(why) => return Delivery::Rejected(why),
            Outcome::Retry(why) => why,
        };
        retries.fetch_add(1, Ordering::Relaxed);
        let mut wait = backoff(opts.min_backoff, opts.max_backoff, attempt, fastrand::f64());
        if attempt == 0 {
            tracing::warn!(error = %why, "{what} failed; retrying with backoff");
        } else {
            tracing::debug!(error = %why, attempt, wait_ms = wait.as_millis() as u64, "{what} retry");
        }
        attempt += 1;
        if let Some(at) = *stopping {
            let left = opts.drain_timeout.saturating_sub(at.elapsed());
            if left.is_zero() {
                return Delivery::Abandoned;
            }
            wait = wait.min(left);
        }
        match stop.recv_timeout(wait) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) if stopping.is_none() => {
                *stopping = Some(Instant::now());
            }
            _ => {}
        }
    }
}

/// The delay before retry number `attempt` (0-based): `min * 2^attempt` capped at `max`,
/// with full jitter in its upper half so many agents do not retry in step.
pub fn backoff(min: Duration, max: Duration, attempt: u32, unit_random: f64) -> Duration {
    let base = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    base.mul_f64(0.5 + 0.5 * unit_random.clamp(0.0, 1.0))
}

/// The HTTP client the agent sends with (made by [`client`]).
pub type Client = ureq::Agent;

/// The HTTP client the sender uses: `opts.timeout` per request, `opts.tls_config` for https.
pub fn client(opts: &Options) -> Result<Client> {
    let proxy = match &opts.proxy_url {
        Some(u) => Some(ureq::Proxy::new(u).map_err(|e| Error::config("agent.proxy_url", e.to_string()))?),
        None => None,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(proxy)
        .timeout_global(Some(opts.timeout))
        .user_agent(concat!("Telltale-agent/", env!("CARGO_PKG_VERSION")))
        .build();
    crate::tls::agent(&opts.tls_config, config).map_err(|m| Error::config("agent.tls_config", m))
}

/// Drains `queue` to `url` with `agent` until `stop` fires and (then) the queue is empty or
/// `drain_timeout` has passed. Runs on its own thread.
pub fn ship(
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    opts: Options,
    agent: ureq::Agent,
    url: String,
    stop: mpsc::Receiver<()>,
) {
    let mut stopping: Option<Instant> = None;
    loop {
        if stopping.is_none() && !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
            stopping = Some(Instant::now());
        }
        if let Some(at) = stopping {
            if queue.is_drained() || at.elapsed() >= opts.drain_timeout {
                return;
            }
        }
        let Some(rec) = queue.next(Duration::from_millis(200)) else { continue };
        let attempt = || send(&agent, &opts, &url, &rec.payload);
        match deliver(&opts, "remote write", &stats.retries, &stop, &mut stopping, attempt) {
            Delivery::Sent => {
                stats.sent_samples.fetch_add(u64::from(rec.samples), Ordering::Relaxed);
            }
            Delivery::Rejected(why) => {
                stats.dropped_rejected_samples.fetch_add(u64::from(rec.samples), Ordering::Relaxed);
                tracing::warn!(samples = rec.samples, error = %why, "remote write refused a request; dropped");
            }
            Delivery::Abandoned => return,
        }
        if let Err(e) = queue.commit(&rec) {
            tracing::error!(error = %e, "cannot persist the queue cursor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let (min, max) = (Duration::from_millis(30), Duration::from_secs(5));
        assert_eq!(backoff(min, max, 0, 1.0), Duration::from_millis(30));
        assert_eq!(backoff(min, max, 0, 0.0), Duration::from_millis(15));
        assert_eq!(backoff(min, max, 3, 1.0), Duration::from_millis(240));
        assert_eq!(backoff(min, max, 30, 1.0), max);
    }

    #[test]
    fn the_logs_push_url_is_derived_from_the_remote_write_url() {
        let mut o = Options { remote_write_url: "https://h:7070/x/api/v1/write".into(), ..Options::default() };
        assert_eq!(o.logs_push_url().unwrap(), "https://h:7070/x/loki/api/v1/push");
        o.remote_write_url = "http://h/receive".into();
        assert!(o.logs_push_url().unwrap_err().to_string().starts_with("agent.logs_push_url: "));
        o.logs_push_url = "http://loki:3100/loki/api/v1/push".into();
        assert_eq!(o.logs_push_url().unwrap(), "http://loki:3100/loki/api/v1/push");
        o.logs_push_url = "loki:3100".into();
        assert!(o.validate().unwrap_err().to_string().starts_with("agent.logs_push_url: "));
    }

    #[test]
    fn deliver_retries_until_taken_refused_or_the_drain_timeout() {
        let opts = Options {
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            drain_timeout: Duration::from_millis(20),
            ..Options::default()
        };
        let retries = AtomicU64::new(0);
        let (stop_tx, stop) = mpsc::channel();
        let mut stopping = None;
        let mut answers = vec![Outcome::Sent, Outcome::Retry("503".into()), Outcome::Retry("refused".into())];
        let d = deliver(&opts, "test", &retries, &stop, &mut stopping, || answers.pop().unwrap());
        assert_eq!((d, retries.load(Ordering::Relaxed)), (Delivery::Sent, 2));
        let d = deliver(&opts, "test", &retries, &stop, &mut stopping, || Outcome::Rejected("400: bad".into()));
        assert_eq!(d, Delivery::Rejected("400: bad".into()));
        // Once stopped, retrying ends after the drain timeout.
        stop_tx.send(()).unwrap();
        let d = deliver(&opts, "test", &retries, &stop, &mut stopping, || Outcome::Retry("down".into()));
        assert_eq!(d, Delivery::Abandoned);
        assert!(stopping.is_some_and(|at| at.elapsed() >= opts.drain_timeout));
    }

    #[test]
    fn records_survive_reopen_and_resume_at_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let q = Queue::open(dir.path(), 1 << 20, stats.clone()).unwrap();
        for i in 0..5u8 {
            q.push(&[i; 10], u32::from(i)).unwrap();
        }
        let r = q.next(Duration::ZERO).unwrap();
        assert_eq!((r.payload[0], r.samples), (0, 0));
        q.commit(&r).unwrap();
        let r = q.next(Duration::ZERO).unwrap();
        assert_eq!(r.payload[0], 1);
        q.commit(&r).unwrap();
        drop(q);
        // A torn append at the end (a crash mid-write) is cut off.
        let seg = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .min()
            .unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        let q = Queue::open(dir.path(), 1 << 20, stats).unwrap();
        let mut got = Vec::new();
        while let Some(r) = q.next(Duration::ZERO) {
            got.push(r.payload[0]);
            q.commit(&r).unwrap();
        }
        assert_eq!(got, [2, 3, 4]);
        assert!(q.is_drained());
        q.push(b"x", 1).unwrap();
        assert_eq!(q.next(Duration::ZERO).unwrap().payload, b"x");
    }

    #[test]
    fn a_full_queue_drops_its_oldest_data_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let q = Queue::open(dir.path(), 1 << 20, stats.clone()).unwrap();
        let payload = vec![7u8; 60 << 10];
        for _ in 0..40 {
            q.push(&payload, 100).unwrap();
        }
        assert!(stats.queue_bytes.load(Ordering::Relaxed) <= 1 << 20);
        let dropped = stats.dropped_full_samples.load(Ordering::Relaxed);
        assert!(dropped > 0 && dropped % 100 == 0, "{dropped}");
        let mut left = 0;
        while let Some(r) = q.next(Duration::ZERO) {
            left += u64::from(r.samples);
            q.commit(&r).unwrap();
        }
        assert_eq!(left + dropped, 4000);
    }
}
