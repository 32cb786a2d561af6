//! Cases from Prometheus's `template/template_test.go`, the examples in Prometheus's
//! template documentation, and Alertmanager's default templates.

use std::sync::Arc;

use super::*;

fn r(text: &str, data: Value) -> String {
    render("t", text, &data, &Env::default()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn floats(v: &[f64]) -> Value {
    Value::List(v.iter().map(|f| Value::Float(*f)).collect())
}

fn env_with_query() -> Env {
    let query: QueryFn = Arc::new(|q: &str| {
        if q.starts_with("some_metric") {
            return Ok(vec![]);
        }
        if q == "1.5" {
            return Ok(vec![QuerySample { labels: vec![], value: 1.5 }]);
        }
        if q.starts_with("up") || q.starts_with("metric") {
            return Ok(vec![
                QuerySample {
                    labels: vec![("instance".into(), "b".into()), ("__value__".into(), "x".into())],
                    value: 1234567.0,
                },
                QuerySample { labels: vec![("instance".into(), "a".into())], value: 0.0 },
            ]);
        }
        Err(format!("bad query {q:?}"))
    });
    Env { query: Some(query), ..Default::default() }
}

#[test]
fn prometheus_template_test_cases() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("plain text", Value::Nil, "plain text"),
        ("{{ 1 }}", Value::Nil, "1"),
        ("{{ humanize 1234567.0 }}", Value::Nil, "1.235M"),
        ("{{ .Value }}", Value::map([("Value", Value::Float(1.5))]), "1.5"),
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            floats(&[0.0, 1.0, 1234567.0, 0.12, 0.0012, 1e-8, f64::INFINITY, f64::NAN, -1234.0]),
            "0:1:1.235M:120m:1.2m:10n:+Inf:NaN:-1.234k:",
        ),
        (
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            floats(&[0.0, 1.0, 1048576.0, 1.0 / 3.0, 2048.5]),
            "0:1:1Mi:0.3333:2ki:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            floats(&[
                0.0,
                1.0,
                60.0,
                3600.0,
                86400.0,
                86400.0 + 3600.0,
                -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
                899.99,
            ]),
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            floats(&[0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345]),
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
        ),
        ("{{ humanizeDuration \"1.5\" }}", Value::Nil, "1.5s"),
        (
            "{{ range . }}{{ humanizePercentage . }}:{{ end }}",
            floats(&[0.0, 0.1, 1.0, 1.234567, -0.1]),
            "0%:10%:100%:123.5%:-10%:",
        ),
        ("{{ 1435065584.128 | humanizeTimestamp }}", Value::Nil, "2015-06-23 13:19:44.128 +0000 UTC"),
        ("{{ toTime 1435065584.128 }}", Value::Nil, "2015-06-23 13:19:44.128 +0000 UTC"),
        ("{{ \"aa bb CC\" | title }}", Value::Nil, "Aa Bb CC"),
        ("{{ \"aa\" | toUpper }} {{ \"BB\" | toLower }}", Value::Nil, "AA bb"),
        ("{{ match \"a+\" \"baa\" }}", Value::Nil, "true"),
        ("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}", Value::Nil, "xa"),
        ("{{ \"foo.example.com:12345\" | stripPort }}", Value::Nil, "foo.example.com"),
        ("{{ \"[2001:0DB8::1]:12345\" | stripPort }}", Value::Nil, "2001:0DB8::1"),
        ("{{ \"foo.example.com\" | stripDomain }}", Value::Nil, "foo"),
        ("{{ \"foo.example.com:12345\" | stripDomain }}", Value::Nil, "foo:12345"),
        ("{{ \"192.0.2.1:12345\" | stripDomain }}", Value::Nil, "192.0.2.1:12345"),
        (
            "{{ graphLink \"up\" }} {{ tableLink \"rate(x[5m])\" }}",
            Value::Nil,
            "/graph?g0.expr=up&g0.tab=0 /graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1",
        ),
        ("{{ printf \"%0.2f\" 1.2345 }}", Value::Nil, "1.23"),
        ("{{ printf \"%s\" \"x\" | printf \"%q\" }}", Value::Nil, "\"x\""),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", Value::Nil, "2"),
        ("{{ range $i, $e := . }}{{ $i }}={{ $e }} {{ end }}", floats(&[1.0, 2.5]), "0=1 1=2.5 "),
        ("{{ range . }}x{{ else }}empty{{ end }}", Value::List(vec![]), "empty"),
        ("{{ if eq 1 2 }}a{{ else if eq 2 2 }}b{{ else }}c{{ end }}", Value::Nil, "b"),
        ("{{ if and true 0 }}a{{ else }}b{{ end }}{{ or \"\" \"x\" }}", Value::Nil, "bx"),
        ("{{ with .A }}{{ . }}{{ else }}none{{ end }}", Value::map([("A", Value::str(""))]), "none"),
        ("  {{- \"x\" -}}  \n y", Value::Nil, "xy"),
        ("a {{/* a comment */}}b {{- /* trimmed */ -}} c", Value::Nil, "a bc"),
        ("{{ define \"T\" }}[{{ . }}]{{ end }}{{ template \"T\" \"v\" }}", Value::Nil, "[v]"),
        ("{{ define \"T\" }}{{ .arg0 }}-{{ .arg1 }}{{ end }}{{ template \"T\" (args 1 2) }}", Value::Nil, "1-2"),
        ("{{ block \"B\" . }}<{{ . }}>{{ end }}", Value::str("d"), "<d>"),
        ("{{ range . }}{{ if eq . 2.0 }}{{ break }}{{ end }}{{ . }}{{ end }}", floats(&[1.0, 2.0, 3.0]), "1"),
        ("{{ range . }}{{ if eq . 2.0 }}{{ continue }}{{ end }}{{ . }}{{ end }}", floats(&[1.0, 2.0, 3.0]), "13"),
        ("{{ len . }} {{ index . 1 }}", floats(&[1.0, 2.0]), "2 2"),
        ("{{ .Labels.missing }}|{{ .Labels.a }}", Value::map([("Labels", Value::string_map([("a", "1")]))]), "|1"),
        ("{{ print 1 2 \"a\" 3 }} {{ println \"x\" 1 }}", Value::Nil, "1 2a3 x 1\n"),
        ("{{ 1000000.0 }} {{ 0.5 }} {{ -3 }} {{ 0x10 }} {{ 1e3 }}", Value::Nil, "1e+06 0.5 -3 16 1000"),
        ("{{ \"<b>\" | html }} {{ \"a b&c\" | urlquery }}", Value::Nil, "&lt;b&gt; a+b%26c"),
        ("{{ lt 1 2 }} {{ ge \"b\" \"a\" }} {{ ne 1 1 }}", Value::Nil, "true true false"),
        ("{{ (args 1 2).arg1 }}", Value::Nil, "2"),
        ("{{ parseDuration \"1h30m\" }}", Value::Nil, "5400"),
    ];
    for (text, data, want) in cases {
        assert_eq!(r(text, data), want, "{text}");
    }
}

