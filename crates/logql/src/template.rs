//! The subset of Go's `text/template` that `line_format` and `label_format` use in practice:
//! text, `{{ .label }}`, `{{ __line__ }}`, `{{ __timestamp__ }}`, pipelines (`{{ .a | upper }}`,
//! the piped value becoming the last argument as in Go), string and number literals, trim
//! markers (`{{-`, `-}}`), `{{ if X }}...{{ else }}...{{ end }}`, and Loki's common functions
//! (listed in [`call`]). Anything else is a parse error naming the function.

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    source: String,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipeline(Vec<Command>);

#[derive(Debug, Clone)]
struct Command {
    func: Option<String>,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Field(String),
    Dot,
    Line,
    Timestamp,
    Str(String),
    Num(f64),
    Sub(Pipeline),
}

/// What a template can read while rendering.
pub trait Fields {
    /// The value of label `name` ("" when missing).
    fn field(&self, name: &str) -> Option<&str>;
    /// The current line.
    fn line(&self) -> &str;
    /// The entry's timestamp in nanoseconds.
    fn ts(&self) -> i64;
}

const FUNCS: &[&str] = &[
    "ToUpper",
    "upper",
    "ToLower",
    "lower",
    "Title",
    "title",
    "TrimSpace",
    "trimSpace",
    "trim",
    "TrimPrefix",
    "trimPrefix",
    "TrimSuffix",
    "trimSuffix",
    "Replace",
    "replace",
    "default",
    "printf",
    "len",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "trunc",
    "substr",
    "unixEpoch",
    "unixEpochMillis",
    "unixEpochNanos",
    "eq",
    "ne",
    "not",
    "and",
    "or",
    "repeat",
    "alignLeft",
    "alignRight",
    "count",
    "urlencode",
    "urldecode",
    "b64enc",
    "b64dec",
    "indent",
    "nindent",
    "fromJson",
    "int",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "ceil",
    "floor",
    "round",
    "max",
    "min",
    "maxf",
    "minf",
];

impl Template {
    /// Parses a template.
    pub fn parse(src: &str) -> Result<Template> {
        let mut p = TParser { src, pos: 0 };
        let (nodes, end) = p.nodes()?;
        if end.is_some() {
            return Err(Error::parse(p.pos, format!("template {src:?}: unexpected {{{{end}}}} or {{{{else}}}}")));
        }
        Ok(Template { nodes, source: src.to_string() })
    }

    /// The template's text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether rendering reads only labels (not `__line__`), so it can be cached per label set.
    pub fn render(&self, f: &dyn Fields) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, f, &mut out);
        out
    }
}

fn render_nodes(nodes: &[Node], f: &dyn Fields, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&eval_pipeline(p, f)),
            Node::If(c, a, b) => {
                if truthy(&eval_pipeline(c, f)) {
                    render_nodes(a, f, out)
                } else {
                    render_nodes(b, f, out)
                }
            }
        }
    }
}

fn truthy(s: &str) -> bool {
    !s.is_empty() && s != "false" && s != "0"
}

fn eval_pipeline(p: &Pipeline, f: &dyn Fields) -> String {
    let mut prev: Option<String> = None;
    for c in &p.0 {
        let mut args: Vec<String> = c.args.iter().map(|a| eval_arg(a, f)).collect();
        if let Some(v) = prev.take() {
            args.push(v);
        }
        prev = Some(match &c.func {
            None => args.into_iter().next().unwrap_or_default(),
            Some(name) => call(name, &args, f),
        });
    }
    prev.unwrap_or_default()
}

fn eval_arg(a: &Arg, f: &dyn Fields) -> String {
    match a {
        Arg::Field(n) => f.field(n).unwrap_or("").to_string(),
        Arg::Dot => String::new(),
        Arg::Line => f.line().to_string(),
        Arg::Timestamp => f.ts().to_string(),
        Arg::Str(s) => s.clone(),
        Arg::Num(n) => crate::value::fmt_num(*n),
        Arg::Sub(p) => eval_pipeline(p, f),
    }
}

fn num(s: &str) -> f64 {
    s.trim().parse().unwrap_or(0.0)
}

