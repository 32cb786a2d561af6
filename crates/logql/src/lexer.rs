//! LogQL tokens. Numbers followed by letters (`5m`, `1h30m`, `20MB`) are one `Unit` token;
//! the parser reads it as a duration or a byte size where each is allowed.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    /// A number with a unit suffix, kept as written.
    Unit(String),
    /// `--strict`, `--keep-empty`
    Flag(String),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

const PUNCT: [&str; 27] = [
    "|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",", "=", "|", ">", "<",
    "+", "-", "*", "/", "%", "^",
];

pub(crate) fn lex(src: &str) -> Result<Vec<Token>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            // Comment to the end of the line.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        if c == b'"' || c == b'`' {
            let (s, end) = string(src, i)?;
            out.push(Token { tok: Tok::Str(s), pos: start });
            i = end;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_some_and(|c| c.is_ascii_alphabetic()) {
            i += 2;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b'_') {
                i += 1;
            }
            out.push(Token { tok: Tok::Flag(src[start + 2..i].to_string()), pos: start });
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(|c| c.is_ascii_digit())) {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                // Exponent sign: 1e-3
                i += 1;
                if i < b.len()
                    && (b[i] == b'-' || b[i] == b'+')
                    && matches!(b[i - 1], b'e' | b'E')
                    && is_plain_num(&src[start..i - 1])
                {
                    i += 1;
                }
            }
            let text = &src[start..i];
            let tok = if let Some(n) = parse_number(text) { Tok::Num(n) } else { Tok::Unit(text.to_string()) };
            out.push(Token { tok, pos: start });
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token { tok: Tok::Ident(src[start..i].to_string()), pos: start });
            continue;
        }
        match PUNCT.iter().find(|p| src[i..].starts_with(*p)) {
            Some(p) => {
                out.push(Token { tok: Tok::Punct(p), pos: start });
                i += p.len();
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(Error::parse(i, format!("unexpected character {ch:?}")));
            }
        }
    }
    out.push(Token { tok: Tok::Eof, pos: src.len() });
    Ok(out)
}

fn is_plain_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

fn parse_number(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    let lower = text.to_ascii_lowercase();
    if lower == "inf" || lower == "nan" {
        return None;
    }
    text.parse::<f64>().ok()
}

/// A double-quoted string with Go escapes, or a raw back-quoted string, starting at `i`.
fn string(src: &str, i: usize) -> Result<(String, usize)> {
    let b = src.as_bytes();
    let quote = b[i];
    if quote == b'`' {
        let end = src[i + 1..].find('`').ok_or_else(|| Error::parse(i, "unterminated raw string"))?;
        return Ok((src[i + 1..i + 1 + end].to_string(), i + end + 2));
    }
    let mut out = String::new();
    let mut chars = src[i + 1..].char_indices();
    while let Some((j, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1 + j + 1)),
            '\\' => {
                let (_, e) = chars.next().ok_or_else(|| Error::parse(i, "unterminated string"))?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                        let v = u32::from_str_radix(&hex, 16).map_err(|_| Error::parse(i + j, "bad escape"))?;
                        out.push(char::from_u32(v).ok_or_else(|| Error::parse(i + j, "bad escape"))?);
                    }
                    _ => return Err(Error::parse(i + 1 + j, format!("unknown escape sequence \\{e}"))),
                }
            }
            c => out.push(c),
        }
    }
    Err(Error::parse(i, "unterminated string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks(r#"rate({a="b\"c"} |= `x\y` [5m]) > 0.5"#),
            [
                Tok::Ident("rate".into()),
                Tok::Punct("("),
                Tok::Punct("{"),
                Tok::Ident("a".into()),
                Tok::Punct("="),
                Tok::Str("b\"c".into()),
                Tok::Punct("}"),
                Tok::Punct("|="),
                Tok::Str("x\\y".into()),
                Tok::Punct("["),
                Tok::Unit("5m".into()),
                Tok::Punct("]"),
                Tok::Punct(")"),
                Tok::Punct(">"),
                Tok::Num(0.5),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("| logfmt --strict 1e-3 20MB"),
            [
                Tok::Punct("|"),
                Tok::Ident("logfmt".into()),
                Tok::Flag("strict".into()),
                Tok::Num(0.001),
                Tok::Unit("20MB".into()),
                Tok::Eof
            ]
        );
        assert!(lex("\"open").is_err());
        assert!(lex("a ; b").is_err());
    }
}
