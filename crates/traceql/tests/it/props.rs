//! Property tests: printing round-trips, and no input makes the parser, the evaluator or
//! completions panic.

use proptest::prelude::*;
use telltale_model::{SpanKind, StatusCode};
use telltale_traceql::ast::*;
use telltale_traceql::{completions, parse, MetricsRange, Query};

fn attribute() -> impl Strategy<Value = Attribute> {
    let scope = prop_oneof![
        Just(Scope::None),
        Just(Scope::Span),
        Just(Scope::Resource),
        Just(Scope::Event),
        Just(Scope::Link),
        Just(Scope::Instrumentation)
    ];
    (scope, prop_oneof!["[a-z][a-z0-9_.]{0,8}", "[ -~]{1,6}", "\\PC{1,4}"])
        .prop_map(|(scope, name)| Attribute { scope, name })
}

fn static_value() -> impl Strategy<Value = Static> {
    prop_oneof![
        Just(Static::Nil),
        any::<bool>().prop_map(Static::Bool),
        any::<i64>().prop_map(Static::Int),
        (-1e12f64..1e12).prop_map(Static::Float),
        "\\PC{0,6}".prop_map(Static::Str),
        (-10_000_000_000i64..10_000_000_000).prop_map(Static::Duration),
        prop_oneof![Just(StatusCode::Ok), Just(StatusCode::Error), Just(StatusCode::Unset)].prop_map(Static::Status),
        prop_oneof![Just(SpanKind::Server), Just(SpanKind::Client), Just(SpanKind::Internal)].prop_map(Static::Kind),
    ]
}

fn leaf() -> impl Strategy<Value = FieldExpr> {
    prop_oneof![
        static_value().prop_filter("nil only in comparisons", |s| *s != Static::Nil).prop_map(FieldExpr::Static),
        attribute().prop_map(FieldExpr::Attribute),
        proptest::sample::select(Intrinsic::ALL.to_vec()).prop_map(FieldExpr::Intrinsic),
    ]
}

fn field_expr() -> impl Strategy<Value = FieldExpr> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        let ops = proptest::sample::select(vec![
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Mod,
            BinaryOp::Pow,
            BinaryOp::Eq,
            BinaryOp::Neq,
            BinaryOp::Lt,
            BinaryOp::Lte,
            BinaryOp::Gt,
            BinaryOp::Gte,
            BinaryOp::Regex,
            BinaryOp::NotRegex,
            BinaryOp::And,
            BinaryOp::Or,
        ]);
        prop_oneof![
            (ops, inner.clone(), inner.clone()).prop_map(|(op, l, r)| FieldExpr::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r)
            }),
            (proptest::sample::select(vec![UnaryOp::Not, UnaryOp::Exists, UnaryOp::NotExists]), inner.clone())
                .prop_map(|(op, e)| FieldExpr::Unary { op, expr: Box::new(e) }),
            attribute().prop_map(|a| FieldExpr::Unary { op: UnaryOp::Neg, expr: Box::new(FieldExpr::Attribute(a)) }),
        ]
    })
}

fn spanset() -> impl Strategy<Value = SpansetExpr> {
    field_expr().prop_map(SpansetExpr::Filter).prop_recursive(3, 8, 2, |inner| {
        let ops = proptest::sample::select(vec![
            SpansetOp::And,
            SpansetOp::Union,
            SpansetOp::Child,
            SpansetOp::Parent,
            SpansetOp::Descendant,
            SpansetOp::Ancestor,
            SpansetOp::Sibling,
            SpansetOp::NotChild,
            SpansetOp::NotDescendant,
            SpansetOp::NotSibling,
            SpansetOp::UnionChild,
            SpansetOp::UnionAncestor,
        ]);
        (ops, inner.clone(), inner).prop_map(|(op, l, r)| SpansetExpr::Op { op, lhs: Box::new(l), rhs: Box::new(r) })
    })
}

