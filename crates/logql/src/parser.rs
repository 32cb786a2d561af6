//! A recursive-descent LogQL parser following Loki's grammar (`pkg/logql/syntax/expr.y`):
//! selectors, pipelines, range and vector aggregations, binary operations with Prometheus's
//! precedence, `bool`, `on`/`ignoring`, `group_left`/`group_right`.

use regex::Regex;
use telltale_model::{FilterOp, MatchOp, Matcher};

use crate::ast::*;
use crate::error::{Error, Result};
use crate::lexer::{lex, Tok, Token};
use crate::pipeline::{parse_pattern, CmpOp, LabelFilter, LabelFmt, LineStage, NameMatch, NumKind, PathPart, Stage};
use crate::template::Template;

/// Parses a LogQL query.
pub fn parse(q: &str) -> Result<Expr> {
    parse_inner(q).map_err(|e| e.locate(q))
}

fn parse_inner(q: &str) -> Result<Expr> {
    let toks = lex(q)?;
    let mut p = Parser { toks, i: 0 };
    let e = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return Err(p.unexpected("end of query"));
    }
    if let Expr::Binary(_) | Expr::Vector(_) = &e {
        check_no_log(&e, p.toks.last().map_or(0, |t| t.pos))?;
    }
    Ok(e)
}

