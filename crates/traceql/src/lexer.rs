//! Tokens of TraceQL, as Tempo's lexer cuts them: an attribute (`span.http.url`) is one token
//! whose name runs until whitespace or one of `{}()=~!<>&|^,`, numbers followed directly by a
//! unit are durations, and keywords stay identifiers until the parser reads them in context.

use crate::ast::{ends_attribute, Scope};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Pipe,
    Eq,
    Neq,
    Re,
    Nre,
    Gt,
    Gte,
    Lt,
    Lte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    And,
    Or,
    Not,
    Desc,
    Ance,
    Sibl,
    NotChild,
    NotParent,
    NotDesc,
    NotAnce,
    UnionChild,
    UnionParent,
    UnionDesc,
    UnionAnce,
    UnionSibl,
    Str(String),
    Int(i64),
    Float(f64),
    Duration(i64),
    Ident(String),
    /// `span.x`, `.x`: a complete attribute.
    Attr(Scope, String),
    /// `span:name`: scope and name of a scoped intrinsic.
    Scoped(String, String),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
    pub(crate) end: usize,
}

/// Words that are tokens of their own in Tempo's grammar (error messages name them).
pub(crate) const KEYWORDS: &[&str] = &[
    "true",
    "false",
    "nil",
    "ok",
    "error",
    "unset",
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
    "duration",
    "childCount",
    "name",
    "status",
    "statusMessage",
    "kind",
    "rootName",
    "rootServiceName",
    "traceDuration",
    "count",
    "avg",
    "max",
    "min",
    "sum",
    "by",
    "coalesce",
    "select",
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
    "parent",
];

impl Tok {
    /// How Tempo's error messages name the token.
    pub(crate) fn describe(&self) -> String {
        let s = match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Pipe => "|",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Not => "!",
            Tok::Desc => ">>",
            Tok::Ance => "<<",
            Tok::Sibl => "~",
            Tok::NotChild => "!>",
            Tok::NotParent => "!<",
            Tok::NotDesc => "!>>",
            Tok::NotAnce => "!<<",
            Tok::UnionChild => "&>",
            Tok::UnionParent => "&<",
            Tok::UnionDesc => "&>>",
            Tok::UnionAnce => "&<<",
            Tok::UnionSibl => "&~",
            Tok::Str(_) => "STRING",
            Tok::Int(_) => "INTEGER",
            Tok::Float(_) => "FLOAT",
            Tok::Duration(_) => "DURATION",
            Tok::Ident(s) if KEYWORDS.contains(&s.as_str()) => return s.clone(),
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Attr(scope, _) => scope.prefix(),
            Tok::Scoped(scope, _) => return format!("{scope}:"),
            Tok::Eof => "$end",
        };
        s.to_string()
    }
}

/// A lexing failure: byte offset and message.
pub(crate) type LexError = (usize, String);

const OPERATORS: &[(&str, Tok)] = &[
    ("!>>", Tok::NotDesc),
    ("!<<", Tok::NotAnce),
    ("&>>", Tok::UnionDesc),
    ("&<<", Tok::UnionAnce),
    (">>", Tok::Desc),
    ("<<", Tok::Ance),
    (">=", Tok::Gte),
    ("<=", Tok::Lte),
    ("!=", Tok::Neq),
    ("=~", Tok::Re),
    ("!~", Tok::Nre),
    ("!>", Tok::NotChild),
    ("!<", Tok::NotParent),
    ("&&", Tok::And),
    ("||", Tok::Or),
    ("&>", Tok::UnionChild),
    ("&<", Tok::UnionParent),
    ("&~", Tok::UnionSibl),
    ("{", Tok::LBrace),
    ("}", Tok::RBrace),
    ("(", Tok::LParen),
    (")", Tok::RParen),
    (",", Tok::Comma),
    ("|", Tok::Pipe),
    ("=", Tok::Eq),
    (">", Tok::Gt),
    ("<", Tok::Lt),
    ("+", Tok::Add),
    ("-", Tok::Sub),
    ("*", Tok::Mul),
    ("/", Tok::Div),
    ("%", Tok::Mod),
    ("^", Tok::Pow),
    ("!", Tok::Not),
    ("~", Tok::Sibl),
];

