//! Per-tenant and per-stream ingestion limits of the log write paths: bytes per second
//! (token buckets, Loki's `ingestion_rate_mb`/`ingestion_burst_size_mb` and
//! `per_stream_rate_limit`/`per_stream_rate_limit_burst`) and active streams per tenant
//! (`max_global_streams_per_user`). A breach refuses the whole request with 429 naming the
//! limit, and nothing of it is written, so a client's retry cannot duplicate lines.
//!
//! The tenant is the `X-Scope-OrgID` header (Loki's), `fake` without one, as Loki in
//! single-tenant mode. Time comes from the state's clock, so tests are exact.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use telltale_model::units::format_size;
use telltale_model::{LogBatch, Timestamp};

/// Ingestion rates and stream counts (`logs.rates`); 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogRates {
    /// Bytes of log lines per second one tenant may send, sustained (`"128MiB"`).
    #[serde(with = "telltale_model::units::size")]
    pub ingestion_rate: u64,
    /// Bytes one tenant may send at once above the sustained rate.
    #[serde(with = "telltale_model::units::size")]
    pub ingestion_burst: u64,
    /// Bytes of log lines per second one stream may receive, sustained.
    #[serde(with = "telltale_model::units::size")]
    pub per_stream_rate: u64,
    /// Bytes one stream may receive at once above its sustained rate.
    #[serde(with = "telltale_model::units::size")]
    pub per_stream_burst: u64,
    /// Most streams one tenant may have written to within the last hour.
    pub max_streams_per_tenant: usize,
}

impl Default for LogRates {
    fn default() -> Self {
        Self {
            ingestion_rate: 128 << 20,
            ingestion_burst: 256 << 20,
            per_stream_rate: 32 << 20,
            per_stream_burst: 64 << 20,
            max_streams_per_tenant: 10_000,
        }
    }
}

/// A stream is active for this long after its last write.
const ACTIVE_FOR_MS: Timestamp = 3_600_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

impl Bucket {
    fn full(burst: u64, now: Timestamp) -> Self {
        Self { tokens: burst as f64, at: now }
    }

    fn refill(&mut self, rate: u64, burst: u64, now: Timestamp) {
        let dt = (now - self.at).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + dt * rate as f64).min(burst as f64);
        self.at = now;
    }
}

#[derive(Debug, Default)]
struct Tenant {
    bucket: Option<Bucket>,
    /// stream hash → (last write, bucket)
    streams: HashMap<u64, (Timestamp, Option<Bucket>)>,
}

/// The limiter's state, shared by every log write path.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    tenants: Mutex<HashMap<String, Tenant>>,
}

/// Why a request was refused: the message names the limit by its config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused(pub(crate) String);

fn stream_hash(l: &telltale_model::Labels) -> u64 {
    let mut h = DefaultHasher::new();
    l.hash(&mut h);
    h.finish()
}

