//! `{name="value", name=~"re", ...}` into matchers, for per-stream retention rules.

use telltale_model::{MatchOp, Matcher};

pub(crate) fn parse(s: &str) -> Result<Vec<Matcher>, String> {
    let inner = s.trim().strip_prefix('{').and_then(|s| s.strip_suffix('}')).ok_or("want {name=\"value\", ...}")?;
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() {
            return Err("expected a label name".into());
        }
        rest = rest[end..].trim_start();
        let (op, len) = if rest.starts_with("=~") {
            (MatchOp::Regex, 2)
        } else if rest.starts_with("!~") {
            (MatchOp::NotRegex, 2)
        } else if rest.starts_with("!=") {
            (MatchOp::NotEqual, 2)
        } else if rest.starts_with('=') {
            (MatchOp::Equal, 1)
        } else {
            return Err(format!("expected =, !=, =~ or !~ after {name}"));
        };
        rest = rest[len..].trim_start();
        let q = rest.strip_prefix('"').ok_or("expected a quoted value")?;
        let mut value = String::new();
        let mut chars = q.char_indices();
        let mut after = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            x => x,
                        });
                    }
                }
                '"' => {
                    after = Some(&q[i + 1..]);
                    break;
                }
                c => value.push(c),
            }
        }
        rest = after.ok_or("unterminated value")?.trim_start();
        out.push(Matcher::new(op, name, value).map_err(|e| e.to_string())?);
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    if out.is_empty() {
        return Err("at least one matcher is needed".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn selectors() {
        let m = super::parse(r#"{env="dev", app=~"a|b", x!="y\""}"#).unwrap();
        assert_eq!(m.len(), 3);
        assert!(m[1].matches("b") && !m[1].matches("c"));
        assert_eq!(m[2].value, "y\"");
        assert!(super::parse("{}").is_err());
        assert!(super::parse("env=dev").is_err());
    }
}
