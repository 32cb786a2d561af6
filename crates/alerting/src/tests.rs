//! Rule evaluation against the real PromQL engine over an in-memory store, with time
//! passed in as values.

use std::sync::Arc;
use std::time::Duration;

use telltale_model::{Labels, Matcher, Sample, TimeRange, WriteBatch};
use telltale_promql::{Engine, Value as PValue};
use telltale_storage::{MemStore, MetricReader, MetricWriter};

use crate::rules::{AlertState, EvalContext, Group, Health, VectorSample};
use crate::{rulefile, Rules};

const MIN: i64 = 60_000;

struct Fixture {
    store: Arc<MemStore>,
    ctx: EvalContext,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemStore::new());
    let (s1, s2) = (store.clone(), store.clone());
    let engine = Engine::default();
    let ctx = EvalContext {
        query: Arc::new(move |q: &str, t| match engine.instant(s1.as_ref(), q, t).map_err(|e| e.to_string())? {
            PValue::Vector(v) => Ok(v.into_iter().map(|s| VectorSample { labels: s.labels, value: s.v }).collect()),
            PValue::Scalar { v, .. } => Ok(vec![VectorSample { labels: Labels::empty(), value: v }]),
            other => Err(format!("rule result is a {}", other.result_type())),
        }),
        log_query: None,
        write: Arc::new(move |b: &WriteBatch| s2.write(b).map(|_| ()).map_err(|e| e.to_string())),
        external_url: "http://tt:7070".into(),
        resend_delay: Duration::from_secs(60),
    };
    Fixture { store, ctx }
}

impl Fixture {
    /// `name{labels}` with `values[i]` at minute `i`.
    fn load(&self, labels: &[(&str, &str)], values: &[f64]) {
        let l = Labels::from_pairs(labels.iter().copied()).unwrap();
        let mut b = WriteBatch::new();
        let samples: Vec<Sample> = values.iter().enumerate().map(|(i, v)| Sample::new(i as i64 * MIN, *v)).collect();
        b.push(l, &samples);
        self.store.write(&b).unwrap();
    }

    fn series(&self, name: &str) -> Vec<(String, Vec<(i64, f64)>)> {
        let got = self.store.select(TimeRange::ALL, &[Matcher::equal("__name__", name)]).unwrap();
        got.into_iter().map(|s| (s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v)).collect())).collect()
    }
}

fn group(text: &str) -> Group {
    let f = rulefile::parse(text, "t.yml").unwrap();
    Group::new(&f.groups[0], "t.yml", Duration::from_secs(60))
}

const DOWN: &str = r#"
groups:
- name: g
  rules:
  - alert: InstanceDown
    expr: up == 0
    for: 2m
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.instance }} down, value {{ $value }}"
"#;