impl RateLimiter {
    /// Admits `batch` for `tenant` at `now`, or says which limit it breaks. Nothing is
    /// consumed when it is refused.
    pub(crate) fn admit(
        &self,
        tenant: &str,
        batch: &LogBatch,
        limits: &LogRates,
        now: Timestamp,
    ) -> Result<(), Refused> {
        let mut all = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let t = all.entry(tenant.to_string()).or_default();
        let total = batch.line_bytes() as u64;
        let lines = batch.entry_count();
        // Per stream bytes, and which streams are new.
        let mut per_stream: HashMap<u64, (u64, &telltale_model::Labels)> = HashMap::new();
        for (labels, entries) in batch.iter() {
            let e = per_stream.entry(stream_hash(labels)).or_insert((0, labels));
            e.0 += entries.iter().map(|x| x.line.len() as u64).sum::<u64>();
        }
        if limits.max_streams_per_tenant > 0 {
            let new = per_stream.keys().filter(|h| !t.streams.contains_key(h)).count();
            if new > 0 && t.streams.len() + new > limits.max_streams_per_tenant {
                t.streams.retain(|_, (seen, _)| now - *seen < ACTIVE_FOR_MS);
                if t.streams.len() + new > limits.max_streams_per_tenant {
                    return Err(Refused(format!(
                        "max_streams_per_tenant ({}) exceeded: tenant {tenant:?} has {} active streams and this request adds {new}; reduce the number of streams (fewer labels or label values) or raise logs.rates.max_streams_per_tenant",
                        limits.max_streams_per_tenant,
                        t.streams.len()
                    )));
                }
            }
        }
        let mut tenant_bucket = None;
        if limits.ingestion_rate > 0 {
            let burst = limits.ingestion_burst.max(limits.ingestion_rate);
            let mut b = t.bucket.unwrap_or_else(|| Bucket::full(burst, now));
            b.refill(limits.ingestion_rate, burst, now);
            if (b.tokens) < total as f64 {
                return Err(Refused(format!(
                    "ingestion_rate ({}/s, burst {}) exceeded for tenant {tenant:?} while attempting to ingest {lines} lines totaling {}; reduce log volume or raise logs.rates.ingestion_rate",
                    format_size(limits.ingestion_rate),
                    format_size(burst),
                    format_size(total)
                )));
            }
            b.tokens -= total as f64;
            tenant_bucket = Some(b);
        }
        let mut stream_buckets = Vec::new();
        if limits.per_stream_rate > 0 {
            let burst = limits.per_stream_burst.max(limits.per_stream_rate);
            for (h, (bytes, labels)) in &per_stream {
                let mut b = t.streams.get(h).and_then(|s| s.1).unwrap_or_else(|| Bucket::full(burst, now));
                b.refill(limits.per_stream_rate, burst, now);
                if b.tokens < *bytes as f64 {
                    return Err(Refused(format!(
                        "per_stream_rate ({}/s, burst {}) exceeded for stream {labels} while attempting to ingest {}; spread the lines over more streams or raise logs.rates.per_stream_rate",
                        format_size(limits.per_stream_rate),
                        format_size(burst),
                        format_size(*bytes)
                    )));
                }
                b.tokens -= *bytes as f64;
                stream_buckets.push((*h, b));
            }
        }
        // Admitted: commit the buckets and the streams' activity.
        if tenant_bucket.is_some() {
            t.bucket = tenant_bucket;
        }
        for h in per_stream.keys() {
            t.streams.entry(*h).or_insert((now, None)).0 = now;
        }
        for (h, b) in stream_buckets {
            if let Some(s) = t.streams.get_mut(&h) {
                s.1 = Some(b);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::{Labels, LogEntry};

    fn batch(streams: &[&str], bytes: usize) -> LogBatch {
        let mut b = LogBatch::new();
        for s in streams {
            let l = Labels::from_pairs([("job", *s)]).unwrap();
            b.push(l, [LogEntry::new(1, "x".repeat(bytes))]);
        }
        b
    }

    #[test]
    fn tenant_rate_refills_over_time() {
        let r = RateLimiter::default();
        let lim = LogRates { ingestion_rate: 100, ingestion_burst: 200, per_stream_rate: 0, ..Default::default() };
        assert!(r.admit("t", &batch(&["a"], 150), &lim, 0).is_ok());
        let e = r.admit("t", &batch(&["a"], 100), &lim, 0).unwrap_err();
        assert!(e.0.starts_with("ingestion_rate (100B/s, burst 200B) exceeded for tenant \"t\""), "{}", e.0);
        // Another tenant has its own bucket.
        assert!(r.admit("u", &batch(&["a"], 100), &lim, 0).is_ok());
        // One second later 100 more bytes are allowed (50 left + 100).
        assert!(r.admit("t", &batch(&["a"], 150), &lim, 1000).is_ok());
    }

    #[test]
    fn per_stream_rate_and_stream_count() {
        let r = RateLimiter::default();
        let lim = LogRates {
            ingestion_rate: 0,
            per_stream_rate: 10,
            per_stream_burst: 10,
            max_streams_per_tenant: 2,
            ..Default::default()
        };
        assert!(r.admit("t", &batch(&["a", "b"], 10), &lim, 0).is_ok());
        let e = r.admit("t", &batch(&["a"], 5), &lim, 0).unwrap_err();
        assert!(e.0.starts_with("per_stream_rate (10B/s, burst 10B) exceeded for stream {job=\"a\"}"), "{}", e.0);
        let e = r.admit("t", &batch(&["c"], 1), &lim, 1000).unwrap_err();
        assert!(e.0.starts_with("max_streams_per_tenant (2) exceeded"), "{}", e.0);
        // An hour later the old streams no longer count.
        assert!(r.admit("t", &batch(&["c"], 1), &lim, 2 * ACTIVE_FOR_MS).is_ok());
    }
}
