//! Executes a parsed template against a [`Value`].

use std::collections::BTreeMap;

use crate::parse::{Cmd, Node, Operand, Pipe, Term};
use crate::{Env, Error, Templates, Value};

/// How deep `{{ template }}` calls may nest (Go allows 100000; alert templates need few).
const MAX_DEPTH: usize = 100;
/// Largest output one render may produce, so a runaway template cannot eat memory.
const MAX_OUTPUT: usize = 4 << 20;
/// Most nodes one render may execute, so `{{ range 1000000000 }}` cannot hang a rule group.
const MAX_STEPS: u64 = 1_000_000;

pub(crate) struct Exec<'a> {
    pub(crate) set: &'a Templates,
    pub(crate) env: &'a Env,
    name: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    steps: u64,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) fn run(set: &Templates, name: &str, body: &[Node], data: &Value, env: &Env) -> Result<String, Error> {
    let mut ex =
        Exec { set, env, name: name.to_string(), vars: vec![(String::new(), data.clone())], depth: 0, steps: 0 };
    let mut out = String::new();
    ex.walk(body, data, &mut out).map_err(|message| Error::Exec { name: ex.name.clone(), message })?;
    Ok(out)
}

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<Flow, String> {
        for n in nodes {
            if out.len() > MAX_OUTPUT {
                return Err(format!("output larger than {MAX_OUTPUT} bytes"));
            }
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(format!("template took more than {MAX_STEPS} steps"));
            }
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.print(&v, out);
                    }
                }
                Node::If(branches, else_) => {
                    let mark = self.vars.len();
                    let mut taken = None;
                    for (p, body) in branches {
                        if self.pipe(p, dot)?.truthy() {
                            taken = Some(body);
                            break;
                        }
                    }
                    let flow = self.walk(taken.unwrap_or(else_), dot, out)?;
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With(p, body, else_) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let flow = if v.truthy() { self.walk(body, &v, out)? } else { self.walk(else_, dot, out)? };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(p, body, else_) => {
                    let mark = self.vars.len();
                    let decl = p.decl.clone();
                    let plain = Pipe { decl: Vec::new(), ..p.clone() };
                    let v = self.pipe(&plain, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l.into_iter().enumerate().map(|(i, e)| (Value::Int(i as i64), e)).collect(),
                        Value::Map(m) => m.into_iter().map(|(k, e)| (Value::Str(k), e)).collect(),
                        Value::Int(n) if n > MAX_STEPS as i64 => {
                            return Err(format!("range over {n}: more than {MAX_STEPS} iterations"))
                        }
                        Value::Int(n) => (0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Nil => Vec::new(),
                        other => return Err(format!("range can't iterate over {}", other.to_go_string())),
                    };
                    if items.is_empty() {
                        let flow = self.walk(else_, dot, out)?;
                        self.vars.truncate(mark);
                        if !matches!(flow, Flow::Normal) {
                            return Ok(flow);
                        }
                        continue;
                    }
                    for (k, e) in items {
                        self.steps += 1;
                        if self.steps > MAX_STEPS {
                            return Err(format!("template took more than {MAX_STEPS} steps"));
                        }
                        let inner = self.vars.len();
                        match decl.as_slice() {
                            [one] => self.set_var(one, e.clone(), p.assign)?,
                            [a, b] => {
                                self.set_var(a, k, p.assign)?;
                                self.set_var(b, e.clone(), p.assign)?;
                            }
                            _ => {}
                        }
                        let flow = self.walk(body, &e, out)?;
                        self.vars.truncate(inner.max(mark));
                        if matches!(flow, Flow::Break) {
                            break;
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Template(name, p, _line) => {
                    let data = match p {
                        Some(p) => self.pipe(p, dot)?,
                        None => Value::Nil,
                    };
                    out.push_str(&self.call_template(name, &data)?);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    pub(crate) fn call_template(&mut self, name: &str, data: &Value) -> Result<String, String> {
        let body = self.set.defs.get(name).ok_or_else(|| format!("no such template {name:?}"))?.clone();
        if self.depth >= MAX_DEPTH {
            return Err(format!("exceeded maximum template depth ({MAX_DEPTH})"));
        }
        let saved = std::mem::replace(&mut self.vars, vec![(String::new(), data.clone())]);
        self.depth += 1;
        let mut out = String::new();
        let r = self.walk(&body, data, &mut out);
        self.depth -= 1;
        self.vars = saved;
        r.map(|_| out)
    }

    fn print(&self, v: &Value, out: &mut String) {
        match v {
            Value::Safe(s) => out.push_str(s),
            v if self.env.html => out.push_str(&html_escape(&v.to_go_string())),
            v => out.push_str(&v.to_go_string()),
        }
    }

    fn set_var(&mut self, name: &str, v: Value, assign: bool) -> Result<(), String> {
        if assign {
            let slot = self
                .vars
                .iter_mut()
                .rev()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("undefined variable: ${name}"))?;
            slot.1 = v;
        } else {
            self.vars.push((name.to_string(), v));
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: ${name}"))
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut v: Option<Value> = None;
        for c in &p.cmds {
            v = Some(self.cmd(c, dot, v)?);
        }
        let v = v.unwrap_or(Value::Nil);
        match p.decl.as_slice() {
            [] => {}
            [name] => self.set_var(name, v.clone(), p.assign)?,
            _ => return Err("too many declarations in command".into()),
        }
        Ok(v)
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, piped: Option<Value>) -> Result<Value, String> {
        let first = &c.args[0];
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args[1..] {
            args.push(self.operand(a, dot)?);
        }
        if let Some(p) = piped.clone() {
            args.push(p);
        }
        match &first.term {
            Term::Func(name) => crate::funcs::call(self, name, args),
            _ if !first.fields.is_empty() && (!args.is_empty()) => {
                // A method call: `.CommonLabels.Remove .GroupLabels.Names`, `.StartsAt.Format "..."`.
                let (method, chain) = first.fields.split_last().ok_or("empty field chain")?;
                let recv = self.operand(&Operand { term: first.term.clone(), fields: chain.to_vec() }, dot)?;
                method_call(&recv, method, &args)
            }
            _ if !args.is_empty() => Err(format!("can't give argument to non-function {}", describe(first))),
            _ => self.operand(first, dot),
        }
    }

    fn operand(&mut self, op: &Operand, dot: &Value) -> Result<Value, String> {
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Var(n) => self.var(n)?,
            Term::Lit(v) => v.clone(),
            Term::Func(name) => crate::funcs::call(self, name, Vec::new())?,
            Term::Sub(p) => self.pipe(p, dot)?,
        };
        for f in &op.fields {
            v = field(&v, f)?;
        }
        Ok(v)
    }
}

fn describe(op: &Operand) -> String {
    match &op.term {
        Term::Dot if !op.fields.is_empty() => format!(".{}", op.fields.join(".")),
        Term::Var(v) => format!("${v}"),
        Term::Lit(v) => v.to_go_string(),
        _ => ".".into(),
    }
}

/// `v.name`: a map key, or one of the Go methods templates use without arguments.
pub(crate) fn field(v: &Value, name: &str) -> Result<Value, String> {
    match v {
        Value::Map(m) => {
            if let Some(x) = m.get(name) {
                return Ok(x.clone());
            }
            Ok(match name {
                "SortedPairs" => Value::List(
                    m.iter()
                        .map(|(k, v)| Value::map([("Name", Value::Str(k.clone())), ("Value", v.clone())]))
                        .collect(),
                ),
                "Names" => Value::List(m.keys().map(|k| Value::Str(k.clone())).collect()),
                "Values" => Value::List(m.values().cloned().collect()),
                // Go's missingkey=zero for string maps: the empty string.
                _ => Value::Str(String::new()),
            })
        }
        Value::List(l) => match name {
            "Firing" | "Resolved" => {
                let want = if name == "Firing" { "firing" } else { "resolved" };
                Ok(Value::List(
                    l.iter()
                        .filter(|a| matches!(a, Value::Map(m) if m.get("Status").and_then(Value::as_str) == Some(want)))
                        .cloned()
                        .collect(),
                ))
            }
            "Names" | "Values" => {
                let key = if name == "Names" { "Name" } else { "Value" };
                Ok(Value::List(l.iter().map(|p| field(p, key)).collect::<Result<_, _>>()?))
            }
            _ => Err(format!("can't evaluate field {name} in type []interface {{}}")),
        },
        Value::Time(ms) => match name {
            "Unix" => Ok(Value::Int(ms.div_euclid(1000))),
            "UnixMilli" => Ok(Value::Int(*ms)),
            "UnixNano" => Ok(Value::Int(ms.saturating_mul(1_000_000))),
            "UTC" | "Local" => Ok(Value::Time(*ms)),
            "IsZero" => Ok(Value::Bool(*ms == crate::funcs::GO_ZERO_TIME_MS)),
            _ => Err(format!("can't evaluate field {name} in type time.Time")),
        },
        Value::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
        other => Err(format!("can't evaluate field {name} in type {}", other.type_name())),
    }
}

/// `recv.name args...`: the Go methods with arguments that templates use.
fn method_call(recv: &Value, name: &str, args: &[Value]) -> Result<Value, String> {
    match (recv, name) {
        (Value::Map(m), "Remove") => {
            let drop: Vec<String> = match args {
                [Value::List(l)] => l.iter().map(Value::to_go_string).collect(),
                _ => return Err("Remove needs a list of names".into()),
            };
            let kept: BTreeMap<String, Value> =
                m.iter().filter(|(k, _)| !drop.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
            Ok(Value::Map(kept))
        }
        (Value::Time(ms), "Format") => match args {
            [Value::Str(layout)] => Ok(Value::Str(crate::fmt::go_time(*ms, layout))),
            _ => Err("Format needs one layout string".into()),
        },
        (Value::Time(ms), "Add") => match args {
            [d] => Ok(Value::Time(ms + d.to_f64().map(|ns| (ns / 1e6) as i64).unwrap_or(0))),
            _ => Err("Add needs one duration".into()),
        },
        _ => Err(format!("can't give argument to non-function .{name} (type {})", recv.type_name())),
    }
}

/// Go's `html/template` escaping of a value.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