#[test]
fn pending_then_firing_then_resolved_like_prometheus() {
    let f = fixture();
    // Down from minute 1 to minute 5, up again at 6.
    f.load(&[("__name__", "up"), ("job", "node"), ("instance", "a:9100")], &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
    let mut g = group(DOWN);
    assert!(g.eval(0, &f.ctx).is_empty());
    assert_eq!(g.rules[0].state(), AlertState::Inactive);
    // Minute 1: pending, not sent.
    assert!(g.eval(MIN, &f.ctx).is_empty());
    let a = g.rules[0].active.values().next().unwrap().clone();
    assert_eq!((a.state, a.active_at), (AlertState::Pending, MIN));
    assert_eq!(a.annotations["summary"], "a:9100 down, value 0");
    assert_eq!(a.labels.get("alertname").map(String::as_str), Some("InstanceDown"));
    assert_eq!(a.labels.get("severity").map(String::as_str), Some("page"));
    assert!(!a.labels.contains_key("__name__"));
    // Minute 2: still pending (for 2m counts from minute 1).
    assert!(g.eval(2 * MIN, &f.ctx).is_empty());
    // Minute 3: firing, and sent with startsAt = when it fired, valid for 4 × resend delay.
    let sent = g.eval(3 * MIN, &f.ctx);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].starts_at, sent[0].ends_at), (3 * MIN, Some(3 * MIN + 4 * MIN)));
    assert_eq!(sent[0].generator_url, "http://tt:7070/explore?query=up%20%3D%3D%200&tab=graph");
    // Minute 4: firing; not re-sent before the resend delay (1m) has passed...
    assert!(g.eval(4 * MIN, &f.ctx).is_empty());
    // ...but at minute 4 + 1ms it is.
    assert_eq!(g.eval(4 * MIN + 1, &f.ctx).len(), 1);
    // Minute 6: resolved and sent at once with endsAt = now.
    let sent = g.eval(6 * MIN, &f.ctx);
    assert_eq!((sent.len(), sent[0].ends_at), (1, Some(6 * MIN)));
    assert_eq!(g.rules[0].state(), AlertState::Inactive);
    // Kept (and re-sent as resolved each resend delay) for 15 minutes, then dropped.
    assert_eq!(g.eval(7 * MIN + 1, &f.ctx).len(), 1);
    g.eval(21 * MIN, &f.ctx);
    assert_eq!(g.rules[0].active.len(), 1);
    g.eval(21 * MIN + 1, &f.ctx);
    assert!(g.rules[0].active.is_empty());

    // ALERTS went pending (1, 2), firing (3, 4, 4m+1ms), then a staleness marker at 6.
    let alerts = f.series("ALERTS");
    let pending = alerts.iter().find(|(l, _)| l.contains("alertstate=\"pending\"")).unwrap();
    assert_eq!(pending.1.iter().filter(|(_, v)| !v.is_nan()).map(|(t, _)| *t).collect::<Vec<_>>(), vec![MIN, 2 * MIN]);
    assert!(pending.1.last().unwrap().1.is_nan(), "stale marker when it left pending");
    let firing = alerts.iter().find(|(l, _)| l.contains("alertstate=\"firing\"")).unwrap();
    assert_eq!(firing.0, "ALERTS{alertname=\"InstanceDown\", alertstate=\"firing\", instance=\"a:9100\", job=\"node\", severity=\"page\"}");
    assert_eq!(firing.1.iter().filter(|(_, v)| !v.is_nan()).count(), 3);
    assert!(telltale_model::is_stale_nan(firing.1.last().unwrap().1));
    // ALERTS_FOR_STATE holds activeAt in seconds.
    let fs = f.series("ALERTS_FOR_STATE");
    assert_eq!(fs.len(), 1);
    assert!(fs[0].1.iter().filter(|(_, v)| !v.is_nan()).all(|(_, v)| *v == 60.0));
}

#[test]
fn a_pending_alert_that_clears_is_dropped_and_a_new_one_starts_over() {
    let f = fixture();
    f.load(&[("__name__", "up"), ("instance", "a")], &[0.0, 1.0, 0.0, 0.0, 0.0]);
    let mut g = group(DOWN);
    g.eval(0, &f.ctx);
    g.eval(MIN, &f.ctx);
    assert!(g.rules[0].active.is_empty(), "pending alerts vanish without being sent");
    g.eval(2 * MIN, &f.ctx);
    assert_eq!(g.rules[0].active.values().next().unwrap().active_at, 2 * MIN);
    assert!(g.eval(3 * MIN, &f.ctx).is_empty());
    assert_eq!(g.eval(4 * MIN, &f.ctx).len(), 1);
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    let f = fixture();
    f.load(&[("__name__", "x")], &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: X\n    expr: x > 0\n    keep_firing_for: 2m\n");
    assert_eq!(g.eval(0, &f.ctx).len(), 1, "no for: fires at once");
    g.eval(MIN, &f.ctx);
    // Condition gone at minute 2: still firing until 2m have passed since then.
    g.eval(2 * MIN, &f.ctx);
    let a = g.rules[0].active.values().next().unwrap();
    assert_eq!((a.state, a.keep_firing_since), (AlertState::Firing, Some(2 * MIN)));
    g.eval(3 * MIN, &f.ctx);
    assert_eq!(g.rules[0].state(), AlertState::Firing);
    g.eval(4 * MIN, &f.ctx);
    assert_eq!(g.rules[0].state(), AlertState::Inactive);
}

#[test]
fn recording_rules_feed_later_rules_and_templates_can_query() {
    let f = fixture();
    for (i, v) in [("a", 10.0), ("b", 30.0)] {
        f.load(&[("__name__", "req"), ("job", "api"), ("instance", i)], &[v, v]);
    }
    let text = r#"
groups:
- name: g
  rules:
  - record: job:req:sum
    expr: sum by (job) (req)
    labels: {team: x}
  - alert: TooMany
    expr: job:req:sum > 35
    annotations:
      summary: "{{ $labels.job }} at {{ $value | humanize }} of {{ with query \"count(req)\" }}{{ . | first | value }}{{ end }} instances"
"#;
    let mut g = group(text);
    let sent = g.eval(MIN, &f.ctx);
    assert_eq!(f.series("job:req:sum")[0].0, "job:req:sum{job=\"api\", team=\"x\"}");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].annotations["summary"], "api at 40 of 2 instances");
    assert_eq!(sent[0].labels.get("team").map(String::as_str), Some("x"));
}

