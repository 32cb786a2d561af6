//! Completions for the query editor: what may come at the cursor. Attribute names and values
//! live in the store, so for those this returns a marker ([`Completion::AttributeNames`],
//! [`Completion::AttributeValues`]) for the caller to fill in.

use crate::ast::{Intrinsic, Scope};
use crate::lexer::{lex_partial, Tok, Token};
use crate::parser::METRICS_FUNCTIONS;

/// What a [`Completion::Text`] inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    /// An attribute scope (`span.`, `resource.`).
    Scope,
    /// An intrinsic (`span:duration`, `name`).
    Intrinsic,
    /// An operator (`=`, `&&`, `>>`, `|`).
    Operator,
    /// A literal value (`error`, `server`, `true`).
    Value,
    /// A function (`count()`, `rate()`, `by(`).
    Function,
    /// Punctuation that opens or closes something (`{`, `}`).
    Keyword,
}

/// One suggestion for the text at the cursor.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// Insert `text` in place of the `prefix` already typed (see [`completions`]).
    Text {
        /// What to insert.
        text: String,
        /// What it is.
        kind: CompletionKind,
    },
    /// An attribute name of `scope` is expected; `prefix` is what is already typed of it.
    AttributeNames {
        /// The scope typed (`Scope::None` for `.`).
        scope: Scope,
        /// The part of the name already typed.
        prefix: String,
    },
    /// A value of `field` (canonical name: `resource.service.name`, `span:name`) is expected.
    AttributeValues {
        /// The field compared.
        field: String,
        /// The part of the value already typed (without the opening quote).
        prefix: String,
    },
}

fn text(t: &str, kind: CompletionKind) -> Completion {
    Completion::Text { text: t.to_string(), kind }
}

fn field_start() -> Vec<Completion> {
    let mut v: Vec<Completion> = ["span.", "resource.", ".", "event.", "link.", "instrumentation."]
        .iter()
        .map(|s| text(s, CompletionKind::Scope))
        .collect();
    v.extend(Intrinsic::ALL.iter().map(|i| text(i.as_str(), CompletionKind::Intrinsic)));
    v.extend(Intrinsic::ALL.iter().filter_map(|i| i.unscoped_name()).map(|n| text(n, CompletionKind::Intrinsic)));
    v
}

fn comparison_ops() -> Vec<Completion> {
    ["=", "!=", ">", ">=", "<", "<=", "=~", "!~"].iter().map(|s| text(s, CompletionKind::Operator)).collect()
}

fn after_spanset() -> Vec<Completion> {
    ["|", "&&", "||", ">", ">>", "<", "<<", "~", "!>", "!>>", "!<", "!<<", "!~"]
        .iter()
        .map(|s| text(s, CompletionKind::Operator))
        .collect()
}

fn pipeline_functions() -> Vec<Completion> {
    let mut v = vec![text("{", CompletionKind::Keyword)];
    for f in ["count()", "avg(", "min(", "max(", "sum(", "by(", "select(", "coalesce()"] {
        v.push(text(f, CompletionKind::Function));
    }
    for f in METRICS_FUNCTIONS {
        let t = if matches!(*f, "rate" | "count_over_time") { format!("{f}()") } else { format!("{f}(") };
        v.push(Completion::Text { text: t, kind: CompletionKind::Function });
    }
    v
}

/// The canonical name of the field a token names, and whether it is an intrinsic.
fn field_of(t: &Tok) -> Option<(String, Option<Intrinsic>)> {
    match t {
        Tok::Attr(scope, name) => Some((format!("{}{name}", scope.prefix()), None)),
        Tok::Scoped(s, n) => Intrinsic::scoped(s, n).map(|i| (i.to_string(), Some(i))),
        Tok::Ident(w) => Intrinsic::unscoped(w).map(|i| (i.to_string(), Some(i))),
        _ => None,
    }
}

fn is_value(t: &Tok) -> bool {
    matches!(t, Tok::Str(_) | Tok::Int(_) | Tok::Float(_) | Tok::Duration(_))
        || matches!(t, Tok::Ident(w) if matches!(w.as_str(), "true" | "false" | "nil" | "ok" | "error" | "unset"
            | "unspecified" | "internal" | "server" | "client" | "producer" | "consumer"))
}

fn is_comparison(t: &Tok) -> bool {
    matches!(t, Tok::Eq | Tok::Neq | Tok::Gt | Tok::Gte | Tok::Lt | Tok::Lte | Tok::Re | Tok::Nre)
}

