//! Alertmanager's time intervals (`time_intervals:` and the older `mute_time_intervals:`),
//! used by routes' `mute_time_intervals` and `active_time_intervals`. Times are in UTC;
//! `location` may only be `UTC` (or `Local`, read as UTC) for now.

use chrono::{DateTime, Datelike, Timelike};
use serde::{Deserialize, Serialize};
use telltale_model::Timestamp;

/// A named list of intervals.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    /// The name routes refer to.
    pub name: String,
    /// The intervals; the name matches when any of them does.
    #[serde(default)]
    pub time_intervals: Vec<TimeIntervalSpec>,
}

/// One interval: every field given must match (an empty field matches always).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeIntervalSpec {
    /// `start_time`–`end_time` ranges of the day (`HH:MM`, end exclusive, `24:00` allowed).
    pub times: Vec<TimeRangeSpec>,
    /// `monday`, `monday:friday`, ...
    pub weekdays: Vec<String>,
    /// `1`, `1:5`, `-3:-1` (negative counts from the month's end).
    pub days_of_month: Vec<String>,
    /// `1:3`, `may`, `january:march`.
    pub months: Vec<String>,
    /// `2024`, `2020:2022`.
    pub years: Vec<String>,
    /// Time zone; only `UTC` (and `Local`, read as UTC) for now.
    pub location: String,
}

/// A range of the day.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeSpec {
    /// `HH:MM`, inclusive.
    pub start_time: String,
    /// `HH:MM`, exclusive.
    pub end_time: String,
}

/// A compiled interval.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimeInterval {
    times: Vec<(u32, u32)>,
    weekdays: Vec<(u32, u32)>,
    days: Vec<(i32, i32)>,
    months: Vec<(u32, u32)>,
    years: Vec<(i32, i32)>,
}

const DAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn range<T: Copy + PartialOrd + std::fmt::Display>(
    s: &str,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, T), String> {
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (one(a.trim())?, one(b.trim())?),
        None => {
            let v = one(s.trim())?;
            (v, v)
        }
    };
    Ok((a, b))
}

fn minutes(s: &str) -> Result<u32, String> {
    let (h, m) = s.split_once(':').ok_or_else(|| format!("invalid time of day {s:?}: use HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| format!("invalid time of day {s:?}"))?,
        m.parse().map_err(|_| format!("invalid time of day {s:?}"))?,
    );
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("invalid time of day {s:?}"));
    }
    Ok(h * 60 + m)
}

impl TimeIntervalSpec {
    pub(crate) fn compile(&self) -> Result<TimeInterval, String> {
        if !matches!(self.location.as_str(), "" | "UTC" | "Etc/UTC" | "Local") {
            return Err(format!("location {:?} is not supported yet (only UTC)", self.location));
        }
        let mut times = Vec::new();
        for t in &self.times {
            let (a, b) = (minutes(&t.start_time)?, minutes(&t.end_time)?);
            if a >= b {
                return Err(format!("start_time {} must be before end_time {}", t.start_time, t.end_time));
            }
            times.push((a, b));
        }
        let day = |s: &str| {
            DAYS.iter()
                .position(|d| d.eq_ignore_ascii_case(s))
                .map(|i| i as u32)
                .ok_or_else(|| format!("{s:?} is not a day of the week"))
        };
        let month = |s: &str| match s.parse::<u32>() {
            Ok(n @ 1..=12) => Ok(n),
            _ => MONTHS
                .iter()
                .position(|m| m.eq_ignore_ascii_case(s))
                .map(|i| i as u32 + 1)
                .ok_or_else(|| format!("{s:?} is not a month")),
        };
        let dom = |s: &str| match s.parse::<i32>() {
            Ok(n) if (1..=31).contains(&n.abs()) => Ok(n),
            _ => Err(format!("{s:?} is not a day of the month (1 to 31, or -1 to -31 from the end)")),
        };
        let year = |s: &str| s.parse::<i32>().map_err(|_| format!("{s:?} is not a year"));
        Ok(TimeInterval {
            times,
            weekdays: self.weekdays.iter().map(|w| range(w, day)).collect::<Result<_, _>>()?,
            days: self.days_of_month.iter().map(|d| range(d, dom)).collect::<Result<_, _>>()?,
            months: self.months.iter().map(|m| range(m, month)).collect::<Result<_, _>>()?,
            years: self.years.iter().map(|y| range(y, year)).collect::<Result<_, _>>()?,
        })
    }
}

fn days_in_month(y: i32, m: u32) -> i32 {
    let next = if m == 12 {
        chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(31, |d| d.day() as i32)
}

impl TimeInterval {
    /// Whether the instant `ms` lies in this interval.
    pub(crate) fn contains(&self, ms: Timestamp) -> bool {
        let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let minute = t.hour() * 60 + t.minute();
        let in_any = |v: &[(u32, u32)], x: u32| v.is_empty() || v.iter().any(|(a, b)| *a <= x && x <= *b);
        if !self.times.is_empty() && !self.times.iter().any(|(a, b)| *a <= minute && minute < *b) {
            return false;
        }
        if !in_any(&self.weekdays, t.weekday().num_days_from_sunday()) || !in_any(&self.months, t.month()) {
            return false;
        }
        if !self.years.is_empty() && !self.years.iter().any(|(a, b)| *a <= t.year() && t.year() <= *b) {
            return false;
        }
        if !self.days.is_empty() {
            let n = days_in_month(t.year(), t.month());
            let d = t.day() as i32;
            let abs = |x: i32| if x < 0 { n + 1 + x } else { x };
            if !self.days.iter().any(|(a, b)| abs(*a) <= d && d <= abs(*b)) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn alertmanager_docs_examples() {
        let spec: TimeIntervalSpec = serde_yaml_ng::from_str(
            "times:\n  - start_time: '17:00'\n    end_time: '24:00'\nweekdays: ['monday:friday']\ndays_of_month: ['1:10', '-1']\nmonths: ['january:march', 'december']\nyears: ['2024:2025']\n",
        )
        .unwrap();
        let i = spec.compile().unwrap();
        assert!(i.contains(at("2024-01-02T18:00:00Z")), "a Tuesday evening in January");
        assert!(!i.contains(at("2024-01-02T16:59:00Z")), "before 17:00");
        assert!(!i.contains(at("2024-01-06T18:00:00Z")), "a Saturday");
        assert!(i.contains(at("2024-01-31T23:59:00Z")), "-1 is the last day of the month");
        assert!(!i.contains(at("2024-01-15T18:00:00Z")), "the 15th is in neither range");
        assert!(!i.contains(at("2024-04-01T18:00:00Z")), "April");
        assert!(!i.contains(at("2026-01-02T18:00:00Z")), "2026");
        let bad = |y: &str| serde_yaml_ng::from_str::<TimeIntervalSpec>(y).unwrap().compile().unwrap_err();
        assert!(bad("weekdays: [funday]").contains("not a day of the week"));
        assert!(bad("times: [{start_time: '10:00', end_time: '09:00'}]").contains("must be before"));
        assert!(bad("location: Europe/Berlin").contains("not supported yet"));
    }
}