/// Cuts `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut out = Vec::new();
    let mut lx = Lexer { src, pos: 0 };
    loop {
        let t = lx.next()?;
        let eof = t.tok == Tok::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}

/// Cuts as many tokens as it can: what completions read (an unfinished query fails to lex
/// at its end). Returns the tokens and the error that stopped it, if any.
pub(crate) fn lex_partial(src: &str) -> (Vec<Token>, Option<LexError>) {
    let mut out = Vec::new();
    let mut lx = Lexer { src, pos: 0 };
    loop {
        match lx.next() {
            Ok(t) if t.tok == Tok::Eof => return (out, None),
            Ok(t) => out.push(t),
            Err(e) => return (out, Some(e)),
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn next(&mut self) -> Result<Token, LexError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let start = self.pos;
        let tok = self.token(start)?;
        Ok(Token { tok, pos: start, end: self.pos })
    }

    fn token(&mut self, start: usize) -> Result<Tok, LexError> {
        let Some(c) = self.peek() else { return Ok(Tok::Eof) };
        if c == '"' || c == '`' {
            return self.string(start).map(Tok::Str);
        }
        if c.is_ascii_digit() || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit())) {
            return self.number(start);
        }
        if c == '.' {
            self.bump();
            return self.attribute(start, Scope::None);
        }
        if c.is_alphabetic() || c == '_' {
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                self.bump();
            }
            let word = &self.src[start..self.pos];
            let scope = match word {
                "span" => Some(Scope::Span),
                "resource" => Some(Scope::Resource),
                "event" => Some(Scope::Event),
                "link" => Some(Scope::Link),
                "instrumentation" => Some(Scope::Instrumentation),
                _ => None,
            };
            match (self.peek(), scope) {
                (Some('.'), Some(scope)) => {
                    self.bump();
                    return self.attribute(start, scope);
                }
                (Some('.'), None) if word == "parent" => {
                    return Err((start, "the parent scope is not supported".into()));
                }
                (Some(':'), _) if matches!(word, "span" | "trace" | "event" | "link" | "instrumentation") => {
                    let word = word.to_string();
                    self.bump();
                    let name_start = self.pos;
                    while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        self.bump();
                    }
                    let name = &self.src[name_start..self.pos];
                    if name.is_empty() {
                        return Err((
                            name_start,
                            format!("syntax error: unexpected {}, expecting intrinsic", {
                                self.peek().map_or("$end".to_string(), String::from)
                            }),
                        ));
                    }
                    return Ok(Tok::Scoped(word, name.to_string()));
                }
                _ => return Ok(Tok::Ident(word.to_string())),
            }
        }
        for (text, tok) in OPERATORS {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                return Ok(tok.clone());
            }
        }
        Err((start, format!("syntax error: unexpected character {c:?}")))
    }

    /// The name after a scope's dot: unquoted runs and `"quoted parts"`, until a character
    /// that ends an attribute.
    fn attribute(&mut self, start: usize, scope: Scope) -> Result<Tok, LexError> {
        let mut name = String::new();
        let mut any = false;
        while let Some(c) = self.peek() {
            if c == '"' {
                let q = self.pos;
                self.bump();
                loop {
                    match self.bump() {
                        None => return Err((q, "unexpected EOF, expecting \"".into())),
                        Some('"') => break,
                        Some('\\') => match self.bump() {
                            Some(e @ ('"' | '\\')) => name.push(e),
                            _ => return Err((q, "invalid escape sequence".into())),
                        },
                        Some(c) => name.push(c),
                    }
                }
                any = true;
            } else if ends_attribute(c) {
                break;
            } else {
                name.push(c);
                self.bump();
                any = true;
            }
        }
        if !any {
            let _ = start;
            return Err((self.pos, "syntax error: unexpected END_ATTRIBUTE, expecting IDENTIFIER".into()));
        }
        Ok(Tok::Attr(scope, name))
    }

    fn number(&mut self, start: usize) -> Result<Tok, LexError> {
        let mut float = false;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        // An exponent, only when digits follow (`1e5`, `2.5e-3`); otherwise `e` may start a
        // duration unit... which TraceQL has none starting with `e`.
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            } else {
                self.pos = save;
            }
        }
        let number = &self.src[start..self.pos];
        // A duration: the number runs on into units and more numbers (`1h30m`, `2.5s`).
        let tail_len = self
            .rest()
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || "nsumhµdwy".contains(*c)))
            .map_or(self.rest().len(), |(i, _)| i);
        if tail_len > 0 {
            let text = &self.src[start..self.pos + tail_len];
            if let Some(ns) = parse_duration(text) {
                self.pos += tail_len;
                return Ok(Tok::Duration(ns));
            }
        }
        if float {
            match number.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
                _ => Err((start, format!("value out of range: {number}"))),
            }
        } else {
            number.parse::<i64>().map(Tok::Int).map_err(|_| (start, format!("value out of range: {number}")))
        }
    }

    fn string(&mut self, start: usize) -> Result<String, LexError> {
        let quote = self.bump();
        let mut s = String::new();
        if quote == Some('`') {
            loop {
                match self.bump() {
                    None => return Err((start, "literal not terminated".into())),
                    Some('`') => return Ok(s),
                    Some(c) => s.push(c),
                }
            }
        }
        loop {
            match self.bump() {
                None | Some('\n') => return Err((start, "literal not terminated".into())),
                Some('"') => return Ok(s),
                Some('\\') => {
                    let c = self.bump().ok_or((start, "literal not terminated".to_string()))?;
                    let hex = |lx: &mut Self, n: usize| -> Result<char, LexError> {
                        let digits: String = (0..n).filter_map(|_| lx.bump()).collect();
                        u32::from_str_radix(&digits, 16)
                            .ok()
                            .filter(|_| digits.len() == n)
                            .and_then(char::from_u32)
                            .ok_or((start, "invalid syntax".to_string()))
                    };
                    s.push(match c {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'a' => '\x07',
                        'b' => '\x08',
                        'f' => '\x0c',
                        'v' => '\x0b',
                        '0' => '\0',
                        '\\' | '"' | '\'' => c,
                        'x' => hex(self, 2)?,
                        'u' => hex(self, 4)?,
                        'U' => hex(self, 8)?,
                        _ => return Err((start, "invalid syntax".into())),
                    });
                }
                Some(c) => s.push(c),
            }
        }
    }
}

