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

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's algorithm), for rendering dates without a calendar crate.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
