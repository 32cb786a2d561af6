//! Go's formatting, byte for byte where templates show it: `%v` of a float (`1e+06`),
//! `fmt.Sprintf` verbs with flags, width and precision, and `time.Time` layouts.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::Value;

/// Go's `time.Time.String` layout.
pub(crate) const GO_TIME_STRING: &str = "2006-01-02 15:04:05.999999999 -0700 MST";

/// A float as Go's `%v` prints it: the shortest digits that round-trip, in exponent form
/// (`1e+06`, `1.5e-05`) when the exponent is below -4 or at least 6.
pub fn go_float(v: f64) -> String {
    format_g(v, None, false)
}

/// `+Inf`, `-Inf`, `NaN` as Go prints them (with `+` only for infinity unless `plus`).
fn special(v: f64, plus: bool) -> Option<String> {
    if v.is_nan() {
        return Some(if plus { "+NaN".into() } else { "NaN".into() });
    }
    if v.is_infinite() {
        return Some(if v > 0.0 { "+Inf".into() } else { "-Inf".into() });
    }
    None
}

/// Decimal digits (no leading zeros, at least one) and the exponent of the first digit,
/// rounded to `prec` significant digits, or the shortest round-trip digits.
fn digits(v: f64, prec: Option<usize>) -> (String, i32) {
    let s = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// `d.ddde±XX` from digits and exponent.
fn exp_form(digits: &str, exp: i32, upper: bool) -> String {
    let mut s = String::new();
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.abs()));
    s
}

/// Plain decimal notation from digits and exponent, with exactly the digits given.
fn fixed_form(digits: &str, exp: i32) -> String {
    let nd = digits.len() as i32;
    if exp < 0 {
        format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
    } else if exp + 1 >= nd {
        format!("{}{}", digits, "0".repeat((exp + 1 - nd) as usize))
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{a}.{b}")
    }
}

/// Go's `%g` with an optional precision (`%.4g`); `upper` for `%G`.
fn format_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v, false) {
        return s;
    }
    let neg = v.is_sign_negative();
    let (mut d, exp) = digits(v, prec);
    // %g drops trailing zeros.
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    if v == 0.0 {
        d = "0".into();
    }
    let eprec = match prec {
        None => 6,
        Some(p) => p.max(1) as i32,
    };
    let exp = if v == 0.0 { 0 } else { exp };
    let body = if exp < -4 || exp >= eprec { exp_form(&d, exp, upper) } else { fixed_form(&d, exp) };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `%e` with precision `p`.
