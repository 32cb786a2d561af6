//! The crate's one integration binary: the query table (`testdata/queries.txt`) over the
//! fixed data set in `data.rs`, completions, and property tests.

mod data;
mod props;

use std::fmt::Write;

use telltale_model::SpanBatch;
use telltale_traceql::{parse, Completion, CompletionKind, Hint, MetricsRange, Query};

const SEC: i64 = 1_000_000_000;

fn span_name(trace_no: usize, trace: &SpanBatch, m: &telltale_traceql::MatchedSpan) -> String {
    let span = m.get(trace).expect("matched span exists");
    format!("t{}.{}", trace_no, span.span_id.0[7] as char)
}

fn fmt_num(v: f64) -> String {
    format!("{}", (v * 1e6).round() / 1e6)
}

/// Renders what `kind` expects of `q` over the data set, in the table's notation.
fn render(kind: &str, q: &Query, traces: &[SpanBatch]) -> String {
    let mut out = String::new();
    match kind {
        "spans" | "none" => {
            let mut all = Vec::new();
            for (i, t) in traces.iter().enumerate() {
                let mut names: Vec<String> =
                    q.eval(t).iter().flat_map(|s| s.spans.iter().map(|m| span_name(i + 1, t, m))).collect();
                names.sort();
                names.dedup();
                all.extend(names);
            }
            if all.is_empty() {
                return "none".into();
            }
            out.push_str("spans: ");
            out.push_str(&all.join(" "));
        }
        "sets" => {
            out.push_str("sets:");
            for (i, t) in traces.iter().enumerate() {
                for s in q.eval(t) {
                    let letters: Vec<String> = s
                        .spans
                        .iter()
                        .map(|m| span_name(i + 1, t, m)[format!("t{}.", i + 1).len()..].to_string())
                        .collect();
                    write!(out, " t{}[{}]", i + 1, letters.join(",")).unwrap();
                    if !s.attributes.is_empty() {
                        let a: Vec<String> = s.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        write!(out, "{{{}}}", a.join(",")).unwrap();
                    }
                }
            }
        }
        "select" => {
            out.push_str("select:");
            for (i, t) in traces.iter().enumerate() {
                for s in q.eval(t) {
                    for m in &s.spans {
                        let a: Vec<String> = m.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        write!(out, " {}{{{}}}", span_name(i + 1, t, m), a.join(",")).unwrap();
                    }
                }
            }
        }
        "hints" => {
            out.push_str("hints:");
            for h in q.hints().conditions {
                let s = match h {
                    Hint::ServiceName(s) => format!("service={s}"),
                    Hint::SpanName(s) => format!("name={s}"),
                    Hint::MinDuration(d) => format!("min={d}"),
                    Hint::Status(s) => format!("status={}", s.name()),
                    Hint::Kind(k) => format!("kind={}", k.name()),
                    Hint::Attribute { scope, key, value } => format!("attr={}{key}={value}", scope.prefix()),
                };
                write!(out, " {s}").unwrap();
            }
        }
        "series" => {
            let range = MetricsRange { start: 0, end: 50 * SEC, step: 10 * SEC };
            out.push_str("series:");
            match q.metrics(traces, range) {
                Err(e) => write!(out, " error {e}").unwrap(),
                Ok(series) => {
                    for (n, s) in series.iter().enumerate() {
                        if n > 0 {
                            out.push_str(" ;");
                        }
                        let l: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        write!(out, " {{{}}}", l.join(",")).unwrap();
                        for step in 0..5 {
                            match s.samples.iter().find(|(t, _)| *t == step * 10_000) {
                                Some((_, v)) => write!(out, " {}", fmt_num(*v)).unwrap(),
                                None => out.push_str(" _"),
                            }
                        }
                    }
                }
            }
        }
        other => panic!("unknown expectation kind {other}"),
    }
    out
}

