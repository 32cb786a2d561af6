//! A parser for series selectors as `match[]` takes them: `metric`, `{a="b", c=~"d"}`,
//! `metric{a!="b"}`, and Prometheus 3's quoted UTF-8 names (`{"my.metric", "a.b"="c"}`).
//! PromQL proper (functions, ranges, offsets) is not accepted here: `match[]` is a selector.
//!
//! Strings follow PromQL's lexer: double- or single-quoted with Go escapes, or backticks raw
//! (<https://prometheus.io/docs/prometheus/latest/querying/basics/#string-literals>).

use telltale_model::{MatchOp, Matcher, METRIC_NAME};

/// Parses one selector into matchers. At least one matcher must not match the empty
/// string, as Prometheus requires of `match[]` (otherwise it would select every series).
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, String> {
    let mut p = Parser { s: input, pos: 0 };
    let matchers = p.selector().map_err(|e| format!("invalid selector {input:?}: {e}"))?;
    if matchers.iter().all(Matcher::matches_empty) {
        return Err(format!("invalid selector {input:?}: match[] must contain at least one non-empty matcher"));
    }
    Ok(matchers)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, String> {
        let mut out = Vec::new();
        self.skip_ws();
        if self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':') {
            let name = self.ident(true);
            out.push(Matcher::equal(METRIC_NAME, name));
        }
        if self.eat("{") {
            loop {
                if self.eat("}") {
                    break;
                }
                out.push(self.matcher()?);
                if self.eat(",") {
                    continue;
                }
                if !self.eat("}") {
                    return Err(format!("expected ',' or '}}' at byte {}", self.pos));
                }
                break;
            }
        }
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(format!("unexpected {:?} at byte {}", self.rest(), self.pos));
        }
        if out.is_empty() {
            return Err("empty selector".into());
        }
        Ok(out)
    }

    fn ident(&mut self, metric: bool) -> String {
        let rest = self.rest();
        let end = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphabetic() || c == '_' || (metric && c == ':') || (i > 0 && c.is_ascii_digit()))
            })
            .map_or(rest.len(), |(i, _)| i);
        let ident = rest[..end].to_string();
        self.pos += end;
        ident
    }

    fn matcher(&mut self) -> Result<Matcher, String> {
        self.skip_ws();
        let name = match self.peek() {
            Some('"' | '\'' | '`') => {
                let quoted = self.string()?;
                // A quoted string alone in braces is the metric name (Prometheus 3 UTF-8 names).
                self.skip_ws();
                if matches!(self.peek(), Some(',' | '}')) {
                    return Ok(Matcher::equal(METRIC_NAME, quoted));
                }
                quoted
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => self.ident(false),
            _ => return Err(format!("expected a label name at byte {}", self.pos)),
        };
        self.skip_ws();
        let op = if self.eat("=~") {
            MatchOp::Regex
        } else if self.eat("!~") {
            MatchOp::NotRegex
        } else if self.eat("!=") {
            MatchOp::NotEqual
        } else if self.eat("=") {
            MatchOp::Equal
        } else {
            return Err(format!("expected one of '=', '!=', '=~', '!~' after {name:?}"));
        };
        self.skip_ws();
        let value = self.string()?;
        Matcher::new(op, name, value).map_err(|e| format!("invalid regular expression: {e}"))
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        let mut chars = self.rest().char_indices();
        let quote = match chars.next() {
            Some((_, q @ ('"' | '\'' | '`'))) => q,
            _ => return Err(format!("expected a quoted string at byte {start}")),
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + c.len_utf8();
                return Ok(out);
            }
            if c != '\\' || quote == '`' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                '\\' | '"' | '\'' => out.push(e),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                    let code = u32::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == n);
                    match code.and_then(char::from_u32) {
                        Some(ch) => out.push(ch),
                        None => return Err(format!("invalid escape \\{e}{hex} in string at byte {start}")),
                    }
                }
                other => return Err(format!("unknown escape \\{other} in string at byte {start}")),
            }
        }
        Err(format!("unterminated string starting at byte {start}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &str) -> String {
        parse_selector(s).map(|ms| ms.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" ")).unwrap_or_else(|e| e)
    }

    #[test]
    fn selectors() {
        assert_eq!(show("up"), r#"__name__="up""#);
        assert_eq!(show(r#"up{job="a", instance=~"b.*",}"#), r#"__name__="up" job="a" instance=~"b.*""#);
        assert_eq!(show(r#"{__name__=~"node_.+"}"#), r#"__name__=~"node_.+""#);
        assert_eq!(show(r#" { job != 'x' , a!~`c\d` , z="1" } "#), r#"job!="x" a!~"c\\d" z="1""#);
        assert_eq!(show(r#"{"my.metric", "a.b"="c"}"#), r#"__name__="my.metric" a.b="c""#);
        assert_eq!(show(r#"ns:rule_1{a="\u00e9\n\"q\""}"#), "__name__=\"ns:rule_1\" a=\"é\\n\\\"q\\\"\"");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (input, want) in [
            (r#"{a=""}"#, "at least one non-empty matcher"),
            (r#"{a=~".*"}"#, "at least one non-empty matcher"),
            ("", "empty selector"),
            ("{}", "empty selector"),
            (r#"{a="b""#, "expected ',' or '}'"),
            (r#"{a="b}"#, "unterminated string"),
            (r#"{a~"b"}"#, "expected one of"),
            (r#"{a=~"("}"#, "invalid regular expression"),
            (r#"up[5m]"#, "unexpected \"[5m]\""),
            (r#"{a="\q"}"#, "unknown escape"),
            (r#"rate(up)"#, "unexpected"),
        ] {
            let got = show(input);
            assert!(got.contains(want), "{input}: {got}");
        }
    }
}
