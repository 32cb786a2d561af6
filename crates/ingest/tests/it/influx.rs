use std::collections::BTreeMap;
use std::fmt::Write;

use proptest::prelude::*;
use telltale_ingest::influx::{self, Precision};
use telltale_ingest::Limits;
use telltale_model::Labels;

/// Escapes as the line protocol spec says for tag keys, tag values and field keys.
fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone)]
enum Field {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(String),
}

impl Field {
    fn render(&self) -> String {
        match self {
            Field::Float(v) => format!("{v:?}"),
            Field::Int(v) => format!("{v}i"),
            Field::Uint(v) => format!("{v}u"),
            Field::Bool(b) => (if *b { "true" } else { "F" }).to_string(),
            Field::Str(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    }

    fn value(&self) -> Option<f64> {
        match self {
            Field::Float(v) => Some(*v),
            Field::Int(v) => Some(*v as f64),
            Field::Uint(v) => Some(*v as f64),
            Field::Bool(b) => Some(f64::from(u8::from(*b))),
            Field::Str(_) => None,
        }
    }
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        (-1e300f64..1e300).prop_map(Field::Float),
        any::<i64>().prop_map(Field::Int),
        any::<u64>().prop_map(Field::Uint),
        any::<bool>().prop_map(Field::Bool),
        "(\\PC|[\\\\\", =]){0,10}".prop_map(Field::Str),
    ]
}

type Point = (String, BTreeMap<String, String>, BTreeMap<String, Field>, Option<i64>);

fn points() -> impl Strategy<Value = Vec<Point>> {
    let name = "[a-zA-Z][a-zA-Z0-9 ,=_.\\\\-]{0,10}";
    let point = (
        name,
        prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9 ,=_\\\\-]{0,8}", "(\\PC|[ ,=\\\\]){1,10}", 0..5),
        prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9 ,=_\\\\-]{0,8}", field(), 1..5),
        prop::option::of(-1_000_000_000_000i64..1_000_000_000_000),
    );
    prop::collection::vec(point, 1..10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn line_protocol_round_trip(input in points(), precision in prop_oneof![Just("ns"), Just("us"), Just("ms"), Just("s"), Just("h")]) {
        let precision: Precision = precision.parse().unwrap();
        let mut body = String::new();
        let mut want = Vec::new();
        for (measurement, tags, fields, t) in &input {
            // Measurements escape commas and spaces (and backslashes); '=' is literal there.
            let m: String = measurement.chars().flat_map(|c| {
                let esc = matches!(c, ',' | ' ' | '\\');
                esc.then_some('\\').into_iter().chain([c])
            }).collect();
            body.push_str(&m);
            for (k, v) in tags {
                write!(body, ",{}={}", escape(k), escape(v)).unwrap();
            }
            let fs: Vec<String> = fields.iter().map(|(k, f)| format!("{}={}", escape(k), f.render())).collect();
            write!(body, " {}", fs.join(",")).unwrap();
            if let Some(t) = t {
                write!(body, " {t}").unwrap();
            }
            body.push('\n');
            let ts = t.map_or(7, |t| precision.to_millis(t).unwrap());
            for (k, f) in fields {
                if let Some(v) = f.value() {
                    let name = format!("{measurement}_{k}");
                    let mut pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    pairs.push(("__name__", &name));
                    want.push((Labels::from_pairs(pairs).unwrap(), ts, v));
                }
            }
        }
        let batch = influx::decode(body.as_bytes(), precision, 7, None, &Limits::unlimited())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        let got: Vec<_> = batch.iter().map(|(l, s)| (l.clone(), s[0].t, s[0].v)).collect();
        prop_assert_eq!(got, want, "{}", body);
    }

    #[test]
    fn garbage_never_panics(text in "(\\PC|[\"=, #\n\\\\]){0,200}") {
        let _ = influx::decode(text.as_bytes(), Precision::Nanoseconds, 0, Some("db"), &Limits::default());
    }
}