#[test]
fn query_table() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/queries.txt")).unwrap();
    let traces = data::traces();
    let mut failures = Vec::new();
    let mut query: Option<(usize, String)> = None;
    let mut cases = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let kind = ["spans:", "none", "sets:", "select:", "hints:", "series:", "error:"]
            .iter()
            .find(|p| line.starts_with(*p))
            .map(|p| p.trim_end_matches(':'));
        let Some(kind) = kind else {
            query = Some((n + 1, line.to_string()));
            continue;
        };
        let (qline, q) = query.clone().unwrap_or_else(|| panic!("line {}: expectation without a query", n + 1));
        cases += 1;
        let got = match (kind, parse(&q)) {
            ("error", Err(e)) => format!("error: {e}"),
            ("error", Ok(p)) => format!("parsed as {p}"),
            (_, Err(e)) => format!("error: {e}"),
            (kind, Ok(p)) => render(kind, &p, &traces),
        };
        if got != line {
            failures.push(format!("line {qline}: {q}\n  expected: {line}\n  got:      {got}"));
        }
    }
    assert!(cases >= 60, "only {cases} cases");
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_query_of_the_table_prints_and_reparses_to_the_same_tree() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/queries.txt")).unwrap();
    for line in text.lines() {
        if line.trim().is_empty()
            || line.starts_with('#')
            || line.contains(':') && !line.contains('{') && !line.contains('(')
        {
            continue;
        }
        if let Ok(q) = parse(line) {
            let printed = q.to_string();
            let again = parse(&printed).unwrap_or_else(|e| panic!("{line} printed as {printed}: {e}"));
            assert_eq!(again.ast(), q.ast(), "{line} printed as {printed}");
        }
    }
}

fn texts(c: &[Completion]) -> Vec<String> {
    c.iter()
        .filter_map(|c| match c {
            Completion::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn completions_follow_the_cursor() {
    let at_end = |s: &str| telltale_traceql::completions(s, s.len());
    assert_eq!(texts(&at_end("")), ["{"]);
    let c = at_end("{ ");
    assert!(texts(&c).contains(&"span.".to_string()) && texts(&c).contains(&"span:duration".to_string()));
    assert_eq!(
        at_end("{ span."),
        [Completion::AttributeNames { scope: telltale_traceql::ast::Scope::Span, prefix: "".into() }]
    );
    assert_eq!(
        at_end("{ resource.serv"),
        [Completion::AttributeNames { scope: telltale_traceql::ast::Scope::Resource, prefix: "serv".into() }]
    );
    assert!(texts(&at_end("{ span.foo ")).contains(&"=~".to_string()));
    assert_eq!(texts(&at_end("{ status = ")), ["error", "ok", "unset"]);
    assert_eq!(texts(&at_end("{ kind = ser")), ["server"]);
    assert_eq!(
        at_end("{ resource.service.name = "),
        [Completion::AttributeValues { field: "resource.service.name".into(), prefix: "".into() }]
    );
    assert_eq!(
        at_end("{ name = \"GE"),
        [Completion::AttributeValues { field: "span:name".into(), prefix: "GE".into() }]
    );
    assert_eq!(texts(&at_end("{ .a = 1 ")), ["&&", "||", "}"]);
    assert!(texts(&at_end("{ .a = 1 } ")).contains(&">>".to_string()));
    let after_pipe = texts(&at_end("{ } | "));
    assert!(after_pipe.contains(&"rate()".to_string()) && after_pipe.contains(&"count()".to_string()));
    assert_eq!(texts(&at_end("{ } | quan")), ["quantile_over_time("]);
    assert_eq!(texts(&at_end("{ span:d")), ["span:duration"]);
    assert!(texts(&at_end("{ span:")).iter().all(|t| t.starts_with("span:")));
    assert!(at_end("{ trace:").iter().all(|c| matches!(c, Completion::Text { kind: CompletionKind::Intrinsic, .. })));
    // A cursor in the middle reads only what comes before it; past the end or inside a
    // character is clamped.
    assert_eq!(texts(&telltale_traceql::completions("{ status = error }", 11)), ["error", "ok", "unset"]);
    let _ = telltale_traceql::completions("{ naé", 5);
    let _ = telltale_traceql::completions("{", 99);
}