#[test]
fn query_functions_from_the_prometheus_docs() {
    let env = env_with_query();
    let run = |t: &str| render("t", t, &Value::Nil, &env).unwrap_or_else(|e| panic!("{t}: {e}"));
    // docs/configuration/template_examples.md
    assert_eq!(
        run("{{ with query \"some_metric{instance='someinstance'}\" }}{{ . | first | value | humanize }}{{ end }}")
            .len(),
        0
    );
    assert_eq!(run("{{ with query \"metric{instance='a'}\" }}{{ . | first | value | humanize }}{{ end }}"), "1.235M");
    assert_eq!(run("{{ range query \"up\" }}{{ .Labels.instance }} {{ .Value }}\n{{ end }}"), "b 1.234567e+06\na 0\n");
    assert_eq!(run("{{ range sortByLabel \"instance\" (query \"up\") }}{{ .Labels.instance }}{{ end }}"), "ab");
    assert_eq!(run("{{ query \"1.5\" | first | value }}"), "1.5");
    assert_eq!(run("{{ query \"up\" | first | label \"instance\" }} {{ query \"up\" | first | strvalue }}"), "b x");
    let e = render("t", "{{ query \"nope\" }}", &Value::Nil, &env).unwrap_err();
    assert_eq!(e.to_string(), "template: t: executing: error calling query: bad query \"nope\"");
    let e = render("t", "{{ query \"1.5\" }}", &Value::Nil, &Env::default()).unwrap_err();
    assert!(e.to_string().contains("no query engine"), "{e}");
}