/// Suggestions for `input` with the cursor at byte `cursor`. [`Completion::Text`] entries
/// already typed in part are filtered by that part: the editor replaces the word before the
/// cursor (letters, digits, `_`, `:` and `.`) with the text.
pub fn completions(input: &str, cursor: usize) -> Vec<Completion> {
    let mut cursor = cursor.min(input.len());
    while !input.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let src = &input[..cursor];
    let (mut toks, err) = lex_partial(src);

    if let Some((pos, _)) = err {
        let tail = &src[pos.min(src.len())..];
        // An unfinished string: a value of the field before the operator.
        if tail.starts_with('"') || tail.starts_with('`') {
            return value_of(&toks, &tail[1..]);
        }
        // `span.` with nothing after it yet.
        if tail.is_empty() {
            if let Some(scope) = trailing_scope(src) {
                return vec![Completion::AttributeNames { scope, prefix: String::new() }];
            }
        }
        // `span:` with nothing after it.
        if let Some(scope) = src.strip_suffix(':').and_then(|s| s.rsplit(|c: char| !c.is_alphanumeric()).next()) {
            let p = format!("{scope}:");
            return Intrinsic::ALL
                .iter()
                .filter(|i| i.as_str().starts_with(&p))
                .map(|i| text(i.as_str(), CompletionKind::Intrinsic))
                .collect();
        }
        return Vec::new();
    }

    // The word being typed, if the cursor touches the last token.
    let mut prefix = String::new();
    if let Some(last) = toks.last() {
        if last.end == cursor {
            match &last.tok {
                Tok::Attr(scope, name) => {
                    let (scope, name) = (*scope, name.clone());
                    // Right after a comparison it is a value being typed, not a name.
                    return vec![Completion::AttributeNames { scope, prefix: name }];
                }
                Tok::Ident(w) => {
                    prefix = w.clone();
                    toks.pop();
                }
                Tok::Scoped(s, n) => {
                    prefix = format!("{s}:{n}");
                    toks.pop();
                }
                _ => {}
            }
        }
    }
    let mut out = context(&toks);
    out.retain(|c| match c {
        Completion::Text { text, .. } => text.starts_with(&prefix) && *text != prefix,
        _ => true,
    });
    out
}

fn trailing_scope(src: &str) -> Option<Scope> {
    for (p, s) in [
        ("span.", Scope::Span),
        ("resource.", Scope::Resource),
        ("event.", Scope::Event),
        ("link.", Scope::Link),
        ("instrumentation.", Scope::Instrumentation),
    ] {
        if src.ends_with(p) && !src[..src.len() - p.len()].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            return Some(s);
        }
    }
    src.ends_with('.').then_some(Scope::None)
}

fn value_of(toks: &[Token], prefix: &str) -> Vec<Completion> {
    let n = toks.len();
    if n >= 2 && is_comparison(&toks[n - 1].tok) {
        if let Some((field, _)) = field_of(&toks[n - 2].tok) {
            return vec![Completion::AttributeValues { field, prefix: prefix.to_string() }];
        }
    }
    Vec::new()
}

fn context(toks: &[Token]) -> Vec<Completion> {
    let depth: i64 = toks
        .iter()
        .map(|t| match t.tok {
            Tok::LBrace => 1,
            Tok::RBrace => -1,
            _ => 0,
        })
        .sum();
    let prev = toks.last().map(|t| &t.tok);
    let prev2 = toks.len().checked_sub(2).map(|i| &toks[i].tok);
    if depth > 0 {
        return match prev {
            Some(Tok::LBrace | Tok::And | Tok::Or | Tok::Not | Tok::LParen) => {
                let mut v = field_start();
                if prev == Some(&Tok::LBrace) {
                    v.push(text("}", CompletionKind::Keyword));
                }
                v
            }
            Some(t) if is_comparison(t) => match prev2.and_then(field_of) {
                Some((_, Some(Intrinsic::Status))) => {
                    ["error", "ok", "unset"].iter().map(|s| text(s, CompletionKind::Value)).collect()
                }
                Some((_, Some(Intrinsic::Kind))) => {
                    ["server", "client", "internal", "producer", "consumer", "unspecified"]
                        .iter()
                        .map(|s| text(s, CompletionKind::Value))
                        .collect()
                }
                Some((_, Some(Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart))) => {
                    ["100ms", "1s", "10s"].iter().map(|s| text(s, CompletionKind::Value)).collect()
                }
                Some((field, _)) => vec![Completion::AttributeValues { field, prefix: String::new() }],
                None => Vec::new(),
            },
            Some(t) if field_of(t).is_some() => comparison_ops(),
            Some(t) if is_value(t) || *t == Tok::RParen => {
                ["&&", "||", "}"].iter().map(|s| text(s, CompletionKind::Operator)).collect()
            }
            _ => Vec::new(),
        };
    }
    match prev {
        None => vec![text("{", CompletionKind::Keyword)],
        Some(Tok::Pipe) => pipeline_functions(),
        Some(Tok::LParen)
            if matches!(prev2, Some(Tok::Ident(w)) if w == "by" || w == "select" || w.ends_with("_over_time")
                || matches!(w.as_str(), "avg" | "min" | "max" | "sum")) =>
        {
            field_start()
        }
        Some(Tok::Comma) => field_start(),
        Some(Tok::RBrace) => after_spanset(),
        Some(Tok::RParen) => {
            let mut v = after_spanset();
            v.push(text("by(", CompletionKind::Function));
            v
        }
        Some(t) if is_comparison(t) => Vec::new(),
        Some(
            Tok::And
            | Tok::Or
            | Tok::Gt
            | Tok::Lt
            | Tok::Desc
            | Tok::Ance
            | Tok::Sibl
            | Tok::NotChild
            | Tok::NotParent
            | Tok::NotDesc
            | Tok::NotAnce
            | Tok::Nre
            | Tok::LParen,
        ) => {
            vec![text("{", CompletionKind::Keyword), text("(", CompletionKind::Keyword)]
        }
        _ => Vec::new(),
    }
}