fn format_e(v: f64, p: usize, upper: bool) -> String {
    if let Some(s) = special(v, false) {
        return s;
    }
    let s = format!("{:.*e}", p, v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if v.is_sign_negative() { "-" } else { "" };
    format!("{sign}{mant}{}{}{:02}", if upper { 'E' } else { 'e' }, if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Go's `%f` with precision `p`.
fn format_f(v: f64, p: usize) -> String {
    if let Some(s) = special(v, false) {
        return s;
    }
    format!("{v:.p$}")
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `%...` directive.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %f %F %e %E %g %G %x %X %o %b
/// %q %t %c %T %%`, with flags `-+0 #`, width and precision. Mismatches render as Go
/// does (`%!d(float64=1.5)`, `%!s(MISSING)`, `%!(EXTRA ...)`).
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(&d) = chars.peek() {
                let Some(dv) = d.to_digit(10) else { break };
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(dv as usize).min(10_000));
                chars.next();
            }
            n
        };
        spec.width = num(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let s = format_one(verb, &spec, arg);
        out.push_str(&pad(s, &spec, matches!(arg, Value::Int(_) | Value::Float(_)) && verb != 'q'));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> =
            args[next..].iter().map(|a| format!("{}={}", a.type_name(), a.to_go_string())).collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn bad_verb(verb: char, arg: &Value) -> String {
    format!("%!{verb}({}={})", arg.type_name(), arg.to_go_string())
}

fn sign(s: String, spec: &Spec, negative: bool) -> String {
    if negative || s.starts_with('+') || s.starts_with('-') {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> String {
    match (verb, arg) {
        ('v', Value::Float(f)) => sign(format_g(*f, spec.prec, false), spec, *f < 0.0),
        ('v', Value::Int(i)) => sign(i.to_string(), spec, *i < 0),
        ('v', Value::Nil) => "<nil>".into(),
        ('v', v) => v.to_go_string(),
        ('s', Value::Str(s) | Value::Safe(s)) => match spec.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s', v @ (Value::List(_) | Value::Map(_) | Value::Time(_))) => v.to_go_string(),
        ('q', Value::Str(s) | Value::Safe(s)) => go_quote(s),
        ('t', Value::Bool(b)) => b.to_string(),
        ('d', Value::Int(i)) => sign(i.to_string(), spec, *i < 0),
        ('x' | 'X', Value::Int(i)) => {
            let s = format!("{:x}", i.unsigned_abs());
            let s = if spec.sharp { format!("0x{s}") } else { s };
            let s = if *i < 0 { format!("-{s}") } else { s };
            if verb == 'X' {
                s.to_uppercase()
            } else {
                s
            }
        }
        ('x' | 'X', Value::Str(s) | Value::Safe(s)) => {
            let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' {
                h.to_uppercase()
            } else {
                h
            }
        }
        ('o', Value::Int(i)) => format!("{}{:o}", if *i < 0 { "-" } else { "" }, i.unsigned_abs()),
        ('b', Value::Int(i)) => format!("{}{:b}", if *i < 0 { "-" } else { "" }, i.unsigned_abs()),
        ('c', Value::Int(i)) => char::from_u32(*i as u32).map(String::from).unwrap_or_else(|| "\u{fffd}".into()),
        ('f' | 'F', Value::Float(f)) => sign(format_f(*f, spec.prec.unwrap_or(6)), spec, *f < 0.0),
        ('e' | 'E', Value::Float(f)) => sign(format_e(*f, spec.prec.unwrap_or(6), verb == 'E'), spec, *f < 0.0),
        ('g' | 'G', Value::Float(f)) => sign(format_g(*f, spec.prec, verb == 'G'), spec, *f < 0.0),
        ('T', v) => match v {
            Value::Map(_) => "map[string]interface {}".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Nil => "<nil>".into(),
            v => v.type_name().into(),
        },
        _ => bad_verb(verb, arg),
    }
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric && !s.ends_with("Inf") && !s.ends_with("NaN") {
        let (sign, digits) = match s.strip_prefix(['-', '+', ' ']) {
            Some(rest) => (&s[..1], rest),
            None => ("", s.as_str()),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `ms` in RFC 3339 with as many fraction digits as needed (Go's `time.RFC3339Nano`).
pub(crate) fn rfc3339(ms: i64) -> String {
    go_time(ms, "2006-01-02T15:04:05.999999999Z07:00")
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Formats `ms` (UTC) with a Go reference layout (`2006-01-02 15:04:05`, `Jan _2`, `.000`,
/// `Z07:00`, `MST`, `PM`, ...).
pub(crate) fn go_time(ms: i64, layout: &str) -> String {
    let t = datetime(ms);
    let nanos = t.nanosecond() % 1_000_000_000;
    let mut out = String::new();
    let b = layout.as_bytes();
    let mut i = 0;
    let lower_after = |j: usize| b.get(j).is_some_and(|c| c.is_ascii_lowercase());
    while i < b.len() {
        let rest = &layout[i..];
        let tok = |p: &str| rest.starts_with(p);
        let hour12 = if t.hour().is_multiple_of(12) { 12 } else { t.hour() % 12 };
        let (adv, s): (usize, String) = if tok("January") {
            (7, MONTHS[t.month0() as usize].into())
        } else if tok("Jan") && !lower_after(i + 3) {
            (3, MONTHS[t.month0() as usize][..3].into())
        } else if tok("Monday") {
            (6, DAYS[t.weekday().num_days_from_sunday() as usize].into())
        } else if tok("Mon") && !lower_after(i + 3) {
            (3, DAYS[t.weekday().num_days_from_sunday() as usize][..3].into())
        } else if tok("MST") {
            (3, "UTC".into())
        } else if tok("2006") {
            (4, format!("{:04}", t.year()))
        } else if tok("002") {
            (3, format!("{:03}", t.ordinal()))
        } else if tok("01") {
            (2, format!("{:02}", t.month()))
        } else if tok("02") {
            (2, format!("{:02}", t.day()))
        } else if tok("03") {
            (2, format!("{hour12:02}"))
        } else if tok("04") {
            (2, format!("{:02}", t.minute()))
        } else if tok("05") {
            (2, format!("{:02}", t.second()))
        } else if tok("06") {
            (2, format!("{:02}", t.year() % 100))
        } else if tok("15") {
            (2, format!("{:02}", t.hour()))
        } else if tok("-07:00:00") {
            (9, "+00:00:00".into())
        } else if tok("-070000") {
            (7, "+000000".into())
        } else if tok("-07:00") {
            (6, "+00:00".into())
        } else if tok("-0700") {
            (5, "+0000".into())
        } else if tok("-07") {
            (3, "+00".into())
        } else if tok("Z07:00:00") {
            (9, "Z".into())
        } else if tok("Z070000") {
            (7, "Z".into())
        } else if tok("Z07:00") {
            (6, "Z".into())
        } else if tok("Z0700") {
            (5, "Z".into())
        } else if tok("Z07") {
            (3, "Z".into())
        } else if tok("PM") {
            (2, if t.hour() >= 12 { "PM" } else { "AM" }.into())
        } else if tok("pm") {
            (2, if t.hour() >= 12 { "pm" } else { "am" }.into())
        } else if tok("_2") {
            (2, format!("{:>2}", t.day()))
        } else if (tok(".0") || tok(",0") || tok(".9") || tok(",9")) && frac_len(&b[i + 1..]).is_some() {
            let (n, trim) = frac_len(&b[i + 1..]).unwrap_or((0, false));
            let digits = format!("{nanos:09}");
            let mut d = digits[..n.min(9)].to_string();
            if trim {
                while d.ends_with('0') {
                    d.pop();
                }
            }
            let s = if d.is_empty() { String::new() } else { format!("{}{d}", b[i] as char) };
            (n + 1, s)
        } else if tok("1") {
            (1, t.month().to_string())
        } else if tok("2") {
            (1, t.day().to_string())
        } else if tok("3") {
            (1, hour12.to_string())
        } else if tok("4") {
            (1, t.minute().to_string())
        } else if tok("5") {
            (1, t.second().to_string())
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            (c.len_utf8(), c.to_string())
        };
        out.push_str(&s);
        i += adv;
    }
    out
}

/// After a `.` or `,`: a run of only `0`s or only `9`s not followed by a digit; its length
/// and whether trailing zeros are trimmed (`9`s).
fn frac_len(b: &[u8]) -> Option<(usize, bool)> {
    let first = *b.first()?;
    let n = b.iter().take_while(|&&c| c == first).count();
    if b.get(n).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((n, first == b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
            (1.0 / 3.0, "0.3333333333333333"),
        ] {
            assert_eq!(go_float(v), want, "{v}");
        }
    }

    #[test]
    fn sprintf_like_go() {
        let f = Value::Float;
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            ("%.2f", vec![f(1.23456)], "1.23"),
            ("%.4g", vec![f(1234.5678)], "1235"),
            ("%.4g", vec![f(12345.0)], "1.234e+04"),
            ("%.4g", vec![f(0.000012345)], "1.234e-05"),
            ("%.4g", vec![f(1.0)], "1"),
            ("%5.1f|%-6s|%05d", vec![f(2.25), Value::str("ab"), Value::Int(-42)], "  2.2|ab    |-0042"),
            ("%d", vec![f(1.5)], "%!d(float64=1.5)"),
            ("%s %s", vec![Value::str("a")], "a %!s(MISSING)"),
            ("%s", vec![Value::str("a"), Value::Int(1)], "a%!(EXTRA int=1)"),
            (
                "%q %v %x %e %%",
                vec![Value::str("a\"b"), Value::Bool(true), Value::Int(255), f(1234.5)],
                "\"a\\\"b\" true ff 1.234500e+03 %",
            ),
            ("%+.1f %g", vec![f(2.0), f(1e21)], "+2.0 1e+21"),
        ];
        for (fmt, args, want) in cases {
            assert_eq!(sprintf(fmt, &args), want, "{fmt}");
        }
    }

    #[test]
    fn time_layouts() {
        // 2009-11-10 23:04:05.123 UTC, a Tuesday.
        let ms = 1_257_894_245_123;
        assert_eq!(go_time(ms, GO_TIME_STRING), "2009-11-10 23:04:05.123 +0000 UTC");
        assert_eq!(go_time(ms, "Mon Jan _2 15:04:05 2006"), "Tue Nov 10 23:04:05 2009");
        assert_eq!(go_time(ms, "2006-01-02T15:04:05.000Z07:00"), "2009-11-10T23:04:05.123Z");
        assert_eq!(go_time(ms, "3:04PM"), "11:04PM");
        assert_eq!(go_time(1_257_894_245_000, GO_TIME_STRING), "2009-11-10 23:04:05 +0000 UTC");
        assert_eq!(rfc3339(1_257_894_245_000), "2009-11-10T23:04:05Z");
    }
}