/// The template functions Telltale implements (Loki's names).
fn call(name: &str, a: &[String], f: &dyn Fields) -> String {
    let arg = |i: usize| a.get(i).map(String::as_str).unwrap_or("");
    let last = a.last().map(String::as_str).unwrap_or("");
    match name {
        "ToUpper" | "upper" => last.to_uppercase(),
        "ToLower" | "lower" => last.to_lowercase(),
        "Title" | "title" => {
            let mut out = String::new();
            let mut start = true;
            for c in last.chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            out
        }
        "TrimSpace" | "trimSpace" | "trim" => last.trim().to_string(),
        "TrimPrefix" | "trimPrefix" => {
            // Go's TrimPrefix(s, prefix); Sprig's trimPrefix(prefix, s).
            let (s, p) = if name == "TrimPrefix" { (arg(0), arg(1)) } else { (arg(1), arg(0)) };
            s.strip_prefix(p).unwrap_or(s).to_string()
        }
        "TrimSuffix" | "trimSuffix" => {
            let (s, p) = if name == "TrimSuffix" { (arg(0), arg(1)) } else { (arg(1), arg(0)) };
            s.strip_suffix(p).unwrap_or(s).to_string()
        }
        "Replace" => {
            let n: i64 = arg(3).parse().unwrap_or(-1);
            if n < 0 {
                arg(0).replace(arg(1), arg(2))
            } else {
                arg(0).replacen(arg(1), arg(2), n as usize)
            }
        }
        "replace" => arg(2).replace(arg(0), arg(1)),
        "default" => {
            if arg(1).is_empty() {
                arg(0).to_string()
            } else {
                arg(1).to_string()
            }
        }
        "printf" => printf(arg(0), &a[1.min(a.len())..]),
        "len" => last.chars().count().to_string(),
        "count" => {
            let re = regex::Regex::new(arg(0));
            re.map(|r| r.find_iter(arg(1)).count().to_string()).unwrap_or_default()
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => match regex::Regex::new(arg(0)) {
            Ok(re) if name == "regexReplaceAll" => re.replace_all(arg(1), arg(2)).into_owned(),
            Ok(re) => re.replace_all(arg(1), regex::NoExpand(arg(2))).into_owned(),
            Err(_) => String::new(),
        },
        "contains" => arg(1).contains(arg(0)).to_string(),
        "hasPrefix" => arg(1).starts_with(arg(0)).to_string(),
        "hasSuffix" => arg(1).ends_with(arg(0)).to_string(),
        "trunc" => {
            let n: i64 = arg(0).parse().unwrap_or(0);
            let s: Vec<char> = arg(1).chars().collect();
            if n >= 0 {
                s.iter().take(n as usize).collect()
            } else {
                s[s.len().saturating_sub((-n) as usize)..].iter().collect()
            }
        }
        "substr" => {
            let s: Vec<char> = arg(2).chars().collect();
            let (st, en) = (num(arg(0)).max(0.0) as usize, num(arg(1)) as i64);
            let en = if en < 0 || en as usize > s.len() { s.len() } else { en as usize };
            if st >= en {
                String::new()
            } else {
                s[st..en].iter().collect()
            }
        }
        "unixEpoch" => (f.ts().div_euclid(1_000_000_000)).to_string(),
        "unixEpochMillis" => (f.ts().div_euclid(1_000_000)).to_string(),
        "unixEpochNanos" => f.ts().to_string(),
        "eq" => (arg(0) == arg(1)).to_string(),
        "ne" => (arg(0) != arg(1)).to_string(),
        "not" => (!truthy(last)).to_string(),
        "and" => a.iter().find(|x| !truthy(x)).or(a.last()).cloned().unwrap_or_default(),
        "or" => a.iter().find(|x| truthy(x)).or(a.last()).cloned().unwrap_or_default(),
        "repeat" => arg(1).repeat(num(arg(0)).max(0.0) as usize),
        "alignLeft" | "alignRight" => {
            let n = num(arg(0)).max(0.0) as usize;
            let s: Vec<char> = arg(1).chars().collect();
            if s.len() >= n {
                s[..n].iter().collect()
            } else if name == "alignLeft" {
                format!("{}{}", arg(1), " ".repeat(n - s.len()))
            } else {
                format!("{}{}", " ".repeat(n - s.len()), arg(1))
            }
        }
        "urlencode" => last
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect(),
        "int" => (num(last) as i64).to_string(),
        "float64" => crate::value::fmt_num(num(last)),
        "add" | "sub" | "mul" | "div" | "mod" => {
            let (x, y) = (num(arg(0)) as i64, num(arg(1)) as i64);
            match name {
                "add" => x.wrapping_add(y),
                "sub" => x.wrapping_sub(y),
                "mul" => x.wrapping_mul(y),
                "div" if y != 0 => x / y,
                "mod" if y != 0 => x % y,
                _ => 0,
            }
            .to_string()
        }
        "addf" | "subf" | "mulf" | "divf" | "maxf" | "minf" => {
            let (x, y) = (num(arg(0)), num(arg(1)));
            crate::value::fmt_num(match name {
                "addf" => x + y,
                "subf" => x - y,
                "mulf" => x * y,
                "divf" => x / y,
                "maxf" => x.max(y),
                _ => x.min(y),
            })
        }
        "max" => (num(arg(0)) as i64).max(num(arg(1)) as i64).to_string(),
        "min" => (num(arg(0)) as i64).min(num(arg(1)) as i64).to_string(),
        "ceil" => crate::value::fmt_num(num(last).ceil()),
        "floor" => crate::value::fmt_num(num(last).floor()),
        "round" => crate::value::fmt_num(num(last).round()),
        "indent" | "nindent" => {
            let pad = " ".repeat(num(arg(0)).max(0.0) as usize);
            let body: Vec<String> = arg(1).lines().map(|l| format!("{pad}{l}")).collect();
            let s = body.join("\n");
            if name == "nindent" {
                format!("\n{s}")
            } else {
                s
            }
        }
        _ => String::new(),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %q %d %f %.Nf %x %%`.
fn printf(format: &str, args: &[String]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_digit() || n == '.' || n == '-' || n == '+' || n == ' ' {
                spec.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else { break };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let a = args.next().map(String::as_str).unwrap_or("");
        let (width, prec) = match spec.trim_start_matches(['-', '+', ' ']).split_once('.') {
            Some((w, p)) => (w.parse::<usize>().ok(), p.parse::<usize>().ok()),
            None => (spec.trim_start_matches(['-', '+', ' ']).parse::<usize>().ok(), None),
        };
        let s = match verb {
            'd' => format!("{}", num(a) as i64),
            'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), num(a)),
            'q' => format!("{a:?}"),
            'x' => a
                .parse::<i64>()
                .map(|v| format!("{v:x}"))
                .unwrap_or_else(|_| a.bytes().map(|b| format!("{b:02x}")).collect()),
            _ => a.to_string(),
        };
        match width {
            Some(w) if s.chars().count() < w => {
                let pad = " ".repeat(w - s.chars().count());
                if spec.starts_with('-') {
                    out.push_str(&s);
                    out.push_str(&pad);
                } else {
                    out.push_str(&pad);
                    out.push_str(&s);
                }
            }
            _ => out.push_str(&s),
        }
    }
    out
}

struct TParser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> TParser<'a> {
    fn err(&self, m: impl Into<String>) -> Error {
        Error::parse(self.pos, format!("template {:?}: {}", self.src, m.into()))
    }

    /// Nodes until `{{end}}`/`{{else}}` (returned) or the end of the text.
    fn nodes(&mut self) -> Result<(Vec<Node>, Option<&'static str>)> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_string()));
                }
                self.pos = self.src.len();
                return Ok((nodes, None));
            };
            let mut text = rest[..open].to_string();
            self.pos += open + 2;
            if self.src[self.pos..].starts_with('-') && self.src[self.pos + 1..].starts_with(char::is_whitespace) {
                text = text.trim_end().to_string();
                self.pos += 1;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text));
            }
            let close = self.src[self.pos..].find("}}").ok_or_else(|| self.err("unclosed action"))?;
            let mut inner = &self.src[self.pos..self.pos + close];
            let mut trim_after = false;
            if inner.ends_with('-') && inner[..inner.len() - 1].ends_with(char::is_whitespace) {
                inner = &inner[..inner.len() - 1];
                trim_after = true;
            }
            let action_pos = self.pos;
            self.pos += close + 2;
            if trim_after {
                let skipped = self.src[self.pos..].len() - self.src[self.pos..].trim_start().len();
                self.pos += skipped;
            }
            let inner = inner.trim();
            let words: Vec<&str> = inner.splitn(2, char::is_whitespace).collect();
            match words[0] {
                "end" => return Ok((nodes, Some("end"))),
                "else" => return Ok((nodes, Some("else"))),
                "if" => {
                    let cond = parse_pipeline(words.get(1).copied().unwrap_or(""), action_pos, self.src)?;
                    let (then, end) = self.nodes()?;
                    let otherwise = match end {
                        Some("else") => {
                            let (o, end) = self.nodes()?;
                            if end != Some("end") {
                                return Err(self.err("if without end"));
                            }
                            o
                        }
                        Some("end") => Vec::new(),
                        _ => return Err(self.err("if without end")),
                    };
                    nodes.push(Node::If(cond, then, otherwise));
                }
                _ if inner.starts_with("/*") => {}
                _ => nodes.push(Node::Action(parse_pipeline(inner, action_pos, self.src)?)),
            }
        }
    }
}

fn parse_pipeline(text: &str, pos: usize, src: &str) -> Result<Pipeline> {
    let err = |m: String| Error::parse(pos, format!("template {src:?}: {m}"));
    let words = split_words(text).map_err(err)?;
    let mut cmds = Vec::new();
    for part in words.split(|w| w == "|") {
        if part.is_empty() {
            return Err(err("empty command".into()));
        }
        let mut args = Vec::new();
        let mut func = None;
        for (i, w) in part.iter().enumerate() {
            let a = if let Some(f) = w.strip_prefix('.') {
                if f.is_empty() {
                    Arg::Dot
                } else {
                    Arg::Field(f.to_string())
                }
            } else if w == "__line__" {
                Arg::Line
            } else if w == "__timestamp__" {
                Arg::Timestamp
            } else if let Some(s) = w.strip_prefix('\u{0}') {
                Arg::Str(s.to_string())
            } else if let Some(inner) = w.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
                Arg::Sub(parse_pipeline(inner, pos, src)?)
            } else if let Ok(n) = w.parse::<f64>() {
                Arg::Num(n)
            } else if i == 0 && FUNCS.contains(&w.as_str()) {
                func = Some(w.clone());
                continue;
            } else {
                return Err(err(format!("function {w:?} not defined")));
            };
            args.push(a);
        }
        cmds.push(Command { func, args });
    }
    Ok(Pipeline(cmds))
}

/// Splits an action into words: strings (marked with a leading NUL), parenthesized groups,
/// `|`, and bare words.
fn split_words(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'|' {
            out.push("|".to_string());
            i += 1;
        } else if c == b'"' || c == b'`' {
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                let Some(&ch) = b.get(j) else { return Err("unterminated string".into()) };
                if ch == c {
                    break;
                }
                if ch == b'\\' && c == b'"' {
                    j += 1;
                    match b.get(j) {
                        Some(b'n') => s.push('\n'),
                        Some(b't') => s.push('\t'),
                        Some(&e) => s.push(e as char),
                        None => return Err("unterminated string".into()),
                    }
                    j += 1;
                    continue;
                }
                let ch_str = &text[j..];
                let chr = ch_str.chars().next().unwrap_or(' ');
                s.push(chr);
                j += chr.len_utf8();
            }
            out.push(format!("\u{0}{s}"));
            i = j + 1;
        } else if c == b'(' {
            let mut depth = 0;
            let mut j = i;
            while j < b.len() {
                if b[j] == b'(' {
                    depth += 1;
                } else if b[j] == b')' {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                j += 1;
            }
            if j >= b.len() {
                return Err("unclosed (".into());
            }
            out.push(text[i..=j].to_string());
            i = j + 1;
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'|' && b[i] != b'(' {
                i += 1;
            }
            out.push(text[start..i].to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F(Vec<(&'static str, &'static str)>);
    impl Fields for F {
        fn field(&self, n: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
        }
        fn line(&self) -> &str {
            "the line"
        }
        fn ts(&self) -> i64 {
            1_700_000_000_123_000_000
        }
    }

    fn render(t: &str) -> String {
        Template::parse(t).unwrap().render(&F(vec![("status", "500"), ("method", "get"), ("empty", "")]))
    }

    #[test]
    fn renders() {
        assert_eq!(render("{{.method}} {{ .status }}"), "get 500");
        assert_eq!(render("{{ .method | upper }}!"), "GET!");
        assert_eq!(render("{{ ToUpper .method }}"), "GET");
        assert_eq!(render("[{{ __line__ }}]"), "[the line]");
        assert_eq!(render(r#"{{ default "none" .empty }}/{{ default "none" .status }}"#), "none/500");
        assert_eq!(render(r#"{{ printf "%s-%d-%.2f" .method .status 1.5 }}"#), "get-500-1.50");
        assert_eq!(render(r#"{{ .status | printf "code=%s" }}"#), "code=500");
        assert_eq!(render("{{ if .empty }}yes{{ else }}no{{ end }}"), "no");
        assert_eq!(render("{{ if .status }}{{.status}}{{ end }}"), "500");
        assert_eq!(render("a {{- .method -}} b"), "agetb");
        assert_eq!(render(r#"{{ regexReplaceAll "(\\d)0+" .status "${1}xx" }}"#), "5xx");
        assert_eq!(render("{{ unixEpoch }}"), "1700000000");
        assert_eq!(render(r#"{{ .missing }}|{{ trimPrefix "ge" .method }}|{{ replace "g" "G" .method }}"#), "|t|Get");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{ .a").is_err());
        assert!(Template::parse("{{ nope .a }}").unwrap_err().to_string().contains("\"nope\" not defined"));
        assert!(Template::parse("{{ if .a }}x").is_err());
        assert!(Template::parse("{{ end }}").is_err());
    }
}
