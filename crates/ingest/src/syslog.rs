//! Syslog messages (RFC 5424 and RFC 3164) into log entries, and the two TCP framings of
//! RFC 6587 (octet counting and newline-terminated), so `logger`, rsyslog and syslog-ng ship
//! to Telltale unchanged.
//!
//! Specs: <https://www.rfc-editor.org/rfc/rfc5424>, <https://www.rfc-editor.org/rfc/rfc3164>,
//! <https://www.rfc-editor.org/rfc/rfc6587>.
//!
//! Mapping (decisions, also in `docs/logs.md`): stream labels `host`, `app`, `facility`,
//! `severity` (names as Promtail's syslog target writes them: `informational`, `warning`, ...);
//! the line is MSG (a UTF-8 BOM dropped); `procid`, `msgid` and every structured-data
//! parameter (`sd_<id>_<name>`) are structured metadata. RFC 3164 timestamps carry no year or
//! zone: the year is the one that puts the time closest to the server's clock, the zone UTC.
//! A message that is neither format is stored whole as the line with `facility="user"`,
//! `severity="notice"` (RFC 3164's default) rather than dropped.

use telltale_model::{LogBatch, Nanos};

use crate::error::{Error, Result};
use crate::loglimits::{sanitize_label_name, LogBuilder, LogLimits};
use crate::loki::{days_from_civil, parse_rfc3339_ns};

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "security", "console", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const SEVERITIES: [&str; 8] =
    ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"];

/// One parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Facility name.
    pub facility: &'static str,
    /// Severity name.
    pub severity: &'static str,
    /// HOSTNAME, if given.
    pub host: Option<String>,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164), if given.
    pub app: Option<String>,
    /// Nanoseconds since the epoch (the server's clock when the message has no time).
    pub ts: Nanos,
    /// MSG.
    pub line: String,
    /// PROCID, MSGID and structured data, as metadata pairs.
    pub metadata: Vec<(String, String)>,
}

fn nil(s: &str) -> Option<String> {
    (s != "-" && !s.is_empty()).then(|| s.to_string())
}

/// Parses one message; `now` is the server's clock.
pub fn parse(raw: &[u8], now: Nanos) -> Message {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let fallback = || Message {
        facility: "user",
        severity: "notice",
        host: None,
        app: None,
        ts: now,
        line: text.to_string(),
        metadata: Vec::new(),
    };
    let Some(rest) = text.strip_prefix('<') else { return fallback() };
    let Some(end) = rest.find('>').filter(|&e| (1..=3).contains(&e)) else { return fallback() };
    let Ok(pri) = rest[..end].parse::<usize>() else { return fallback() };
    if pri > 191 {
        return fallback();
    }
    let (facility, severity) = (FACILITIES[pri / 8], SEVERITIES[pri % 8]);
    let body = &rest[end + 1..];
    if let Some(after) = body.strip_prefix("1 ") {
        if let Some(m) = rfc5424(after, facility, severity, now) {
            return m;
        }
    }
    rfc3164(body, facility, severity, now)
}

fn rfc5424(s: &str, facility: &'static str, severity: &'static str, now: Nanos) -> Option<Message> {
    let mut parts = s.splitn(6, ' ');
    let ts = parts.next()?;
    let host = parts.next()?;
    let app = parts.next()?;
    let procid = parts.next()?;
    let msgid = parts.next()?;
    let rest = parts.next().unwrap_or("");
    let ts = if ts == "-" { now } else { parse_rfc3339_ns(ts)? };
    let mut metadata = Vec::new();
    if let Some(p) = nil(procid) {
        metadata.push(("procid".to_string(), p));
    }
    if let Some(m) = nil(msgid) {
        metadata.push(("msgid".to_string(), m));
    }
    let msg = if let Some(r) = rest.strip_prefix('-') {
        r.strip_prefix(' ').unwrap_or(r)
    } else if rest.starts_with('[') {
        let end = structured_data(rest, &mut metadata)?;
        let r = &rest[end..];
        r.strip_prefix(' ').unwrap_or(r)
    } else {
        return None;
    };
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(Message { facility, severity, host: nil(host), app: nil(app), ts, line: msg.to_string(), metadata })
}