#[test]
fn prometheus_rule_annotation_prelude() {
    // What Prometheus prepends to every annotation and label template.
    let prelude = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";
    let data = Value::map([
        ("Labels", Value::string_map([("instance", "host:9100"), ("job", "node")])),
        ("ExternalLabels", Value::string_map([("cluster", "eu")])),
        ("ExternalURL", Value::str("http://tt:7070")),
        ("Value", Value::Float(0.93312)),
    ]);
    let text = format!(
        "{prelude}{{{{ $labels.instance }}}} of job {{{{ $labels.job }}}} ({{{{ $externalLabels.cluster }}}}) is at {{{{ $value | humanizePercentage }}}}; see {{{{ $externalURL }}}}"
    );
    assert_eq!(r(&text, data), "host:9100 of job node (eu) is at 93.31%; see http://tt:7070");
}

fn am_data() -> Value {
    let alert = |status: &str, instance: &str| {
        Value::map([
            ("Status", Value::str(status)),
            ("Labels", Value::string_map([("alertname", "InstanceDown"), ("job", "node"), ("instance", instance)])),
            ("Annotations", Value::string_map([("summary", format!("{instance} is down"))])),
            ("StartsAt", Value::Time(1_700_000_000_000)),
            ("EndsAt", Value::Time(crate::funcs::GO_ZERO_TIME_MS)),
            ("GeneratorURL", Value::str("http://tt/graph")),
            ("Fingerprint", Value::str("abc")),
        ])
    };
    Value::map([
        ("Receiver", Value::str("team-X")),
        ("Status", Value::str("firing")),
        (
            "Alerts",
            Value::List(vec![alert("firing", "a:9100"), alert("firing", "b:9100"), alert("resolved", "c:9100")]),
        ),
        ("GroupLabels", Value::string_map([("alertname", "InstanceDown")])),
        ("CommonLabels", Value::string_map([("alertname", "InstanceDown"), ("job", "node")])),
        ("CommonAnnotations", Value::string_map::<&str, &str>([])),
        ("ExternalURL", Value::str("http://tt:7070")),
    ])
}

