//! Lexing and parsing of Go template source into a tree of [`Node`]s.

use crate::{Error, Value};

/// A parsed template body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: the value is printed unless the pipeline declares variables.
    Action(Pipe),
    /// `{{ if p }}..{{ else if q }}..{{ else }}..{{ end }}`: branches in order, then else.
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    /// `{{ range p }}..{{ else }}..{{ end }}`.
    Range(Pipe, Vec<Node>, Vec<Node>),
    /// `{{ with p }}..{{ else }}..{{ end }}`.
    With(Pipe, Vec<Node>, Vec<Node>),
    /// `{{ template "name" p }}`.
    Template(String, Option<Pipe>, usize),
    /// `{{ break }}`
    Break,
    /// `{{ continue }}`
    Continue,
}

/// A pipeline with its optional variable declaration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipe {
    /// Variables declared (`$x :=`) or assigned (`$x =`), without the `$`.
    pub(crate) decl: Vec<String>,
    /// `=` rather than `:=`.
    pub(crate) assign: bool,
    /// Commands joined by `|`.
    pub(crate) cmds: Vec<Cmd>,
    /// Source line, for messages.
    pub(crate) line: usize,
}

/// One command: a value, or a function or method with arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmd {
    pub(crate) args: Vec<Operand>,
}

/// A term followed by field accesses (`$x.A.B`, `(pipe).A`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operand {
    pub(crate) term: Term,
    pub(crate) fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    /// `.`
    Dot,
    /// `$name` (`$` alone is the data passed to the template).
    Var(String),
    /// A constant.
    Lit(Value),
    /// A function name.
    Func(String),
    /// `( pipeline )`
    Sub(Box<Pipe>),
}

