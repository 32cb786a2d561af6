/// Milliseconds since the Unix epoch, as Prometheus counts them.
pub type Timestamp = i64;

/// An inclusive range of timestamps `[start, end]`, in milliseconds (in nanoseconds where
/// the log APIs take it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// First timestamp included.
    pub start: Timestamp,
    /// Last timestamp included.
    pub end: Timestamp,
}

impl TimeRange {
    /// Every timestamp there is.
    pub const ALL: TimeRange = TimeRange { start: i64::MIN, end: i64::MAX };

    /// The range `[start, end]`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Self { start, end }
    }

    /// Whether `t` lies inside the range.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t <= self.end
    }

    /// Whether `[min, max]` shares at least one timestamp with the range.
    pub fn overlaps(&self, min: Timestamp, max: Timestamp) -> bool {
        min <= self.end && self.start <= max
    }
}