#[test]
fn alertmanager_default_subject_and_text() {
    // From Alertmanager's template/default.tmpl.
    let tmpl = r#"{{ define "__subject" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }} {{ if gt (len .CommonLabels) (len .GroupLabels) }}({{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join " " }}{{ end }}){{ end }}{{ end }}
{{ define "__text_alert_list" }}{{ range . }}Labels:
{{ range .Labels.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}Annotations:
{{ range .Annotations.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}Source: {{ .GeneratorURL }}
{{ end }}{{ end }}"#;
    let mut set = Templates::new();
    set.add("default.tmpl", tmpl).unwrap();
    let data = am_data();
    assert_eq!(set.render("__subject", &data, &Env::default()).unwrap(), "[FIRING:2] InstanceDown (node)");
    let list =
        set.render_str("x", "{{ template \"__text_alert_list\" .Alerts.Resolved }}", &data, &Env::default()).unwrap();
    assert_eq!(
        list,
        "Labels:\n - alertname = InstanceDown\n - instance = c:9100\n - job = node\nAnnotations:\n - summary = c:9100 is down\nSource: http://tt/graph\n"
    );
    let t = set
        .render_str(
            "y",
            "{{ range .Alerts }}{{ .StartsAt.Format \"2006-01-02T15:04:05Z07:00\" }} {{ .EndsAt.IsZero }}{{ end }}",
            &data,
            &Env::default(),
        )
        .unwrap();
    assert_eq!(t, "2023-11-14T22:13:20Z true".repeat(3));
}

#[test]
fn html_mode_escapes_values_not_text() {
    let env = Env { html: true, ..Default::default() };
    let data = Value::map([("A", Value::str("<script>&")), ("B", Value::str("<i>ok</i>"))]);
    let out = render("t", "<p>{{ .A }}</p>{{ .B | safeHtml }}", &data, &env).unwrap();
    assert_eq!(out, "<p>&lt;script&gt;&amp;</p><i>ok</i>");
}

#[test]
fn parse_errors_name_the_line() {
    let cases = [
        ("{{ if true }}x", "template: t:1: unexpected EOF in if"),
        ("a\n{{ nosuch 1 }}", "template: t:2: function \"nosuch\" not defined"),
        ("{{ end }}", "template: t:1: unexpected {{end}}"),
        ("{{ \"x\" 1 }}", "template: t:1: can't give argument to non-function"),
        ("{{ .A", "template: t:1: unclosed action"),
        ("{{ (1 }}", "template: t:1: unclosed left paren"),
    ];
    for (text, want) in cases {
        assert_eq!(check("t", text).unwrap_err().to_string(), want, "{text}");
    }
}

#[test]
fn exec_errors_are_reported_not_panics() {
    let e = render("t", "{{ template \"nope\" }}", &Value::Nil, &Env::default()).unwrap_err();
    assert_eq!(e.to_string(), "template: t: executing: no such template \"nope\"");
    let e = render(
        "t",
        "{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}",
        &Value::Nil,
        &Env::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("exceeded maximum template depth"), "{e}");
    let e = render("t", "{{ first . }}", &Value::List(vec![]), &Env::default()).unwrap_err();
    assert!(e.to_string().contains("first() called on vector with no elements"), "{e}");
    assert!(render("t", "{{ $nope }}", &Value::Nil, &Env::default()).is_err());
    let e = render("t", "{{ range 1000000000 }}{{ end }}", &Value::Nil, &Env::default()).unwrap_err();
    assert!(e.to_string().contains("more than 1000000 iterations"), "{e}");
    let e = render("t", "{{ range 900000 }}{{ range 900000 }}{{ end }}{{ end }}", &Value::Nil, &Env::default())
        .unwrap_err();
    assert!(e.to_string().contains("steps"), "{e}");
    assert!(render("t", "{{ .A.B }}", &Value::map([("A", Value::Int(1))]), &Env::default()).is_err());
}

mod props {
    use proptest::prelude::*;

    use crate::{go_float, render, Env, Value};

    proptest! {
        /// `%v` of a float reads back as the same float (shortest round-trip digits).
        #[test]
        fn go_float_round_trips(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let s = go_float(x);
            prop_assert_eq!(s.parse::<f64>().unwrap(), x, "{}", s);
        }

        /// Text without `{{` renders as itself; any input either parses or errs, never panics.
        #[test]
        fn plain_text_is_itself_and_nothing_panics(s in "[^{}]*", junk in ".{0,64}") {
            prop_assert_eq!(render("t", &s, &Value::Nil, &Env::default()).unwrap(), s);
            let _ = render("t", &junk, &Value::Nil, &Env::default());
            let _ = render("t", &format!("{{{{ {junk} }}}}"), &Value::Nil, &Env::default());
        }
    }
}