/// The result of parsing one source text.
pub(crate) struct Parsed {
    pub(crate) body: Vec<Node>,
    pub(crate) defines: Vec<(String, Vec<Node>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Dot,
    Var(String),
    Lit(Value),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// A lexed token and whether whitespace came before it.
#[derive(Debug, Clone)]
struct T {
    tok: Tok,
    spaced: bool,
}

enum Item {
    Text(String),
    Action { toks: Vec<T>, line: usize },
}

struct Parser<'a> {
    name: &'a str,
    items: Vec<Item>,
    pos: usize,
    defines: Vec<(String, Vec<Node>)>,
}

pub(crate) fn parse(name: &str, text: &str) -> Result<Parsed, Error> {
    let items = lex(name, text)?;
    let mut p = Parser { name, items, pos: 0, defines: Vec::new() };
    let (body, end) = p.list(true)?;
    if let Some((kw, line)) = end {
        return Err(p.err(line, format!("unexpected {{{{{kw}}}}}")));
    }
    Ok(Parsed { body, defines: p.defines })
}

fn err(name: &str, line: usize, message: impl Into<String>) -> Error {
    Error::Parse { name: name.to_string(), line, message: message.into() }
}

fn lex(name: &str, text: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut line = 1;
    let mut trim_next_text = false;
    loop {
        let Some(start) = rest.find("{{") else {
            let mut t = rest;
            if trim_next_text {
                t = t.trim_start();
            }
            if !t.is_empty() {
                items.push(Item::Text(t.to_string()));
            }
            break;
        };
        let mut t = &rest[..start];
        let after = &rest[start + 2..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_next_text {
            t = t.trim_start();
        }
        if trim_left {
            t = t.trim_end();
        }
        line += rest[..start].matches('\n').count();
        if !t.is_empty() {
            items.push(Item::Text(t.to_string()));
        }
        let inner_start = if trim_left { &after[1..] } else { after };
        let action_line = line;
        // Comments: `{{/* ... */}}`, possibly with trim markers.
        let trimmed = inner_start.trim_start();
        if trimmed.starts_with("/*") {
            let close = trimmed.find("*/").ok_or_else(|| err(name, line, "unclosed comment"))?;
            let after_c = &trimmed[close + 2..];
            let (trim_right, tail) = if let Some(t) = after_c.strip_prefix(" -}}") {
                (true, t)
            } else if let Some(t) = after_c.strip_prefix("}}") {
                (false, t)
            } else {
                return Err(err(name, line, "comment ends before closing delimiter"));
            };
            line += rest[start..rest.len() - tail.len()].matches('\n').count();
            trim_next_text = trim_right;
            rest = tail;
            continue;
        }
        let (toks, consumed, trim_right) = lex_action(name, inner_start, action_line)?;
        let tail = &inner_start[consumed..];
        line += rest[start..rest.len() - tail.len()].matches('\n').count();
        items.push(Item::Action { toks, line: action_line });
        trim_next_text = trim_right;
        rest = tail;
    }
    Ok(items)
}

/// Lexes one action's inside; returns its tokens, the bytes consumed through `}}`, and
/// whether it ended with the `-}}` trim marker.
fn lex_action(name: &str, s: &str, line: usize) -> Result<(Vec<T>, usize, bool), Error> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    let mut spaced = true;
    loop {
        let Some(&c) = b.get(i) else { return Err(err(name, line, "unclosed action")) };
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
            // ` -}}` closes with trimming.
            if s[i..].trim_start().starts_with("-}}") {
                let j = i + (s[i..].len() - s[i..].trim_start().len());
                return Ok((toks, j + 3, true));
            }
            i += 1;
            spaced = true;
            continue;
        }
        if s[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        let start = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    if b[j.min(b.len() - 1)] == b'\n' {
                        return Err(err(name, line, "unterminated quoted string"));
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return Err(err(name, line, "unterminated quoted string"));
                }
                let v = unquote(&s[i + 1..j]).ok_or_else(|| err(name, line, "bad escape in quoted string"))?;
                i = j + 1;
                Tok::Lit(Value::Str(v))
            }
            b'`' => {
                let end = s[i + 1..].find('`').ok_or_else(|| err(name, line, "unterminated raw quoted string"))?;
                let v = s[i + 1..i + 1 + end].to_string();
                i += end + 2;
                Tok::Lit(Value::Str(v))
            }
            b'\'' => {
                let end = s[i + 1..].find('\'').ok_or_else(|| err(name, line, "unterminated character constant"))?;
                let inner = unquote(&s[i + 1..i + 1 + end]).unwrap_or_default();
                let ch = inner.chars().next().ok_or_else(|| err(name, line, "empty character constant"))?;
                i += end + 2;
                Tok::Lit(Value::Int(ch as i64))
            }
            b'.' if !b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let n = ident_len(&b[i + 1..]);
                i += 1 + n;
                if n == 0 {
                    Tok::Dot
                } else {
                    Tok::Field(s[start + 1..i].to_string())
                }
            }
            b'$' => {
                let n = ident_len(&b[i + 1..]);
                i += 1 + n;
                Tok::Var(s[start + 1..i].to_string())
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'.' | b'_' | b'+' | b'-')) {
                    // A sign only continues a number right after an exponent marker.
                    if matches!(b[j], b'+' | b'-') && !matches!(b[j - 1], b'e' | b'E' | b'p' | b'P') {
                        break;
                    }
                    j += 1;
                }
                let text = &s[i..j];
                i = j;
                Tok::Lit(number(text).ok_or_else(|| err(name, line, format!("bad number syntax: {text:?}")))?)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let n = ident_len(&b[i..]);
                i += n;
                match &s[start..i] {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Nil),
                    w => Tok::Ident(w.to_string()),
                }
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(err(name, line, format!("unexpected {ch:?} in command")));
            }
        };
        toks.push(T { tok, spaced });
        spaced = false;
    }
}

fn ident_len(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count()
}

/// A Go number literal: decimal, hex, octal, binary, float, with `_` separators.
fn number(text: &str) -> Option<Value> {
    let t = text.replace('_', "");
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, t.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bn) = lower.strip_prefix("0b") {
        i64::from_str_radix(bn, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.chars().all(|c| c.is_ascii_digit()) {
        lower.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(Value::Int(if neg { -i } else { i }));
    }
    let f: f64 = lower.parse().ok()?;
    Some(Value::Float(if neg { -f } else { f }))
}

/// Go's interpreted string escapes.
fn unquote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&h, 16).ok()? as char);
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

type End = Option<(String, usize)>;

