//! Request parameters for the read endpoints: the query string merged with a
//! form-encoded POST body (Prometheus accepts both), `match[]`, `start`, `end`, `limit`.

use axum::extract::{FromRequest, Request};
use axum::http::{header, Method};
use telltale_model::{Matcher, TimeRange, Timestamp};

use crate::body::read_limited;
use crate::selector::parse_selector;
use crate::{ApiError, AppState};

/// Every `name=value` pair of the query string and, for form POSTs, the body, in order.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl FromRequest<AppState> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> =
            req.uri().query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if req.method() == Method::POST && is_form {
            let (parts, body) = req.into_parts();
            let body = read_limited(&parts.headers, body, state.limits().max_body_size).await?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Params(pairs))
    }
}

impl Params {
    #[cfg(test)]
    pub(crate) fn from_query(q: &str) -> Self {
        Params(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, owned.
    pub(crate) fn all_owned(&self, name: &str) -> Vec<String> {
        self.all(name).map(String::from).collect()
    }

    /// `start` and `end`, defaulting to all time.
    pub(crate) fn range(&self) -> Result<TimeRange, ApiError> {
        let start = self.get("start").map(|s| parse_time("start", s)).transpose()?.unwrap_or(TimeRange::ALL.start);
        let end = self.get("end").map(|s| parse_time("end", s)).transpose()?.unwrap_or(TimeRange::ALL.end);
        if end < start {
            return Err(ApiError::bad_input("invalid parameter \"end\": end timestamp must not be before start time"));
        }
        Ok(TimeRange::new(start, end))
    }

    /// Each `match[]` parsed into matchers.
    pub(crate) fn selectors(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        self.0
            .iter()
            .filter(|(k, _)| k == "match[]")
            .map(|(_, v)| {
                parse_selector(v).map_err(|e| ApiError::bad_input(format!("invalid parameter \"match[]\": {e}")))
            })
            .collect()
    }

    /// `limit`: at most this many results (0 or absent: no limit).
    pub(crate) fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(0),
            Some(s) => s.parse().map_err(|_| {
                ApiError::bad_input(format!("invalid parameter \"limit\": {s:?} is not a non-negative integer"))
            }),
        }
    }
}

/// Prometheus formats its minimum and maximum times like this; clients (Grafana) send them back.
const MIN_TIME: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME: &str = "292277025-08-18T07:12:54.999999999Z";

/// Parses a Prometheus API timestamp: unix seconds with optional decimals, or RFC 3339.
/// Milliseconds are kept, finer digits rounded, as Prometheus does.
pub(crate) fn parse_time(param: &str, s: &str) -> Result<Timestamp, ApiError> {
    let bad = || ApiError::bad_input(format!("invalid parameter {param:?}: cannot parse {s:?} to a valid timestamp"));
    if s == MIN_TIME {
        return Ok(TimeRange::ALL.start);
    }
    if s == MAX_TIME {
        return Ok(TimeRange::ALL.end);
    }
    if let Ok(f) = s.parse::<f64>() {
        let ms = (f * 1000.0).round();
        // Reject NaN, infinities and anything outside i64 milliseconds.
        if !(ms > i64::MIN as f64 && ms < i64::MAX as f64) {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    parse_rfc3339(s).ok_or_else(bad)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to milliseconds since the epoch.
fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Round to milliseconds using the first four digits.
        let frac: String = s[i..i + digits].chars().chain("0000".chars()).take(4).collect();
        millis = (frac.parse::<i64>().ok()? + 5) / 10;
        i += digits;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + min * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("t", "1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("t", "1700000000.123").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time("t", "1700000000.1235").unwrap(), 1_700_000_000_124);
        assert_eq!(parse_time("t", "-1.5").unwrap(), -1500);
        assert_eq!(parse_time("t", "1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("t", "2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("t", "2023-11-14T22:13:20.5Z").unwrap(), 1_700_000_000_500);
        assert_eq!(parse_time("t", "2023-11-14T23:13:20.123456789+01:00").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time("t", "2000-02-29T00:00:00-00:30").unwrap(), 951_784_200_000);
        assert_eq!(parse_time("t", MIN_TIME).unwrap(), i64::MIN);
        assert_eq!(parse_time("t", MAX_TIME).unwrap(), i64::MAX);
        for bad in
            ["", "now", "NaN", "inf", "1e300", "2023-13-01T00:00:00Z", "2023-11-14T22:13:20", "2023-11-14T22:13:20.Z"]
        {
            let e = parse_time("start", bad).unwrap_err();
            assert_eq!(e.message(), format!("invalid parameter \"start\": cannot parse {bad:?} to a valid timestamp"));
        }
    }

    #[test]
    fn params() {
        let p = Params::from_query("match[]=up&match[]=%7Bjob%3D%22a%22%7D&start=10&end=20&limit=3");
        assert_eq!(p.selectors().unwrap().len(), 2);
        assert_eq!(p.range().unwrap(), TimeRange::new(10_000, 20_000));
        assert_eq!(p.limit().unwrap(), 3);
        assert!(Params::from_query("start=20&end=10").range().is_err());
        assert_eq!(Params::from_query("").range().unwrap(), TimeRange::ALL);
        let e = Params::from_query("match[]=%7B%7D").selectors().unwrap_err();
        assert!(e.message().starts_with("invalid parameter \"match[]\": invalid selector"), "{}", e.message());
    }
}