/// A log query is only allowed as the whole query.
fn check_no_log(e: &Expr, pos: usize) -> Result<()> {
    match e {
        Expr::Log(_) => {
            Err(Error::parse(pos, "a log query cannot be used inside a metric query; wrap it in a range aggregation"))
        }
        Expr::Binary(b) => {
            check_no_log(&b.lhs, pos)?;
            check_no_log(&b.rhs, pos)
        }
        Expr::Vector(v) => check_no_log(&v.expr, pos),
        Expr::LabelReplace(l) => check_no_log(&l.expr, pos),
        _ => Ok(()),
    }
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier {s:?}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Unit(s) => format!("{s:?}"),
        Tok::Flag(s) => format!("--{s}"),
        Tok::Punct(p) => format!("{p:?}"),
        Tok::Eof => "end of query".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i].pos
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.i].tok.clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn unexpected(&self, wanted: &str) -> Error {
        Error::parse(self.pos(), format!("syntax error: unexpected {}, expecting {wanted}", describe(self.peek())))
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(x) if *x == p)
    }

    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x == s)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<()> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("{p:?}")))
        }
    }

    fn ident(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn duration_ns(&mut self) -> Result<i64> {
        let pos = self.pos();
        let text = match self.next() {
            Tok::Unit(s) => s,
            Tok::Num(n) if n.to_bits() == 0 => "0".into(),
            t => {
                return Err(Error::parse(
                    pos,
                    format!("syntax error: unexpected {}, expecting a duration", describe(&t)),
                ))
            }
        };
        let d = telltale_model::units::parse_duration(&text)
            .map_err(|_| Error::parse(pos, format!("invalid duration {text:?}")))?;
        i64::try_from(d.as_nanos()).map_err(|_| Error::parse(pos, "duration too long"))
    }

    /// Binary expressions by precedence climbing.
    fn expr(&mut self, min: u8) -> Result<Expr> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.binop() {
            let prec = op.precedence();
            if prec < min {
                break;
            }
            self.next();
            let mut return_bool = false;
            if self.is_ident("bool") {
                if !op.is_comparison() {
                    return Err(Error::parse(self.pos(), "bool modifier can only be used on comparison operators"));
                }
                self.next();
                return_bool = true;
            }
            let mut matching = VectorMatching::default();
            if self.is_ident("on") || self.is_ident("ignoring") {
                matching.on = self.is_ident("on");
                self.next();
                matching.labels = self.label_list()?;
                if self.is_ident("group_left") || self.is_ident("group_right") {
                    let right = self.is_ident("group_right");
                    self.next();
                    let extra = if self.is_punct("(") { self.label_list()? } else { Vec::new() };
                    matching.group = Some((right, extra));
                }
            }
            // ^ is right-associative; the others left.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            lhs = Expr::Binary(Box::new(BinaryExpr { op, lhs, rhs, return_bool, matching }));
        }
        Ok(lhs)
    }

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Punct("+") => BinOp::Add,
            Tok::Punct("-") => BinOp::Sub,
            Tok::Punct("*") => BinOp::Mul,
            Tok::Punct("/") => BinOp::Div,
            Tok::Punct("%") => BinOp::Mod,
            Tok::Punct("^") => BinOp::Pow,
            Tok::Punct("==") => BinOp::Eq,
            Tok::Punct("!=") => BinOp::Ne,
            Tok::Punct(">") => BinOp::Gt,
            Tok::Punct(">=") => BinOp::Ge,
            Tok::Punct("<") => BinOp::Lt,
            Tok::Punct("<=") => BinOp::Le,
            Tok::Ident(s) if s == "and" => BinOp::And,
            Tok::Ident(s) if s == "or" => BinOp::Or,
            Tok::Ident(s) if s == "unless" => BinOp::Unless,
            _ => return None,
        })
    }

    fn unary(&mut self) -> Result<Expr> {
        match self.peek().clone() {
            Tok::Punct("-") | Tok::Punct("+") => {
                let neg = self.is_punct("-");
                self.next();
                let e = self.unary()?;
                Ok(match e {
                    Expr::Number(n) => Expr::Number(if neg { -n } else { n }),
                    e if neg => Expr::Binary(Box::new(BinaryExpr {
                        op: BinOp::Mul,
                        lhs: Expr::Number(-1.0),
                        rhs: e,
                        return_bool: false,
                        matching: VectorMatching::default(),
                    })),
                    e => e,
                })
            }
            Tok::Num(n) => {
                self.next();
                Ok(Expr::Number(n))
            }
            Tok::Punct("(") => {
                self.next();
                let e = self.expr(0)?;
                self.expect_punct(")")?;
                Ok(e)
            }
            Tok::Punct("{") => Ok(Expr::Log(self.log_expr()?)),
            Tok::Ident(name) => {
                if let Some(op) = RangeOp::from_name(&name) {
                    let start = self.pos();
                    self.next();
                    return self.range_agg(op, start);
                }
                if let Some(op) = VectorOp::from_name(&name) {
                    self.next();
                    return self.vector_agg(op);
                }
                match name.as_str() {
                    "vector" => {
                        self.next();
                        self.expect_punct("(")?;
                        let n = self.number()?;
                        self.expect_punct(")")?;
                        Ok(Expr::VectorOf(n))
                    }
                    "label_replace" => {
                        self.next();
                        self.expect_punct("(")?;
                        let expr = self.expr(0)?;
                        let mut args = Vec::new();
                        for _ in 0..4 {
                            self.expect_punct(",")?;
                            args.push(self.string("a string")?);
                        }
                        self.expect_punct(")")?;
                        let regex = Regex::new(&format!("^(?s:{})$", args[3]))
                            .map_err(|e| Error::parse(self.pos(), format!("invalid regular expression: {e}")))?;
                        Ok(Expr::LabelReplace(Box::new(LabelReplace {
                            expr,
                            dst: args[0].clone(),
                            replacement: args[1].clone(),
                            src: args[2].clone(),
                            regex,
                        })))
                    }
                    _ => Err(self.unexpected("a selector, number or function")),
                }
            }
            _ => Err(self.unexpected("a selector, number or function")),
        }
    }

    fn number(&mut self) -> Result<f64> {
        let neg = self.eat_punct("-");
        match self.next() {
            Tok::Num(n) => Ok(if neg { -n } else { n }),
            _ => {
                self.i -= 1;
                Err(self.unexpected("a number"))
            }
        }
    }

    fn label_list(&mut self) -> Result<Vec<String>> {
        self.expect_punct("(")?;
        let mut out = Vec::new();
        while !self.is_punct(")") {
            out.push(self.ident("a label name")?);
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct(")")?;
        Ok(out)
    }

    fn grouping(&mut self) -> Result<Option<Grouping>> {
        if self.is_ident("by") || self.is_ident("without") {
            let without = self.is_ident("without");
            self.next();
            Ok(Some(Grouping { without, labels: self.label_list()? }))
        } else {
            Ok(None)
        }
    }

    fn vector_agg(&mut self, op: VectorOp) -> Result<Expr> {
        let mut grouping = self.grouping()?;
        self.expect_punct("(")?;
        let param = if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
            let n = self.number()?;
            self.expect_punct(",")?;
            Some(n)
        } else {
            None
        };
        let expr = self.expr(0)?;
        self.expect_punct(")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if matches!(expr, Expr::Log(_)) {
            return Err(Error::parse(
                self.pos(),
                "a log query cannot be aggregated; use a range aggregation like count_over_time",
            ));
        }
        if matches!(op, VectorOp::Sort | VectorOp::SortDesc) && grouping.is_some() {
            return Err(Error::parse(self.pos(), "sort and sort_desc take no grouping"));
        }
        Ok(Expr::Vector(Box::new(VectorAgg { op, grouping, param, expr })))
    }

    fn range_agg(&mut self, op: RangeOp, start: usize) -> Result<Expr> {
        self.expect_punct("(")?;
        let param = if op == RangeOp::Quantile {
            let n = self.number()?;
            self.expect_punct(",")?;
            Some(n)
        } else {
            None
        };
        // `({...} | x)[5m]`, `{...}[5m] | x` or `{...} | x [5m]`.
        let (mut log, range) = if self.is_punct("(") {
            self.next();
            let log = self.log_expr()?;
            self.expect_punct(")")?;
            self.expect_punct("[")?;
            let r = self.duration_ns()?;
            self.expect_punct("]")?;
            (log, r)
        } else {
            let mut log = self.log_expr()?;
            if self.is_punct("[") {
                self.next();
                let r = self.duration_ns()?;
                self.expect_punct("]")?;
                let more = self.log_expr_stages()?;
                log.stages.extend(more);
                (log, r)
            } else {
                return Err(self.unexpected("a range like [5m]"));
            }
        };
        let offset = if self.is_ident("offset") {
            self.next();
            self.duration_ns()?
        } else {
            0
        };
        self.expect_punct(")")?;
        let grouping = self.grouping()?;
        // Split off `| unwrap` and the filters after it.
        let unwrap = take_unwrap(&mut log);
        match (op.needs_unwrap(), &unwrap) {
            (true, None) => {
                return Err(Error::parse(start, format!("invalid aggregation {} without unwrap", range_name(op))));
            }
            (false, Some(_)) if op != RangeOp::Rate => {
                return Err(Error::parse(start, format!("invalid aggregation {} with unwrap", range_name(op))));
            }
            _ => {}
        }
        if grouping.is_some() && unwrap.is_none() {
            return Err(Error::parse(start, format!("grouping not allowed for {} aggregation", range_name(op))));
        }
        if range <= 0 {
            return Err(Error::parse(start, "range must be greater than zero"));
        }
        Ok(Expr::Range(Box::new(RangeAgg { op, log, unwrap, range, offset, param, grouping })))
    }

    fn log_expr(&mut self) -> Result<LogExpr> {
        let pos = self.pos();
        self.expect_punct("{")?;
        let mut matchers = Vec::new();
        while !self.is_punct("}") {
            let name = self.ident("a label name")?;
            let op = match self.next() {
                Tok::Punct("=") => MatchOp::Equal,
                Tok::Punct("!=") => MatchOp::NotEqual,
                Tok::Punct("=~") => MatchOp::Regex,
                Tok::Punct("!~") => MatchOp::NotRegex,
                _ => {
                    self.i -= 1;
                    return Err(self.unexpected("=, !=, =~ or !~"));
                }
            };
            let value = self.string("a quoted value")?;
            let m = Matcher::new(op, name, value)
                .map_err(|e| Error::parse(self.pos(), format!("invalid regular expression: {e}")))?;
            matchers.push(m);
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct("}")?;
        if !matchers.iter().any(|m| !m.matches_empty()) {
            return Err(Error::parse(
                pos,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        let stages = self.log_expr_stages()?;
        Ok(LogExpr { matchers, stages })
    }

    fn log_expr_stages(&mut self) -> Result<Vec<Stage>> {
        let mut stages = Vec::new();
        loop {
            let filter = match self.peek() {
                Tok::Punct("|=") => Some((FilterOp::Contains, false)),
                Tok::Punct("!=") => Some((FilterOp::NotContains, false)),
                Tok::Punct("|~") => Some((FilterOp::Regex, false)),
                Tok::Punct("!~") => Some((FilterOp::NotRegex, false)),
                Tok::Punct("|>") => Some((FilterOp::Contains, true)),
                Tok::Punct("!>") => Some((FilterOp::NotContains, true)),
                _ => None,
            };
            if let Some((op, pattern)) = filter {
                // `!=` followed by something other than a string is a binary operator.
                if !matches!(self.peek_at(1), Tok::Str(_)) {
                    if matches!(self.peek_at(1), Tok::Ident(s) if s == "ip") {
                        return Err(Error::parse(self.pos(), "ip() line filters are not supported"));
                    }
                    break;
                }
                self.next();
                let pos = self.pos();
                let mut values = vec![self.string("a string")?];
                while self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
                    self.next();
                    values.push(self.string("a string")?);
                }
                let stage = LineStage::new(op, pattern, values)
                    .map_err(|e| Error::parse(pos, format!("invalid line filter: {e}")))?;
                stages.push(Stage::Line(stage));
                continue;
            }
            if !self.is_punct("|") {
                break;
            }
            self.next();
            stages.push(self.stage()?);
        }
        Ok(stages)
    }

    fn stage(&mut self) -> Result<Stage> {
        let pos = self.pos();
        let name = match self.peek() {
            Tok::Ident(s) => s.clone(),
            Tok::Punct("(") => return Ok(Stage::LabelFilter(self.label_filter()?)),
            _ => return Err(self.unexpected("a parser, formatter or label filter")),
        };
        // A label filter starts with a name followed by a comparison.
        let is_filter =
            matches!(self.peek_at(1), Tok::Punct("=" | "!=" | "=~" | "!~" | ">" | ">=" | "<" | "<=" | "=="));
        if is_filter {
            return Ok(Stage::LabelFilter(self.label_filter()?));
        }
        self.next();
        Ok(match name.as_str() {
            "json" => {
                let mut params = Vec::new();
                while let Tok::Ident(label) = self.peek().clone() {
                    self.next();
                    let path = if self.eat_punct("=") {
                        let p = self.string("a JSON path")?;
                        parse_json_path(&p).ok_or_else(|| Error::parse(pos, format!("invalid JSON path {p:?}")))?
                    } else {
                        vec![PathPart::Key(label.clone())]
                    };
                    params.push((label, path));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                Stage::Json(params)
            }
            "logfmt" => {
                let (mut strict, mut keep_empty) = (false, false);
                while let Tok::Flag(f) = self.peek().clone() {
                    match f.as_str() {
                        "strict" => strict = true,
                        "keep-empty" => keep_empty = true,
                        _ => return Err(Error::parse(self.pos(), format!("unknown logfmt flag --{f}"))),
                    }
                    self.next();
                }
                let mut params = Vec::new();
                while let Tok::Ident(label) = self.peek().clone() {
                    self.next();
                    let key = if self.eat_punct("=") { self.string("a key")? } else { label.clone() };
                    params.push((label, key));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                Stage::Logfmt { strict, keep_empty, params }
            }
            "regexp" => {
                let re = self.string("a regular expression")?;
                let re = Regex::new(&re).map_err(|e| Error::parse(pos, format!("invalid regular expression: {e}")))?;
                if re.capture_names().flatten().next().is_none() {
                    return Err(Error::parse(pos, "at least one named capture must be supplied"));
                }
                if let Some(bad) = re.capture_names().flatten().find(|n| !is_ident(n)) {
                    return Err(Error::parse(pos, format!("invalid extracted label name {bad:?}")));
                }
                Stage::Regexp(re)
            }
            "pattern" => {
                let p = self.string("a pattern")?;
                Stage::Pattern(parse_pattern(&p).map_err(|e| Error::parse(pos, format!("invalid pattern: {e}")))?)
            }
            "unpack" => Stage::Unpack,
            "decolorize" => Stage::Decolorize,
            "line_format" => Stage::LineFormat(Template::parse(&self.string("a template")?)?),
            "label_format" => {
                let mut fmts = Vec::new();
                loop {
                    let dst = self.ident("a label name")?;
                    self.expect_punct("=")?;
                    let f = match self.next() {
                        Tok::Ident(src) => LabelFmt::Rename(src),
                        Tok::Str(t) => LabelFmt::Template(Template::parse(&t)?),
                        _ => {
                            self.i -= 1;
                            return Err(self.unexpected("a label name or a template string"));
                        }
                    };
                    if fmts.iter().any(|(d, _)| *d == dst) {
                        return Err(Error::parse(
                            pos,
                            format!("multiple label name '{dst}' not allowed in a single format operation"),
                        ));
                    }
                    fmts.push((dst, f));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                Stage::LabelFormat(fmts)
            }
            "drop" | "keep" => {
                let mut names = Vec::new();
                loop {
                    let n = self.ident("a label name")?;
                    let matcher = match self.peek() {
                        Tok::Punct("=" | "!=" | "=~" | "!~") => {
                            let op = match self.next() {
                                Tok::Punct("=") => MatchOp::Equal,
                                Tok::Punct("!=") => MatchOp::NotEqual,
                                Tok::Punct("=~") => MatchOp::Regex,
                                _ => MatchOp::NotRegex,
                            };
                            let v = self.string("a quoted value")?;
                            Some(Matcher::new(op, n.clone(), v).map_err(|e| Error::parse(pos, e.to_string()))?)
                        }
                        _ => None,
                    };
                    names.push(NameMatch { name: n, matcher });
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                if name == "drop" {
                    Stage::Drop(names)
                } else {
                    Stage::Keep(names)
                }
            }
            "unwrap" => {
                let (conv, label) = match (self.peek().clone(), self.peek_at(1).clone()) {
                    (Tok::Ident(f), Tok::Punct("(")) => {
                        let conv = match f.as_str() {
                            "duration" | "duration_seconds" => Conversion::Duration,
                            "bytes" => Conversion::Bytes,
                            _ => return Err(Error::parse(self.pos(), format!("unknown unwrap conversion {f:?}"))),
                        };
                        self.next();
                        self.next();
                        let l = self.ident("a label name")?;
                        self.expect_punct(")")?;
                        (conv, l)
                    }
                    _ => (Conversion::Float, self.ident("a label name")?),
                };
                Stage::LabelFilter(LabelFilter::Str(unwrap_marker(conv, &label)))
            }
            _ => {
                return Err(Error::parse(
                    pos,
                    format!(
                        "syntax error: unexpected identifier {name:?}, expecting a parser, formatter or label filter"
                    ),
                ))
            }
        })
    }

    /// `a = "x" and b > 1 or (c =~ "y", d != "z")`; `,` and plain juxtaposition mean `and`.
    fn label_filter(&mut self) -> Result<LabelFilter> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter> {
        let mut lhs = self.label_filter_primary()?;
        loop {
            if self.is_ident("and") || self.is_punct(",") {
                self.next();
            } else if !self.starts_label_filter() {
                break;
            }
            let rhs = self.label_filter_primary()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    /// Whether a label filter begins here (juxtaposition means `and`).
    fn starts_label_filter(&self) -> bool {
        if self.is_punct("(") {
            return true;
        }
        let name = matches!(self.peek(), Tok::Ident(s) if s != "or" && s != "offset");
        name && matches!(self.peek_at(1), Tok::Punct("=" | "!=" | "=~" | "!~" | ">" | ">=" | "<" | "<=" | "=="))
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter> {
        if self.eat_punct("(") {
            let f = self.label_filter()?;
            self.expect_punct(")")?;
            return Ok(f);
        }
        let pos = self.pos();
        let name = self.ident("a label name")?;
        let op = match self.next() {
            Tok::Punct(p) => p,
            _ => {
                self.i -= 1;
                return Err(self.unexpected("a comparison"));
            }
        };
        let cmp = |op: &str| match op {
            "=" | "==" => Some(CmpOp::Eq),
            "!=" => Some(CmpOp::Ne),
            ">" => Some(CmpOp::Gt),
            ">=" => Some(CmpOp::Ge),
            "<" => Some(CmpOp::Lt),
            "<=" => Some(CmpOp::Le),
            _ => None,
        };
        match self.next() {
            Tok::Str(v) => {
                let mop = match op {
                    "=" | "==" => MatchOp::Equal,
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    _ => return Err(Error::parse(pos, format!("cannot compare label {name} {op} a string"))),
                };
                let m = Matcher::new(mop, name, v)
                    .map_err(|e| Error::parse(pos, format!("invalid regular expression: {e}")))?;
                Ok(LabelFilter::Str(m))
            }
            Tok::Ident(s) if s == "ip" => Err(Error::parse(pos, "ip() label filters are not supported")),
            Tok::Num(n) => {
                let op = cmp(op).ok_or_else(|| Error::parse(pos, format!("cannot use {op} with a number")))?;
                Ok(LabelFilter::Num { name, op, value: n, kind: NumKind::Number })
            }
            Tok::Unit(u) => {
                let op = cmp(op).ok_or_else(|| Error::parse(pos, format!("cannot use {op} with {u:?}")))?;
                if let Some(s) = crate::value::parse_go_duration(&u) {
                    Ok(LabelFilter::Num { name, op, value: s, kind: NumKind::Duration })
                } else if let Some(b) = crate::value::parse_bytes(&u) {
                    Ok(LabelFilter::Num { name, op, value: b, kind: NumKind::Bytes })
                } else {
                    Err(Error::parse(pos, format!("{u:?} is neither a duration nor a byte size")))
                }
            }
            Tok::Punct("-") => match self.next() {
                Tok::Num(n) => {
                    let op = cmp(op).ok_or_else(|| Error::parse(pos, format!("cannot use {op} with a number")))?;
                    Ok(LabelFilter::Num { name, op, value: -n, kind: NumKind::Number })
                }
                _ => Err(Error::parse(pos, "expected a number after -")),
            },
            _ => {
                self.i -= 1;
                Err(self.unexpected("a string, number, duration or byte size"))
            }
        }
    }
}

fn range_name(op: RangeOp) -> &'static str {
    match op {
        RangeOp::Count => "count_over_time",
        RangeOp::Rate => "rate",
        RangeOp::Bytes => "bytes_over_time",
        RangeOp::BytesRate => "bytes_rate",
        RangeOp::Absent => "absent_over_time",
        RangeOp::Sum => "sum_over_time",
        RangeOp::Avg => "avg_over_time",
        RangeOp::Min => "min_over_time",
        RangeOp::Max => "max_over_time",
        RangeOp::Stddev => "stddev_over_time",
        RangeOp::Stdvar => "stdvar_over_time",
        RangeOp::Quantile => "quantile_over_time",
        RangeOp::First => "first_over_time",
        RangeOp::Last => "last_over_time",
        RangeOp::RateCounter => "rate_counter",
    }
}

/// The unwrap stage travels through the stage list as a marker filter on a reserved name
/// until [`take_unwrap`] splits it off.
const UNWRAP_MARK: &str = "\u{0}unwrap";

fn unwrap_marker(conv: Conversion, label: &str) -> Matcher {
    let c = match conv {
        Conversion::Float => "f",
        Conversion::Duration => "d",
        Conversion::Bytes => "b",
    };
    Matcher::equal(UNWRAP_MARK, format!("{c}{label}"))
}

fn take_unwrap(log: &mut LogExpr) -> Option<Unwrap> {
    let i = log
        .stages
        .iter()
        .position(|s| matches!(s, Stage::LabelFilter(LabelFilter::Str(m)) if m.name == UNWRAP_MARK))?;
    let after: Vec<Stage> = log.stages.drain(i..).collect();
    let Stage::LabelFilter(LabelFilter::Str(m)) = &after[0] else { return None };
    let (c, label) = m.value.split_at(1);
    let conversion = match c {
        "d" => Conversion::Duration,
        "b" => Conversion::Bytes,
        _ => Conversion::Float,
    };
    let post_filters = after[1..]
        .iter()
        .filter_map(|s| match s {
            Stage::LabelFilter(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    Some(Unwrap { label: label.to_string(), conversion, post_filters })
}

/// `a.b[0]["c d"]` into parts.
fn parse_json_path(p: &str) -> Option<Vec<PathPart>> {
    let mut out = Vec::new();
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'[' => {
                let end = p[i..].find(']')? + i;
                let inner = p[i + 1..end].trim();
                if let Some(s) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    out.push(PathPart::Key(s.to_string()));
                } else {
                    out.push(PathPart::Index(inner.parse().ok()?));
                }
                i = end + 1;
            }
            _ => {
                let end = p[i..].find(['.', '[']).map_or(p.len(), |j| i + j);
                out.push(PathPart::Key(p[i..end].to_string()));
                i = end;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Expr {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn err(q: &str) -> String {
        parse(q).map(|e| format!("parsed: {e:?}")).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn log_queries() {
        let Expr::Log(l) = ok(
            r#"{job="api", level=~"warn|error"} |= "timeout" or "refused" != "health" | json | status >= 500 and method="GET" | line_format "{{.status}}""#,
        ) else {
            panic!()
        };
        assert_eq!(l.matchers.len(), 2);
        assert_eq!(l.stages.len(), 5);
        ok(r#"{a="b"} | logfmt --strict --keep-empty | keep a, b="x" | drop c"#);
        ok(r#"{a="b"} | json x="a.b[0]", y | label_format z=x, w="{{.y}}" | decolorize | unpack"#);
        ok(r#"{a="b"} | pattern "<ip> - <_>" | regexp "(?P<x>\\d+)" | took > 250ms | size <= 20MB"#);
        ok(r#"{a="b"} |> "<_> error <_>" !> "debug" | (a="1" or b="2"), c!="3""#);
    }

    #[test]
    fn metric_queries() {
        ok(r#"sum by (level) (count_over_time({job=~".+"}[1m]))"#);
        ok(r#"sum(rate({a="b"} |= "x" [5m])) by (c) / ignoring(d) group_left sum(rate({a="b"}[5m])) > bool 0.1"#);
        ok(
            r#"quantile_over_time(0.99, {a="b"} | json | unwrap duration(took) | __error__="" [5m] offset 1h) by (svc)"#,
        );
        ok(r#"topk(3, sum by (x) (bytes_rate({a="b"}[1m])))"#);
        ok(r#"count_over_time({a="b"}[5m] | json)"#);
        ok(r#"count_over_time(({a="b"} | json)[5m])"#);
        ok("vector(1) + 2 * 3 ^ 2");
        ok(r#"label_replace(rate({a="b"}[1m]), "dst", "$1", "a", "(.*)")"#);
        ok(r#"sum(count_over_time({a="b"}[1m])) or vector(0)"#);
        ok(r#"absent_over_time({a="b"}[1m])"#);
        let Expr::Binary(b) = ok("1 - 2 - 3") else { panic!() };
        assert!(matches!(b.rhs, Expr::Number(n) if n == 3.0), "left associative");
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(err(r#"{a=""}"#), "parse error at line 1, col 1: queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will");
        assert_eq!(
            err(r#"sum_over_time({a="b"}[5m])"#),
            "parse error at line 1, col 1: invalid aggregation sum_over_time without unwrap"
        );
        assert!(
            err(r#"count_over_time({a="b"})"#).contains("expecting a range like [5m]"),
            "{}",
            err(r#"count_over_time({a="b"})"#)
        );
        assert!(err(r#"{a="b"} | nope"#).contains("unexpected identifier \"nope\""));
        assert!(err(r#"sum({a="b"})"#).contains("cannot be aggregated"));
        assert!(err(r#"{a="b"} + 1"#).contains("cannot be used inside a metric query"));
        assert!(err("sum(").contains("line 1, col 5"));
        assert!(err(r#"{a="b"} | regexp "(\\d+)""#).contains("named capture"));
        assert!(err("1 + bool 2").contains("bool modifier"));
    }

    #[test]
    fn json_paths() {
        assert_eq!(
            parse_json_path(r#"a.b[0]["c d"]"#).unwrap(),
            [PathPart::Key("a".into()), PathPart::Key("b".into()), PathPart::Index(0), PathPart::Key("c d".into())]
        );
    }
}