/// Parses `1h30m`, `2.5s`, `100us`, `1d` (Prometheus's and Go's units together) into
/// nanoseconds; `None` if it is not one or does not fit.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut total: i128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[num_len..];
        let (unit, size): (&str, i128) = [
            ("ns", 1),
            ("us", 1_000),
            ("µs", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
            ("m", 60_000_000_000),
            ("h", 3_600_000_000_000),
            ("d", 86_400_000_000_000),
            ("w", 604_800_000_000_000),
            ("y", 31_536_000_000_000_000),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: i128 = int.parse().ok()?;
        total = total.checked_add(int.checked_mul(size)?)?;
        if !frac.is_empty() {
            // Fractions to the nanosecond, as Go's time.ParseDuration does.
            let digits = frac.len().min(30) as u32;
            let f: i128 = frac[..digits as usize].parse().ok()?;
            total = total.checked_add(f.checked_mul(size)? / 10i128.checked_pow(digits)?)?;
        }
        if total > i64::MAX as i128 {
            return None;
        }
    }
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_prometheus_and_go_units() {
        assert_eq!(parse_duration("1ms"), Some(1_000_000));
        assert_eq!(parse_duration("2.5s"), Some(2_500_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("100us"), Some(100_000));
        assert_eq!(parse_duration("100µs"), Some(100_000));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration("99999999999999y"), None);
    }

    #[test]
    fn attributes_are_one_token() {
        let toks: Vec<Tok> = lex(r#"{ span.http.url = "a" && ."a b" > 1.5 && span:duration > 2s }"#)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect();
        assert_eq!(toks[1], Tok::Attr(Scope::Span, "http.url".into()));
        assert_eq!(toks[5], Tok::Attr(Scope::None, "a b".into()));
        assert_eq!(toks[7], Tok::Float(1.5));
        assert_eq!(toks[9], Tok::Scoped("span".into(), "duration".into()));
        assert_eq!(toks[11], Tok::Duration(2_000_000_000));
    }
}
