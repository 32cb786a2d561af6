//! The two histogram shapes a latency series keeps: the classic one Grafana and Jaeger query
//! (`_bucket{le}`, `_sum`, `_count`) with the last exemplar per bucket, and a sparse
//! exponential one (Prometheus native-histogram layout) that answers quantiles within a
//! known relative error.

use telltale_model::{SpanId, Timestamp, TraceId};

/// One exemplar: the span behind an observation, as `/api/v1/query_exemplars` serves it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// The trace, rendered as the `trace_id` exemplar label (32 lower-case hex digits).
    pub trace_id: TraceId,
    /// The span, rendered as the `span_id` exemplar label.
    pub span_id: SpanId,
    /// The observed value, in the histogram's unit (seconds, or milliseconds for the Jaeger
    /// names).
    pub value: f64,
    /// When it was observed: the `now` given to `observe`, in milliseconds.
    pub timestamp: Timestamp,
}

/// A classic histogram with fixed upper bounds (held by the caller) plus `+Inf`.
#[derive(Debug, Clone)]
pub(crate) struct Classic {
    /// Non-cumulative counts, one per bound and a last one for `+Inf`.
    counts: Box<[u64]>,
    /// The last exemplar that fell in each bucket.
    exemplars: Box<[Option<Exemplar>]>,
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

impl Classic {
    pub(crate) fn new(bounds: &[f64]) -> Classic {
        Classic {
            counts: vec![0; bounds.len() + 1].into(),
            exemplars: vec![None; bounds.len() + 1].into(),
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds `v` to the first bucket whose bound is `>= v` (Prometheus's `le`).
    pub(crate) fn observe(&mut self, bounds: &[f64], v: f64, exemplar: Option<Exemplar>) {
        let i = bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        if exemplar.is_some() {
            self.exemplars[i] = exemplar;
        }
        self.sum += v;
        self.count += 1;
    }

    /// Cumulative counts, one per bound then `+Inf` (equal to `count`).
    pub(crate) fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.counts.iter().scan(0u64, |acc, c| {
            *acc += c;
            Some(*acc)
        })
    }

    /// The last exemplar of each bucket (index as in `cumulative`).
    pub(crate) fn exemplars(&self) -> &[Option<Exemplar>] {
        &self.exemplars
    }
}

/// The exponential schema the quantile histograms use: bucket bounds grow by
/// `2^(2^-5) = 2^(1/32) ≈ 1.0219`, so a value reported as a bucket's harmonic-style midpoint
/// `2·l·u/(l+u)` is within `(b-1)/(b+1) ≈ 1.08 %` of any value in the bucket.
pub const SCHEMA: i8 = 5;

/// Buckets per power of two at [`SCHEMA`].
const PER_OCTAVE: usize = 1 << SCHEMA;

/// The largest relative error of [`crate::SpanMetrics::quantile`]: `(b-1)/(b+1)` for
/// `b = 2^(2^-SCHEMA)`.
pub fn max_relative_error() -> f64 {
    let b = 2f64.powf(1.0 / PER_OCTAVE as f64);
    (b - 1.0) / (b + 1.0)
}

/// Prometheus's default zero threshold: observations at or below it count as zero.
pub const ZERO_THRESHOLD: f64 = 2.938735877055719e-39;

/// A sparse exponential histogram in Prometheus's native-histogram layout (positive
/// buckets only: durations are never negative). Bucket `i` holds values in
/// `(2^((i-1)/32), 2^(i/32)]` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeHistogram {
    /// The schema: always [`SCHEMA`].
    pub schema: i8,
    /// Values at or below this count in `zero_count`.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Number of observations.
    pub count: u64,
    /// Sum of the observations, in seconds.
    pub sum: f64,
    /// `(bucket index, count)` sorted by index; empty buckets are absent. A native-histogram
    /// store derives Prometheus's spans and deltas from this.
    pub positive: Vec<(i32, u64)>,
}

impl Default for NativeHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl NativeHistogram {
    /// An empty histogram at [`SCHEMA`].
    pub fn new() -> NativeHistogram {
        NativeHistogram {
            schema: SCHEMA,
            zero_threshold: ZERO_THRESHOLD,
            zero_count: 0,
            count: 0,
            sum: 0.0,
            positive: Vec::new(),
        }
    }

    /// Adds one observation (seconds, not negative).
    pub(crate) fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        if v <= self.zero_threshold {
            self.zero_count += 1;
            return;
        }
        let key = bucket_index(v);
        match self.positive.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => self.positive[i].1 += 1,
            Err(i) => self.positive.insert(i, (key, 1)),
        }
    }