/// A query tree without validation: printing must round-trip whatever the types.
fn root() -> impl Strategy<Value = RootExpr> {
    let stage = prop_oneof![
        3 => spanset().prop_map(Stage::Spanset),
        1 => attribute().prop_map(|a| Stage::By(FieldExpr::Attribute(a))),
        1 => proptest::collection::vec(attribute().prop_map(FieldRef::Attribute), 1..3).prop_map(Stage::Select),
        1 => (1i64..100).prop_map(|n| Stage::ScalarFilter {
            op: BinaryOp::Gt,
            lhs: ScalarExpr::Aggregate { op: AggregateOp::Count, expr: None },
            rhs: ScalarExpr::Static(Static::Int(n)),
        }),
    ];
    let metrics = proptest::option::of(prop_oneof![
        Just(MetricsOp::Rate),
        Just(MetricsOp::CountOverTime),
        Just(MetricsOp::QuantileOverTime(FieldRef::Intrinsic(Intrinsic::Duration), vec![0.5, 0.99])),
    ]);
    (spanset(), proptest::collection::vec(stage, 0..3), metrics).prop_map(|(first, rest, m)| {
        let mut stages = vec![Stage::Spanset(first)];
        stages.extend(rest);
        RootExpr { pipeline: Pipeline { stages }, metrics: m.map(|op| MetricsAggregate { op, by: vec![] }) }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn printing_round_trips(root in root()) {
        let printed = root.to_string();
        // Validation may reject ill-typed trees; those that pass must be the same tree.
        if let Ok(q) = parse(&printed) {
            prop_assert_eq!(q.ast(), &root, "printed as {}", printed);
        }
        // The parser itself (without validation) must always accept what was printed.
        let q = Query::from_ast(root.clone());
        prop_assert_eq!(q.to_string(), printed);
    }

    #[test]
    fn valid_trees_round_trip(expr in field_expr()) {
        let root = RootExpr { pipeline: Pipeline { stages: vec![Stage::Spanset(SpansetExpr::Filter(expr))] }, metrics: None };
        let printed = root.to_string();
        if let Ok(q) = parse(&printed) {
            prop_assert_eq!(q.ast(), &root);
        }
    }

    #[test]
    fn no_input_panics(text in "\\PC{0,40}", cursor in 0usize..50) {
        let traces = crate::data::traces();
        if let Ok(q) = parse(&text) {
            let again = parse(&q.to_string());
            prop_assert_eq!(again.as_ref().map(|a| a.ast()).ok(), Some(q.ast()), "{}", q);
            for t in &traces {
                let _ = q.eval(t);
            }
            let _ = q.hints();
            let _ = q.metrics(&traces, MetricsRange { start: 0, end: 60_000_000_000, step: 10_000_000_000 });
        }
        let _ = completions(&text, cursor);
    }

    #[test]
    fn query_like_input_never_panics(parts in proptest::collection::vec(proptest::sample::select(vec![
        "{", "}", "(", ")", "|", "&&", "||", ">", ">>", "<", "~", "!~", "!", "=", "!=", "=~", ".a", "span.b",
        "resource.service.name", "name", "duration", "status", "error", "1", "2.5", "1s", "\"x\"", "nil",
        "count()", "avg(", "by(", "select(", "rate()", "quantile_over_time(duration, 0.5)", ",", "-", "+", "*",
        "span:", "span:duration", "trace:rootService", "event.", "coalesce()", "true",
    ]), 0..14)) {
        let text = parts.join(" ");
        let traces = crate::data::traces();
        if let Ok(q) = parse(&text) {
            let again = parse(&q.to_string());
            prop_assert_eq!(again.as_ref().map(|a| a.ast()).ok(), Some(q.ast()), "{}", q);
            for t in &traces {
                let _ = q.eval(t);
            }
            let _ = q.hints();
            let _ = q.metrics(&traces, MetricsRange { start: 0, end: 60_000_000_000, step: 10_000_000_000 });
        }
        for c in 0..=text.len() {
            let _ = completions(&text, c);
        }
    }
}
