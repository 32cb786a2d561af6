//! Alertmanager's matchers: `name="value"`, `name=~"regex"`, `name!=value`, `name!~re`,
//! alone or as a `{a="b", c=~"d"}` list (the `matchers:` config syntax and amtool's).

use telltale_model::{MatchOp, Matcher};

use crate::LabelSet;

/// Parses one matcher or a `{...}` list of them.
pub fn parse(s: &str) -> Result<Vec<Matcher>, String> {
    let t = s.trim();
    let inner = match t.strip_prefix('{') {
        Some(r) => r.strip_suffix('}').ok_or_else(|| format!("bad matcher format: {s}"))?,
        None => t,
    };
    let mut out = Vec::new();
    for part in split_top(inner) {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        out.push(parse_one(p)?);
    }
    Ok(out)
}

/// Splits at commas outside quotes.
fn split_top(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                esc = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn parse_one(s: &str) -> Result<Matcher, String> {
    let i = s.find(['=', '!']).ok_or_else(|| format!("bad matcher format: {s}"))?;
    let name = s[..i].trim();
    let rest = &s[i..];
    let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
        (MatchOp::Regex, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (MatchOp::Equal, v)
    } else {
        return Err(format!("bad matcher format: {s}"));
    };
    let name = name.trim_matches('"');
    if name.is_empty() {
        return Err(format!("bad matcher format: {s}"));
    }
    let v = value.trim();
    let value = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        unescape(&v[1..v.len() - 1])
    } else if v.starts_with('"') {
        return Err(format!("bad matcher format: {s}"));
    } else {
        v.to_string()
    };
    Matcher::new(op, name, value).map_err(|e| format!("invalid regular expression in {s}: {e}"))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether every matcher holds on `labels` (a missing label is the empty string).
pub fn matches(ms: &[Matcher], labels: &LabelSet) -> bool {
    ms.iter().all(|m| m.matches(labels.get(&m.name).map(String::as_str).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_syntax() {
        let ms =
            parse(r#"{alertname="Watchdog", severity=~"warn|crit", team!=ops, env!~"dev.*", msg="a, \"b\""}"#).unwrap();
        assert_eq!(ms.len(), 5);
        assert_eq!(ms[2].op, MatchOp::NotEqual);
        assert_eq!(ms[4].value, "a, \"b\"");
        let l: LabelSet = [("alertname", "Watchdog"), ("severity", "crit"), ("env", "prod"), ("msg", "a, \"b\"")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert!(matches(&ms, &l));
        assert_eq!(parse("foo=bar").unwrap()[0].to_string(), "foo=\"bar\"");
        assert!(parse("nope").is_err());
        assert!(parse("a=~(").is_err());
    }

    proptest::proptest! {
        /// A matcher printed the way Alertmanager prints it parses back to itself.
        #[test]
        fn printed_matchers_parse_back(name in "[a-zA-Z_][a-zA-Z0-9_]{0,10}", value in "[ -~]{0,20}", op in 0..4usize) {
            let op = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex][op];
            let Ok(m) = Matcher::new(op, &name, &value) else { return Ok(()) };
            let printed = format!("{{{}}}", m);
            let back = parse(&printed).unwrap();
            proptest::prop_assert_eq!(back, vec![m]);
        }
    }
}