/// Reads `[id k="v" ...][...]`; returns the offset after it.
fn structured_data(s: &str, out: &mut Vec<(String, String)>) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        i += 1;
        let id_end = s[i..].find([' ', ']'])? + i;
        let id = sanitize_label_name(&s[i..id_end]);
        i = id_end;
        loop {
            match b.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => i += 1,
                _ => {
                    let eq = s[i..].find('=')? + i;
                    let name = sanitize_label_name(&s[i..eq]);
                    if b.get(eq + 1) != Some(&b'"') {
                        return None;
                    }
                    let mut v = String::new();
                    let mut j = eq + 2;
                    loop {
                        let c = s[j..].chars().next()?;
                        match c {
                            '\\' => {
                                let n = s[j + 1..].chars().next()?;
                                if !matches!(n, '"' | '\\' | ']') {
                                    v.push('\\');
                                }
                                v.push(n);
                                j += 1 + n.len_utf8();
                            }
                            '"' => {
                                j += 1;
                                break;
                            }
                            c => {
                                v.push(c);
                                j += c.len_utf8();
                            }
                        }
                    }
                    out.push((format!("sd_{id}_{name}"), v));
                    i = j;
                }
            }
        }
    }
    Some(i)
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn rfc3164(s: &str, facility: &'static str, severity: &'static str, now: Nanos) -> Message {
    let mut ts = now;
    let mut rest = s;
    // "Mmm dd hh:mm:ss " (day space-padded), optionally "Mmm dd yyyy hh:mm:ss".
    if s.len() >= 16 {
        if let Some(m) = MONTHS.iter().position(|m| s.starts_with(m)) {
            // `get`, not indexing: the bytes at those offsets may be inside a multi-byte
            // character (found by the syslog fuzz target).
            let day = s.get(4..6).and_then(|d| d.trim().parse::<i64>().ok());
            let hms: Vec<i64> =
                s.get(7..15).map(|t| t.split(':').filter_map(|x| x.parse().ok()).collect()).unwrap_or_default();
            if let (Some(day), 3, Some(b' '), Some(after)) = (day, hms.len(), s.as_bytes().get(15), s.get(16..)) {
                ts = closest_year(m as i64 + 1, day, hms[0], hms[1], hms[2], now);
                rest = after;
            }
        }
    } else if let Some((first, after)) = s.split_once(' ') {
        // An RFC 3339 timestamp, as rsyslog's RSYSLOG_ForwardFormat writes.
        if let Some(t) = parse_rfc3339_ns(first) {
            ts = t;
            rest = after;
        }
    }
    if rest.len() == s.len() {
        if let Some((first, after)) = s.split_once(' ') {
            if let Some(t) = parse_rfc3339_ns(first) {
                ts = t;
                rest = after;
            }
        }
    }
    // HOSTNAME TAG[PID]: MSG
    let (mut host, mut app, mut metadata) = (None, None, Vec::new());
    let mut line = rest;
    let mut words = rest.splitn(2, ' ');
    let first = words.next().unwrap_or("");
    let after = words.next().unwrap_or("");
    let tag_of = |w: &str| -> Option<(String, Option<String>, usize)> {
        let end = w.find(':')?;
        let tag = &w[..end];
        if tag.is_empty() || tag.contains(' ') {
            return None;
        }
        let (name, pid) = match tag.find('[') {
            Some(i) if tag.ends_with(']') => (&tag[..i], Some(tag[i + 1..tag.len() - 1].to_string())),
            _ => (tag, None),
        };
        Some((name.to_string(), pid, end + 1))
    };
    if let Some((name, pid, n)) = tag_of(first).filter(|_| !first.is_empty()) {
        app = Some(name);
        pid.into_iter().for_each(|p| metadata.push(("procid".to_string(), p)));
        line = rest[n..].strip_prefix(' ').unwrap_or(&rest[n..]);
    } else if !first.is_empty() && !after.is_empty() {
        host = Some(first.to_string());
        if let Some((name, pid, n)) = tag_of(after) {
            app = Some(name);
            pid.into_iter().for_each(|p| metadata.push(("procid".to_string(), p)));
            line = after[n..].strip_prefix(' ').unwrap_or(&after[n..]);
        } else {
            line = after;
        }
    }
    Message { facility, severity, host, app, ts, line: line.to_string(), metadata }
}

