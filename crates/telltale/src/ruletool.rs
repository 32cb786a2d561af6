//! `telltale check rules FILE...` and `telltale test rules FILE...`, with promtool's file
//! formats and output, so existing rule files and their unit tests run unchanged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use telltale_alerting::rules::{AlertState, EvalContext, Group};
use telltale_alerting::{rulefile, LabelSet};
use telltale_model::{Sample, WriteBatch};
use telltale_promql::EngineOptions;
use telltale_storage::{MemStore, MetricStore, MetricWriter};

/// `check rules`: prints promtool's report for each file; returns whether all are valid.
pub(crate) fn check(files: &[std::path::PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match std::fs::read_to_string(f) {
            Err(e) => {
                println!("  FAILED:\n{}: {e}\n", f.display());
                ok = false;
            }
            Ok(text) => match rulefile::parse(&text, &f.display().to_string()) {
                Ok(file) => {
                    let n: usize = file.groups.iter().map(|g| g.rules.len()).sum();
                    println!("  SUCCESS: {n} rules found\n");
                }
                Err(errs) => {
                    println!("  FAILED:");
                    for e in errs {
                        println!("{e}");
                    }
                    println!();
                    ok = false;
                }
            },
        }
    }
    ok
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: LabelSet,
    #[serde(default)]
    exp_annotations: LabelSet,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

fn dur(s: &str) -> Result<i64, String> {
    telltale_promql::promqltest::parse_duration(s)
}

/// `test rules`: runs each unit-test file; prints promtool's report; returns whether all passed.
pub(crate) fn test(files: &[std::path::PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        match run_file(f) {
            Ok(()) => println!("  SUCCESS\n"),
            Err(errs) => {
                ok = false;
                println!("  FAILED:");
                for e in errs {
                    println!("    {}", e.replace('\n', "\n    "));
                }
                println!();
            }
        }
    }
    ok
}

fn run_file(path: &Path) -> Result<(), Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    let tf: TestFile = serde_yaml_ng::from_str(&text).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let eval_interval = dur(tf.evaluation_interval.as_deref().unwrap_or("1m")).map_err(|e| vec![e])?;
    let base = path.parent().unwrap_or(Path::new("."));
    let opts = telltale_alerting::RulesOptions {
        evaluation_interval: Duration::from_millis(eval_interval as u64),
        builtin: telltale_alerting::builtin::BuiltinOptions { enabled: false, ..Default::default() },
        ..Default::default()
    };
    let mut groups =
        telltale_alerting::manager::load_groups(&tf.rule_files, base, &opts).map_err(|e| vec![e.to_string()])?;
    if !tf.group_eval_order.is_empty() {
        let order = |g: &Group| tf.group_eval_order.iter().position(|n| *n == g.name).unwrap_or(usize::MAX);
        groups.sort_by_key(order);
    }
    let mut errs = Vec::new();
    for (i, t) in tf.tests.iter().enumerate() {
        let name = if t.name.is_empty() { format!("test {}", i + 1) } else { t.name.clone() };
        if let Err(e) = run_group(t, &groups, eval_interval) {
            errs.extend(e.into_iter().map(|e| format!("{name}: {e}")));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn run_group(t: &TestGroup, groups: &[Group], eval_interval: i64) -> Result<(), Vec<String>> {
    let one = |e: String| vec![e];
    let interval = dur(t.interval.as_deref().unwrap_or("1m")).map_err(one)?;
    let store = Arc::new(MemStore::new());
    let mut batch = WriteBatch::new();
    for s in &t.input_series {
        let (labels, values) = telltale_promql::promqltest::parse_series_notation(&s.series, &s.values)
            .map_err(|e| one(format!("input series {:?}: {e}", s.series)))?;
        let samples: Vec<Sample> =
            values.iter().enumerate().filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * interval, v))).collect();
        batch.push(labels, &samples);
    }
    store.write(&batch).map_err(|e| one(e.to_string()))?;
    if !t.external_labels.is_empty() {
        return Err(one("external_labels are not supported yet".into()));
    }
    let dyn_store: Arc<dyn MetricStore> = store.clone();
    let w = store.clone();
    let ctx = EvalContext {
        query: crate::alerting::query_fn(dyn_store.clone(), EngineOptions::default()),
        // promtool's test format loads series, not log lines: LogQL groups cannot run here.
        log_query: None,
        write: Arc::new(move |b: &WriteBatch| w.write(b).map(|_| ()).map_err(|e| e.to_string())),
        external_url: t.external_url.clone(),
        resend_delay: Duration::from_secs(60),
    };
    let mut groups: Vec<Group> = groups.to_vec();
    let mut alert_tests: Vec<(i64, &AlertTest)> =
        t.alert_rule_test.iter().map(|a| dur(&a.eval_time).map(|d| (d, a))).collect::<Result<_, _>>().map_err(one)?;
    alert_tests.sort_by_key(|(d, _)| *d);
    let max = alert_tests
        .iter()
        .map(|(d, _)| *d)
        .chain(t.promql_expr_test.iter().filter_map(|e| dur(&e.eval_time).ok()))
        .max()
        .unwrap_or(0);
    let mut errs = Vec::new();
    let mut next = 0;
    let mut ts = 0;
    while ts <= max {
        for g in &mut groups {
            g.eval(ts, &ctx);
        }
        while next < alert_tests.len() && alert_tests[next].0 >= ts && alert_tests[next].0 < ts + eval_interval {
            let (at, test) = alert_tests[next];
            next += 1;
            let mut got: Vec<(LabelSet, LabelSet)> = Vec::new();
            for g in &groups {
                for r in g.rules.iter().filter(|r| r.spec.alert.as_deref() == Some(&test.alertname)) {
                    for a in r.active.values().filter(|a| a.state == AlertState::Firing) {
                        got.push((a.labels.clone(), a.annotations.clone()));
                    }
                }
            }
            let mut exp: Vec<(LabelSet, LabelSet)> = test
                .exp_alerts
                .iter()
                .map(|e| {
                    let mut l = e.exp_labels.clone();
                    l.insert("alertname".into(), test.alertname.clone());
                    (l, e.exp_annotations.clone())
                })
                .collect();
            got.sort();
            exp.sort();
            if got != exp {
                errs.push(format!(
                    "alertname: {}, time: {}, \n    exp:{}, \n    got:{}",
                    test.alertname,
                    telltale_model::units::format_duration(Duration::from_millis(at as u64)),
                    show_alerts(&exp),
                    show_alerts(&got)
                ));
            }
        }
        ts += eval_interval;
    }
    for e in &t.promql_expr_test {
        let at = dur(&e.eval_time).map_err(one)?;
        let got = match (ctx.query)(&e.expr, at) {
            Ok(v) => v,
            Err(err) => {
                errs.push(format!("expr: {:?}, time: {}, err: {err}", e.expr, e.eval_time));
                continue;
            }
        };
        let mut got: Vec<(String, f64)> = got.into_iter().map(|s| (s.labels.to_string(), s.value)).collect();
        let mut exp = Vec::new();
        for s in &e.exp_samples {
            let labels = if s.labels.trim().is_empty() {
                telltale_model::Labels::empty()
            } else {
                telltale_promql::promqltest::parse_series_notation(&s.labels, "").map_err(one)?.0
            };
            exp.push((labels.to_string(), s.value));
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got.iter().zip(&exp).all(|(g, x)| g.0 == x.0 && (g.1 == x.1 || (g.1.is_nan() && x.1.is_nan())));
        if !same {
            errs.push(format!(
                "expr: {:?}, time: {},\n    exp: {}\n    got: {}",
                e.expr,
                e.eval_time,
                show_samples(&exp),
                show_samples(&got)
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn show_alerts(a: &[(LabelSet, LabelSet)]) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    let items: Vec<String> = a
        .iter()
        .enumerate()
        .map(|(i, (l, an))| {
            format!("\n        {i}:\n          Labels:{}\n          Annotations:{}", show_set(l), show_set(an))
        })
        .collect();
    format!("[{}\n        ]", items.join(""))
}

fn show_set(s: &LabelSet) -> String {
    let parts: Vec<String> = s.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn show_samples(s: &[(String, f64)]) -> String {
    let parts: Vec<String> = s.iter().map(|(l, v)| format!("{l} {v}")).collect();
    format!("[{}]", parts.join(", "))
}