    /// Adds every bucket of `other` (same schema) into this one.
    pub fn merge(&mut self, other: &NativeHistogram) {
        debug_assert_eq!(self.schema, other.schema);
        self.count += other.count;
        self.sum += other.sum;
        self.zero_count += other.zero_count;
        for &(k, c) in &other.positive {
            match self.positive.binary_search_by_key(&k, |(k, _)| *k) {
                Ok(i) => self.positive[i].1 += c,
                Err(i) => self.positive.insert(i, (k, c)),
            }
        }
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) by nearest rank: the bucket holding the observation of
    /// rank `max(1, ceil(q·count))`, reported as `2·l·u/(l+u)` so it is within
    /// [`max_relative_error`] of that observation. `None` when empty or `q` is out of range.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = self.zero_count;
        if seen >= rank {
            return Some(0.0);
        }
        for &(k, c) in &self.positive {
            seen += c;
            if seen >= rank {
                let (l, u) = bucket_bounds(k);
                return Some(2.0 * l * u / (l + u));
            }
        }
        // Unreachable while counts add up; the last bucket is the best answer otherwise.
        self.positive.last().map(|&(k, _)| bucket_bounds(k).1)
    }
}

/// The bucket holding `v > 0`: the smallest `i` with `v <= 2^(i/32)`, computed from the
/// binary exponent and a table of the 32 fractional bounds (Prometheus's method, exact at
/// powers of two and free of `log2` rounding).
pub(crate) fn bucket_index(v: f64) -> i32 {
    let (frac, exp) = frexp(v);
    let bounds = fractional_bounds();
    let i = bounds.partition_point(|b| *b < frac);
    i as i32 + (exp - 1) * PER_OCTAVE as i32
}

/// Lower and upper bound of bucket `k`.
pub(crate) fn bucket_bounds(k: i32) -> (f64, f64) {
    let f = PER_OCTAVE as f64;
    (2f64.powf((k - 1) as f64 / f), 2f64.powf(k as f64 / f))
}

/// `2^(j/32 - 1)` for `j` in `0..32`: the bucket bounds within `[0.5, 1)`.
fn fractional_bounds() -> &'static [f64; PER_OCTAVE] {
    static BOUNDS: std::sync::OnceLock<[f64; PER_OCTAVE]> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| std::array::from_fn(|j| 2f64.powf(j as f64 / PER_OCTAVE as f64 - 1.0)))
}

/// `v = frac · 2^exp` with `frac` in `[0.5, 1)`, for positive finite `v` (C's `frexp`).
fn frexp(v: f64) -> (f64, i32) {
    debug_assert!(v > 0.0 && v.is_finite());
    if v < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first.
        let (f, e) = frexp(v * 2f64.powi(64));
        return (f, e - 64);
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_buckets_are_le_and_cumulative() {
        let bounds = [1.0, 2.0];
        let mut h = Classic::new(&bounds);
        for v in [0.5, 1.0, 1.5, 3.0] {
            h.observe(&bounds, v, None);
        }
        assert_eq!(h.cumulative().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(h.count, 4);
        assert_eq!(h.sum, 6.0);
    }

    #[test]
    fn exponential_buckets_hold_their_values() {
        assert_eq!(bucket_index(1.0), 0);
        assert_eq!(bucket_index(2.0), 32);
        assert_eq!(bucket_index(0.5), -32);
        assert_eq!(bucket_index(1.0000001), 1);
        for v in [1e-9, 3.7e-6, 0.0123, 0.5, 1.0, 7.3, 1234.5] {
            let (l, u) = bucket_bounds(bucket_index(v));
            assert!(l < v * (1.0 + 1e-12) && v <= u * (1.0 + 1e-12), "{v} not in ({l}, {u}]");
        }
        assert!(max_relative_error() < 0.011);
    }

    #[test]
    fn merge_adds_buckets() {
        let mut a = NativeHistogram::new();
        let mut b = NativeHistogram::new();
        a.observe(1.0);
        b.observe(1.0);
        b.observe(0.0);
        b.observe(4.0);
        a.merge(&b);
        assert_eq!(a.count, 4);
        assert_eq!(a.zero_count, 1);
        assert_eq!(a.positive, [(0, 2), (64, 1)]);
        assert_eq!(a.quantile(0.25), Some(0.0));
        assert_eq!(a.quantile(1.5), None);
    }
}