/// The RFC 3164 time (UTC) in the year that puts it closest to `now`.
fn closest_year(month: i64, day: i64, h: i64, m: i64, s: i64, now: Nanos) -> Nanos {
    let now_s = now.div_euclid(1_000_000_000);
    let days = now_s.div_euclid(86_400);
    // Civil year of `now` (Hinnant's inverse, only the year needed).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mp = (5 * (doe - (365 * yoe + yoe / 4 - yoe / 100)) + 2) / 153;
    let year = yoe + era * 400 + i64::from(mp >= 10);
    let at = |y: i64| (days_from_civil(y, month, day) * 86_400 + h * 3600 + m * 60 + s) * 1_000_000_000;
    [year - 1, year, year + 1].into_iter().map(at).min_by_key(|t| (t - now).abs()).unwrap_or(now)
}

/// Builds a batch from messages, enforcing `limits`.
pub fn decode(messages: &[&[u8]], now: Nanos, limits: &LogLimits) -> Result<LogBatch> {
    let mut b = LogBuilder::new(limits);
    for raw in messages {
        let m = parse(raw, now);
        let mut pairs = vec![("facility", m.facility), ("severity", m.severity)];
        if let Some(h) = &m.host {
            pairs.push(("host", h));
        }
        if let Some(a) = &m.app {
            pairs.push(("app", a));
        }
        let stream = match b.stream(pairs.iter().copied()) {
            Ok(s) => s,
            // A host or app longer than the label limits: keep the line, not the label.
            Err(Error::Limit { .. }) => b.stream([("facility", m.facility), ("severity", m.severity)])?,
            Err(e) => return Err(e),
        };
        let meta = b.metadata(m.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        b.entry(&stream, m.ts, &m.line, meta)?;
    }
    Ok(b.batch)
}

/// Splits a TCP byte stream into messages: octet-counted (`LEN SP MSG`, RFC 6587 3.4.1) or
/// newline-terminated (3.4.2), decided per message by its first byte. Holds at most
/// `max_message` bytes of an unfinished message.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// A framer with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `data` and returns the complete messages it finished. A message longer than
    /// `max_message` is cut there (the rest of it is skipped).
    pub fn push(&mut self, data: &[u8], max_message: usize) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            let skip = rest.iter().take_while(|c| matches!(c, b'\n' | b'\r' | b' ')).count();
            let rest = &rest[skip..];
            pos += skip;
            if rest.is_empty() {
                break;
            }
            if rest[0].is_ascii_digit() {
                let Some(sp) = rest.iter().position(|&c| c == b' ') else {
                    if rest.len() > 10 {
                        // Not a length: treat the line as newline-framed.
                        match rest.iter().position(|&c| c == b'\n') {
                            Some(nl) => {
                                out.push(rest[..nl.min(max_message)].to_vec());
                                pos += nl + 1;
                                continue;
                            }
                            None => break,
                        }
                    }
                    break;
                };
                match std::str::from_utf8(&rest[..sp]).ok().and_then(|n| n.parse::<usize>().ok()) {
                    Some(len) if rest.len() >= sp + 1 + len => {
                        out.push(rest[sp + 1..sp + 1 + len.min(max_message)].to_vec());
                        pos += sp + 1 + len;
                    }
                    Some(_) => break,
                    None => match rest.iter().position(|&c| c == b'\n') {
                        Some(nl) => {
                            out.push(rest[..nl.min(max_message)].to_vec());
                            pos += nl + 1;
                        }
                        None => break,
                    },
                }
            } else {
                match rest.iter().position(|&c| c == b'\n') {
                    Some(nl) => {
                        out.push(rest[..nl.min(max_message)].to_vec());
                        pos += nl + 1;
                    }
                    None if rest.len() > max_message && max_message > 0 => {
                        out.push(rest[..max_message].to_vec());
                        pos = self.buf.len();
                    }
                    None => break,
                }
            }
        }
        self.buf.drain(..pos);
        out
    }

    /// What is left when the connection closes (a last message without a newline).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Nanos = 1_763_791_200_000_000_000; // 2025-11-22T06:00:00Z

    #[test]
    fn issue_7_a_month_followed_by_multibyte_characters_does_not_panic() {
        // From the syslog fuzz target: "<25>Oct>):" then bytes that are not UTF-8, which become
        // U+FFFD (3 bytes each), so offsets 4..16 fall inside characters.
        let m = parse(&[60, 50, 53, 62, 79, 99, 116, 62, 41, 58, 254, 255, 255, 255, 255, 255, 255, 255], NOW);
        assert_eq!((m.facility, m.severity, m.ts), ("daemon", "alert", NOW));
        assert!(m.line.ends_with('\u{fffd}'), "{}", m.line);
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let raw = "<165>1 2025-11-22T05:59:58.123Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"x\\\"\"][other a=\"b\"] \u{feff}An application event";
        let m = parse(raw.as_bytes(), NOW);
        assert_eq!((m.facility, m.severity), ("local4", "notice"));
        assert_eq!((m.host.as_deref(), m.app.as_deref()), (Some("mymachine.example.com"), Some("evntslog")));
        assert_eq!(m.ts, 1_763_791_198_123_000_000);
        assert_eq!(m.line, "An application event");
        assert_eq!(
            m.metadata,
            [
                ("procid".to_string(), "1234".to_string()),
                ("msgid".to_string(), "ID47".to_string()),
                ("sd_exampleSDID_32473_iut".to_string(), "3".to_string()),
                ("sd_exampleSDID_32473_eventSource".to_string(), "App\"x\"".to_string()),
                ("sd_other_a".to_string(), "b".to_string()),
            ]
        );
        let m = parse(b"<13>1 - - - - - -", NOW);
        assert_eq!((m.ts, m.line.as_str(), m.host), (NOW, "", None));
    }

    #[test]
    fn rfc3164_as_logger_and_rsyslog_send_it() {
        let m = parse(b"<34>Nov 22 05:59:59 host1 su[999]: 'su root' failed", NOW);
        assert_eq!((m.facility, m.severity), ("auth", "critical"));
        assert_eq!((m.host.as_deref(), m.app.as_deref()), (Some("host1"), Some("su")));
        assert_eq!(m.ts, NOW - 1_000_000_000);
        assert_eq!(m.line, "'su root' failed");
        assert_eq!(m.metadata, [("procid".to_string(), "999".to_string())]);
        // Without a hostname (logger --rfc3164 to a local socket), and a December date in January.
        let m = parse(b"<14>Dec 31 23:59:59 myapp: hello", 1_767_225_600_000_000_000 /* 2026-01-01 */);
        assert_eq!((m.app.as_deref(), m.line.as_str()), (Some("myapp"), "hello"));
        assert_eq!(m.ts, 1_767_225_599_000_000_000);
        let m = parse(b"just text", NOW);
        assert_eq!((m.facility, m.severity, m.line.as_str()), ("user", "notice", "just text"));
    }

    #[test]
    fn batch_labels() {
        let b = decode(&[b"<11>1 2025-11-22T06:00:00Z web nginx - - - boom"], NOW, &LogLimits::default()).unwrap();
        let (l, e) = b.iter().next().unwrap();
        assert_eq!(l.to_string(), r#"{app="nginx", facility="user", host="web", severity="error"}"#);
        assert_eq!(e[0].line, "boom");
    }

    #[test]
    fn framing() {
        let mut f = Framer::new();
        let mut got = f.push(b"17 <13>1 - - - - - a<13>1 - - - - - b\n17 <13>1 - - - -", 1024);
        got.extend(f.push(b" - c", 1024));
        assert_eq!(got, [b"<13>1 - - - - - a".to_vec(), b"<13>1 - - - - - b".to_vec(), b"<13>1 - - - - - c".to_vec()]);
        let mut f = Framer::new();
        assert!(f.push(b"<13>unterminated", 1024).is_empty());
        assert_eq!(f.finish(), Some(b"<13>unterminated".to_vec()));
        let mut f = Framer::new();
        assert_eq!(f.push(b"<13>abcdefgh\n", 4), [b"<13>".to_vec()]);
    }
}