#[test]
fn limits_and_duplicate_label_sets_are_errors() {
    let f = fixture();
    for i in ["a", "b", "c"] {
        f.load(&[("__name__", "up"), ("instance", i)], &[0.0]);
    }
    let mut g = group(
        "groups:\n- name: g\n  limit: 2\n  rules:\n  - alert: A\n    expr: up == 0\n  - record: r\n    expr: up\n",
    );
    g.eval(0, &f.ctx);
    assert_eq!(g.rules[0].status.health, Health::Err);
    assert_eq!(g.rules[0].status.last_error, "exceeded limit of 2 with 3 alerts");
    assert!(g.rules[0].active.is_empty());
    assert_eq!(g.rules[1].status.last_error, "exceeded limit of 2 with 3 series");
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels: {instance: same}\n");
    g.eval(0, &f.ctx);
    assert_eq!(
        g.rules[0].status.last_error,
        "vector contains metrics with the same labelset after applying alert labels"
    );
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n");
    g.rules[0].spec.expr = "sum(".into();
    g.eval(0, &f.ctx);
    assert!(g.rules[0].status.last_error.contains("parse error"), "{}", g.rules[0].status.last_error);
}

#[test]
fn state_survives_reload_and_restart() {
    let f = fixture();
    f.load(&[("__name__", "up"), ("instance", "a")], &[0.0, 0.0, 0.0, 0.0]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules_state.json");
    let rules = Rules::new();
    rules.persist_to(path.clone()).unwrap();
    rules.set_groups(vec![group(DOWN)]);
    rules.eval_all(0, &f.ctx);
    rules.eval_all(MIN, &f.ctx);
    // A reload with the same rule keeps the pending alert and its activeAt.
    rules.set_groups(vec![group(DOWN)]);
    assert_eq!(rules.groups()[0].rules[0].active.values().next().unwrap().active_at, 0);
    rules.save_state().unwrap();
    // A new process: the alert comes back pending since 0, fires at the same time as it
    // would have, and is not forgotten.
    let again = Rules::new();
    again.persist_to(path).unwrap();
    again.set_groups(vec![group(DOWN)]);
    let a = again.groups()[0].rules[0].active.values().next().unwrap().clone();
    assert_eq!((a.state, a.active_at), (AlertState::Pending, 0));
    assert_eq!(again.eval_all(2 * MIN, &f.ctx).len(), 1);
    // A changed expression does not inherit the old alerts.
    let changed = DOWN.replace("up == 0", "up < 1");
    let third = Rules::new();
    third.persist_to(dir.path().join("rules_state.json")).unwrap();
    third.set_groups(vec![group(&changed)]);
    assert!(third.groups()[0].rules[0].active.is_empty());
}

#[test]
fn api_shapes_match_prometheus() {
    let f = fixture();
    f.load(&[("__name__", "up"), ("instance", "a")], &[0.0, 0.0]);
    let rules = Rules::new();
    rules.set_groups(vec![group(DOWN)]);
    rules.eval_all(MIN, &f.ctx);
    let j = rules.rules_json(&Default::default());
    let g = &j["groups"][0];
    assert_eq!(g["name"], "g");
    assert_eq!(g["file"], "t.yml");
    assert_eq!(g["interval"], 60.0);
    let r = &g["rules"][0];
    assert_eq!(r["type"], "alerting");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["query"], "up == 0");
    assert_eq!(r["duration"], 120.0);
    assert_eq!(r["health"], "ok");
    assert_eq!(r["lastEvaluation"], "1970-01-01T00:01:00Z");
    assert_eq!(r["alerts"][0]["activeAt"], "1970-01-01T00:01:00Z");
    assert_eq!(r["alerts"][0]["value"], "0e+00");
    assert!(r.get("lastError").is_none());
    let a = rules.alerts_json();
    assert_eq!(a["alerts"][0]["labels"]["alertname"], "InstanceDown");
    assert_eq!(a["alerts"][0]["state"], "pending");
    let filtered = rules.rules_json(&crate::manager::RulesFilter { kind: Some("record".into()), ..Default::default() });
    assert_eq!(filtered["groups"].as_array().unwrap().len(), 0);
}