impl Parser<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> Error {
        err(self.name, line, message)
    }

    /// Parses nodes until `{{ end }}` or `{{ else ... }}` (returned as the terminator with
    /// the rest of its tokens left at `self.pos - 1`), or the end of input.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, End), Error> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let idx = self.pos;
            self.pos += 1;
            let (toks, line) = match &self.items[idx] {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action { toks, line } => (toks.clone(), *line),
            };
            let kw = match toks.first() {
                Some(T { tok: Tok::Ident(w), .. }) => w.as_str(),
                None => return Err(self.err(line, "missing value for command")),
                _ => "",
            };
            match kw {
                "end" | "else" => return Ok((nodes, Some((kw.to_string(), line)))),
                "if" => nodes.push(self.if_node(&toks[1..], line)?),
                "range" | "with" => {
                    let pipe = self.pipe(&toks[1..], line, kw == "range")?;
                    let (body, end) = self.list(false)?;
                    let else_ = self.else_part(end, line, kw)?;
                    nodes.push(if kw == "range" {
                        Node::Range(pipe, body, else_)
                    } else {
                        Node::With(pipe, body, else_)
                    });
                }
                "define" | "block" => {
                    if kw == "define" && !top {
                        return Err(self.err(line, "unexpected <define> in command"));
                    }
                    let (name, rest) = match toks.get(1) {
                        Some(T { tok: Tok::Lit(Value::Str(n)), .. }) => (n.clone(), &toks[2..]),
                        _ => return Err(self.err(line, format!("unexpected name in {kw} clause"))),
                    };
                    let pipe = if rest.is_empty() { None } else { Some(self.pipe(rest, line, false)?) };
                    let (body, end) = self.list(false)?;
                    match end {
                        Some((e, _)) if e == "end" => {}
                        _ => return Err(self.err(line, format!("unexpected EOF in {kw} {name:?}"))),
                    }
                    self.defines.push((name.clone(), body));
                    if kw == "block" {
                        nodes.push(Node::Template(name, pipe, line));
                    }
                }
                "template" => {
                    let (name, rest) = match toks.get(1) {
                        Some(T { tok: Tok::Lit(Value::Str(n)), .. }) => (n.clone(), &toks[2..]),
                        _ => return Err(self.err(line, "unexpected name in template clause")),
                    };
                    let pipe = if rest.is_empty() { None } else { Some(self.pipe(rest, line, false)?) };
                    nodes.push(Node::Template(name, pipe, line));
                }
                "break" | "continue" => {
                    if toks.len() > 1 {
                        return Err(self.err(line, format!("unexpected token in {{{{{kw}}}}}")));
                    }
                    nodes.push(if kw == "break" { Node::Break } else { Node::Continue });
                }
                _ => nodes.push(Node::Action(self.pipe(&toks, line, false)?)),
            }
        }
        Ok((nodes, None))
    }

    fn if_node(&mut self, toks: &[T], line: usize) -> Result<Node, Error> {
        let mut branches = vec![(self.pipe(toks, line, false)?, Vec::new())];
        loop {
            let (body, end) = self.list(false)?;
            if let Some(last) = branches.last_mut() {
                last.1 = body;
            }
            match end {
                Some((e, _)) if e == "end" => return Ok(Node::If(branches, Vec::new())),
                Some((_, eline)) => {
                    let etoks = match &self.items[self.pos - 1] {
                        Item::Action { toks, .. } => toks[1..].to_vec(),
                        Item::Text(_) => Vec::new(),
                    };
                    if etoks.is_empty() {
                        let (else_, end) = self.list(false)?;
                        return match end {
                            Some((e, _)) if e == "end" => Ok(Node::If(branches, else_)),
                            _ => Err(self.err(eline, "expected end; found else or EOF")),
                        };
                    }
                    match &etoks[0].tok {
                        Tok::Ident(w) if w == "if" => {
                            branches.push((self.pipe(&etoks[1..], eline, false)?, Vec::new()))
                        }
                        Tok::Ident(w) if w == "with" => {
                            // `else with` is sugar for an else branch holding a with.
                            let pipe = self.pipe(&etoks[1..], eline, false)?;
                            let (body, end) = self.list(false)?;
                            let else_ = self.else_part(end, eline, "with")?;
                            return Ok(Node::If(branches, vec![Node::With(pipe, body, else_)]));
                        }
                        _ => return Err(self.err(eline, "unexpected tokens after else")),
                    }
                }
                None => return Err(self.err(line, "unexpected EOF in if")),
            }
        }
    }

    /// After a range/with body: `{{ end }}`, or `{{ else }}..{{ end }}`.
    fn else_part(&mut self, end: End, line: usize, kw: &str) -> Result<Vec<Node>, Error> {
        match end {
            Some((e, _)) if e == "end" => Ok(Vec::new()),
            Some((_, eline)) => {
                let etoks = match &self.items[self.pos - 1] {
                    Item::Action { toks, .. } => toks[1..].to_vec(),
                    Item::Text(_) => Vec::new(),
                };
                if !etoks.is_empty() {
                    if kw == "with" && matches!(&etoks[0].tok, Tok::Ident(w) if w == "with") {
                        let pipe = self.pipe(&etoks[1..], eline, false)?;
                        let (body, end) = self.list(false)?;
                        let else_ = self.else_part(end, eline, "with")?;
                        return Ok(vec![Node::With(pipe, body, else_)]);
                    }
                    return Err(self.err(eline, format!("unexpected tokens after else in {kw}")));
                }
                let (else_, end) = self.list(false)?;
                match end {
                    Some((e, _)) if e == "end" => Ok(else_),
                    _ => {
                        Err(self
                            .err(eline, format!("expected end; found {}", if end.is_some() { "else" } else { "EOF" })))
                    }
                }
            }
            None => Err(self.err(line, format!("unexpected EOF in {kw}"))),
        }
    }

    /// A pipeline, with an optional declaration (`$x :=`, and `$i, $e :=` in range).
    fn pipe(&self, toks: &[T], line: usize, range: bool) -> Result<Pipe, Error> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        let declared = |t: &[T]| matches!(t.first(), Some(T { tok: Tok::Declare | Tok::Assign, .. }));
        if let Some(T { tok: Tok::Var(v), .. }) = rest.first() {
            if declared(&rest[1..]) {
                assign = matches!(rest[1].tok, Tok::Assign);
                decl.push(v.clone());
                rest = &rest[2..];
            } else if range && matches!(rest.get(1), Some(T { tok: Tok::Comma, .. })) {
                if let (Some(T { tok: Tok::Var(w), .. }), true) = (rest.get(2), declared(&rest[3.min(rest.len())..])) {
                    assign = matches!(rest[3].tok, Tok::Assign);
                    decl.push(v.clone());
                    decl.push(w.clone());
                    rest = &rest[4..];
                } else {
                    return Err(self.err(line, "range can only initialize variables"));
                }
            }
        }
        let (cmds, used) = self.cmds(rest, line)?;
        if used != rest.len() {
            return Err(self.err(line, "unexpected \")\" in command"));
        }
        if cmds.is_empty() {
            return Err(self.err(line, "missing value for command"));
        }
        Ok(Pipe { decl, assign, cmds, line })
    }

    /// Commands separated by `|`, up to a `)` or the end; returns how many tokens were used.
    fn cmds(&self, toks: &[T], line: usize) -> Result<(Vec<Cmd>, usize), Error> {
        let mut cmds = Vec::new();
        let mut i = 0;
        let mut args = Vec::new();
        while i < toks.len() {
            match &toks[i].tok {
                Tok::RParen => break,
                Tok::Pipe => {
                    if args.is_empty() {
                        return Err(self.err(line, "missing command"));
                    }
                    cmds.push(Cmd { args: std::mem::take(&mut args) });
                    i += 1;
                }
                _ => {
                    let (op, used) = self.operand(&toks[i..], line)?;
                    args.push(op);
                    i += used;
                }
            }
        }
        if !args.is_empty() {
            cmds.push(Cmd { args });
        } else if !cmds.is_empty() {
            return Err(self.err(line, "missing command"));
        }
        for c in &cmds {
            if let Some(Operand { term: Term::Lit(_), .. }) = c.args.first() {
                if c.args.len() > 1 {
                    return Err(self.err(line, "can't give argument to non-function"));
                }
            }
        }
        Ok((cmds, i))
    }

    fn operand(&self, toks: &[T], line: usize) -> Result<(Operand, usize), Error> {
        let mut i = 1;
        let (term, mut fields) = match &toks[0].tok {
            Tok::Dot => (Term::Dot, Vec::new()),
            Tok::Field(f) => (Term::Dot, vec![f.clone()]),
            Tok::Var(v) => (Term::Var(v.clone()), Vec::new()),
            Tok::Lit(v) => (Term::Lit(v.clone()), Vec::new()),
            Tok::Ident(f) => {
                if !crate::funcs::exists(f) {
                    return Err(self.err(line, format!("function {f:?} not defined")));
                }
                (Term::Func(f.clone()), Vec::new())
            }
            Tok::LParen => {
                let (cmds, used) = self.cmds(&toks[1..], line)?;
                if !matches!(toks.get(1 + used), Some(T { tok: Tok::RParen, .. })) {
                    return Err(self.err(line, "unclosed left paren"));
                }
                if cmds.is_empty() {
                    return Err(self.err(line, "missing value for parenthesized pipeline"));
                }
                i = used + 2;
                (Term::Sub(Box::new(Pipe { decl: Vec::new(), assign: false, cmds, line })), Vec::new())
            }
            t => return Err(self.err(line, format!("unexpected {t:?} in operand"))),
        };
        while let Some(T { tok: Tok::Field(f), spaced: false }) = toks.get(i) {
            fields.push(f.clone());
            i += 1;
        }
        Ok((Operand { term, fields }, i))
    }
}