const LOG_RULES: &str = r#"
groups:
- name: logs
  type: logql
  rules:
  - alert: ApiErrors
    expr: sum by (app) (count_over_time({app="api"} |= "error" [5m])) > 2
    annotations:
      summary: "{{ $labels.app }} logged {{ $value }} errors in 5m"
  - record: app:log_errors:count5m
    expr: sum by (app) (count_over_time({app=~".+"} |= "error" [5m]))
"#;

#[test]
fn logql_groups_evaluate_over_the_log_store_and_fire_like_promql_groups() {
    use telltale_model::{LogBatch, LogEntry};
    use telltale_storage::{LogWriter, MemLogStore};
    let mut f = fixture();
    let logs = Arc::new(MemLogStore::new());
    let mut b = LogBatch::new();
    let lines = ["GET / 200", "error: db timeout", "error: db timeout", "GET /x 200", "error: pool exhausted"];
    let api = Labels::from_pairs([("app", "api")]).unwrap();
    b.push(api, lines.iter().enumerate().map(|(i, l)| LogEntry::new(i as i64 * 1_000_000_000, *l)));
    b.push(Labels::from_pairs([("app", "web")]).unwrap(), [LogEntry::new(0, "error: upstream")]);
    logs.write_logs(&b).unwrap();
    let mut g = group(LOG_RULES);

    // Without a log store the rules fail with a message that says why.
    g.eval(MIN, &f.ctx);
    assert_eq!(g.rules[0].status.health, Health::Err);
    assert!(
        g.rules[0].status.last_error.contains("LogQL rules need the log store"),
        "{}",
        g.rules[0].status.last_error
    );

    let (reader, engine) = (logs.clone(), telltale_logql::Engine::default());
    f.ctx.log_query = Some(Arc::new(move |q: &str, t| {
        let query = telltale_logql::rule_query(&engine, reader.as_ref());
        Ok(query(q, t)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(labels, value)| VectorSample { labels, value })
            .collect())
    }));
    let sent = g.eval(MIN, &f.ctx);
    assert_eq!(g.rules[0].status.health, Health::Ok, "{}", g.rules[0].status.last_error);
    assert_eq!(sent.len(), 1, "no `for`: fires at once and goes to the pipeline");
    assert_eq!(sent[0].labels.get("alertname").map(String::as_str), Some("ApiErrors"));
    assert_eq!(sent[0].labels.get("app").map(String::as_str), Some("api"));
    assert_eq!(sent[0].annotations["summary"], "api logged 3 errors in 5m");
    // The recording rule writes log counts as metrics, per app.
    let rec = f.series("app:log_errors:count5m");
    let want = [
        ("app:log_errors:count5m{app=\"api\"}".to_string(), vec![(MIN, 3.0)]),
        ("app:log_errors:count5m{app=\"web\"}".to_string(), vec![(MIN, 1.0)]),
    ];
    assert_eq!(rec, want);
}
