//! Rule groups and the alert state machine, with Prometheus's semantics
//! (`rules/alerting.go`, `rules/group.go`): pending until `for` has passed, firing,
//! `keep_firing_for`, resolved alerts kept and re-sent for 15 minutes, `ALERTS` and
//! `ALERTS_FOR_STATE` series, stale markers when a series disappears, per-rule `limit`.
//!
//! Evaluation is a plain function of the time it is given ([`Group::eval`]); the loop
//! that calls it on a timer lives in [`crate::Rules`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use telltale_model::{Labels, LabelsBuilder, Sample, Timestamp, WriteBatch, STALE_NAN_BITS};
use telltale_template::{Env, QuerySample, Value};

use crate::rulefile::{GroupSpec, RuleSpec};
use crate::{Alert, LabelSet};

/// How long a resolved alert is still reported (and re-sent), as Prometheus's `resolvedRetention`.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// One element of a query's result: a series' labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// The labels (usually without `__name__` after an operator).
    pub labels: Labels,
    /// The value.
    pub value: f64,
}

/// The seam to the query engine: evaluates an expression at an instant, as Prometheus's
/// `rules.QueryFunc`. A scalar result is a one-element vector with no labels.
pub type QueryFn = Arc<dyn Fn(&str, Timestamp) -> Result<Vec<VectorSample>, String> + Send + Sync>;

/// Stores what rules produce (recorded series, `ALERTS`, stale markers).
pub type WriteFn = Arc<dyn Fn(&WriteBatch) -> Result<(), String> + Send + Sync>;

/// The language of a group's expressions: PromQL, or LogQL for groups with `type: logql`
/// (log-based rules, as Loki's ruler evaluates them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueryLang {
    /// Over metrics.
    #[default]
    PromQL,
    /// Over logs: LogQL metric expressions such as `sum(rate({app="api"} |= "error" [5m]))`.
    LogQL,
}

/// What evaluation needs from outside.
#[derive(Clone)]
pub struct EvalContext {
    /// Runs PromQL queries.
    pub query: QueryFn,
    /// Runs LogQL metric queries, for groups with `type: logql`; `None` where no log store
    /// is open (their rules then fail with a message saying so).
    pub log_query: Option<QueryFn>,
    /// Writes rule output; called after each rule so later rules see earlier results.
    pub write: WriteFn,
    /// Telltale's external URL, for `$externalURL` and alerts' generator links.
    pub external_url: String,
    /// How often a firing alert is re-sent (Prometheus's `--rules.alert.resend-delay`, 1m).
    pub resend_delay: Duration,
}

impl EvalContext {
    fn query_for(&self, lang: QueryLang) -> Result<&QueryFn, String> {
        match lang {
            QueryLang::PromQL => Ok(&self.query),
            QueryLang::LogQL => {
                self.log_query.as_ref().ok_or_else(|| "LogQL rules need the log store, which is not open here".into())
            }
        }
    }
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Not active (resolved, kept for a while to report the resolution).
    Inactive,
    /// Active, waiting for `for` to pass.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// `inactive`, `pending`, `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleAlert {
    /// Its labels: the series' labels, the rule's labels and `alertname`.
    pub labels: LabelSet,
    /// The expanded annotations.
    pub annotations: LabelSet,
    /// Its state.
    pub state: AlertState,
    /// The value of the series at the last evaluation.
    pub value: f64,
    /// When the condition started holding (ms).
    pub active_at: Timestamp,
    /// When it started firing (ms).
    pub fired_at: Option<Timestamp>,
    /// When it stopped (ms).
    pub resolved_at: Option<Timestamp>,
    /// When it was last handed to the notification pipeline (ms).
    pub last_sent_at: Option<Timestamp>,
    /// Until when the last send is valid (ms): Alertmanager resolves it after that.
    pub valid_until: Timestamp,
    /// Since when it has been kept firing by `keep_firing_for` (ms).
    pub keep_firing_since: Option<Timestamp>,
}

impl RuleAlert {
    fn needs_sending(&self, at: Timestamp, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        last.saturating_add(resend_delay_ms) < at
    }
}

/// How a rule's last evaluation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Evaluated without error.
    Ok,
    /// The last evaluation failed.
    Err,
}

impl Health {
    /// `unknown`, `ok`, `err` (Prometheus's words).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// What both rule kinds record about their last evaluation.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    /// Health of the last evaluation.
    pub health: Health,
    /// Its error, if any.
    pub last_error: String,
    /// When it ran (ms), if ever.
    pub last_evaluation: Option<Timestamp>,
    /// How long it took.
    pub evaluation_time: Duration,
}

impl Default for RuleStatus {
    fn default() -> Self {
        Self {
            health: Health::Unknown,
            last_error: String::new(),
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
        }
    }
}

/// An alerting or recording rule with its state.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as written (group labels merged into its labels).
    pub spec: RuleSpec,
    /// Last evaluation's outcome.
    pub status: RuleStatus,
    /// Alerts by label set (alerting rules only).
    pub active: BTreeMap<LabelSet, RuleAlert>,
    /// Series written by the last evaluation, to mark stale when they disappear.
    prev_series: HashSet<Labels>,
}

impl Rule {
    /// Whether this is an alerting rule.
    pub fn is_alerting(&self) -> bool {
        self.spec.alert.is_some()
    }

    /// The rule's state: firing if any alert fires, else pending if any is pending.
    pub fn state(&self) -> AlertState {
        let mut s = AlertState::Inactive;
        for a in self.active.values() {
            match a.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => s = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        s
    }

    /// Identity for carrying state across reloads: kind, name, expression and labels.
    fn key(&self) -> (bool, String, String, BTreeMap<String, String>) {
        (self.is_alerting(), self.spec.name().to_string(), self.spec.expr.clone(), self.spec.labels.clone())
    }
}

/// A group of rules evaluated together, in order, every `interval`.
#[derive(Debug, Clone)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// File it came from (`builtin` for the built-in pack).
    pub file: String,
    /// Evaluation interval.
    pub interval: Duration,
    /// Evaluation looks this far back.
    pub query_offset: Duration,
    /// Per-rule limit on alerts or series (0: none).
    pub limit: usize,
    /// The language of the rules' expressions.
    pub lang: QueryLang,
    /// The rules.
    pub rules: Vec<Rule>,
    /// When the group last ran (ms).
    pub last_evaluation: Option<Timestamp>,
    /// How long the last round took.
    pub evaluation_time: Duration,
    /// Rule evaluations so far.
    pub evaluations: u64,
    /// Rule evaluations that failed so far.
    pub failures: u64,
}

/// A group's persisted alert state: rule key to its alerts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupState {
    /// Per rule (by name and position), its alerts.
    pub rules: Vec<RuleState>,
}

/// One rule's persisted alerts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleState {
    /// The rule's name.
    pub name: String,
    /// Its expression, so a changed rule does not inherit stale alerts.
    pub expr: String,
    /// Its alerts.
    pub alerts: Vec<RuleAlert>,
}

impl Group {
    /// A group from its spec; `default_interval` applies when the group has none.
    pub fn new(spec: &GroupSpec, file: &str, default_interval: Duration) -> Group {
        let rules = spec
            .rules
            .iter()
            .map(|r| {
                let mut r = r.clone();
                for (k, v) in &spec.labels {
                    r.labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Rule { spec: r, status: RuleStatus::default(), active: BTreeMap::new(), prev_series: HashSet::new() }
            })
            .collect();
        Group {
            name: spec.name.clone(),
            file: file.to_string(),
            interval: spec.interval.unwrap_or(default_interval),
            query_offset: spec.query_offset.unwrap_or_default(),
            limit: spec.limit,
            lang: if spec.is_logql() { QueryLang::LogQL } else { QueryLang::PromQL },
            rules,
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
            evaluations: 0,
            failures: 0,
        }
    }

    /// Takes over the state of rules that are the same in `old` (on reload).
    pub fn copy_state(&mut self, old: &Group) {
        self.last_evaluation = old.last_evaluation;
        self.evaluation_time = old.evaluation_time;
        self.evaluations = old.evaluations;
        self.failures = old.failures;
        let mut olds: Vec<&Rule> = old.rules.iter().collect();
        for r in &mut self.rules {
            if let Some(i) = olds.iter().position(|o| o.key() == r.key()) {
                let o = olds.remove(i);
                r.active = o.active.clone();
                r.status = o.status.clone();
                r.prev_series = o.prev_series.clone();
            }
        }
    }

    /// The alert state worth keeping across a restart.
    pub fn state(&self) -> GroupState {
        GroupState {
            rules: self
                .rules
                .iter()
                .filter(|r| !r.active.is_empty())
                .map(|r| RuleState {
                    name: r.spec.name().to_string(),
                    expr: r.spec.expr.clone(),
                    alerts: r.active.values().cloned().collect(),
                })
                .collect(),
        }
    }

    /// Restores alerts saved by [`Group::state`] into rules with the same name and expression.
    pub fn restore(&mut self, state: &GroupState) {
        for saved in &state.rules {
            if let Some(r) = self
                .rules
                .iter_mut()
                .find(|r| r.is_alerting() && r.spec.name() == saved.name && r.spec.expr == saved.expr)
            {
                for a in &saved.alerts {
                    // A new process's pipeline knows nothing yet: send at the first evaluation
                    // (its notification log keeps receivers from being paged again).
                    let mut a = a.clone();
                    a.last_sent_at = None;
                    r.active.insert(a.labels.clone(), a);
                }
            }
        }
    }

    /// Evaluates every rule at `at` (ms), writes their output through `ctx.write`, and
    /// returns the alerts to hand to the notification pipeline.
    pub fn eval(&mut self, at: Timestamp, ctx: &EvalContext) -> Vec<Alert> {
        let start = Instant::now();
        let ts = at - self.query_offset.as_millis() as i64;
        let mut to_send = Vec::new();
        let limit = self.limit;
        let interval = self.interval;
        let lang = self.lang;
        for rule in &mut self.rules {
            let t0 = Instant::now();
            let result = if rule.is_alerting() {
                eval_alerting(rule, at, ts, limit, lang, ctx)
            } else {
                eval_recording(rule, ts, limit, lang, ctx)
            };
            let mut batch = WriteBatch::new();
            let written: HashSet<Labels> = match result {
                Ok(series) => {
                    rule.status.health = Health::Ok;
                    rule.status.last_error.clear();
                    let mut seen = HashSet::new();
                    for (l, v) in series {
                        batch.push_sample(l.clone(), Sample::new(ts, v));
                        seen.insert(l);
                    }
                    seen
                }
                Err(e) => {
                    tracing::debug!(group = %self.name, rule = %rule.spec.name(), error = %e, "rule evaluation failed");
                    rule.status.health = Health::Err;
                    rule.status.last_error = e;
                    HashSet::new()
                }
            };
            // Series that were written last time but not now get a staleness marker.
            for gone in rule.prev_series.difference(&written) {
                batch.push_sample(gone.clone(), Sample::new(ts, f64::from_bits(STALE_NAN_BITS)));
            }
            rule.prev_series = written;
            if !batch.is_empty() {
                if let Err(e) = (ctx.write)(&batch) {
                    tracing::warn!(group = %self.name, rule = %rule.spec.name(), error = %e, "cannot store rule output");
                    if rule.status.health == Health::Ok {
                        rule.status.health = Health::Err;
                        rule.status.last_error = format!("cannot store rule output: {e}");
                    }
                }
            }
            if rule.is_alerting() {
                to_send.extend(alerts_to_send(rule, at, interval, ctx));
            }
            rule.status.last_evaluation = Some(at);
            rule.status.evaluation_time = t0.elapsed();
            self.evaluations += 1;
            if rule.status.health == Health::Err {
                self.failures += 1;
            }
        }
        self.last_evaluation = Some(at);
        self.evaluation_time = start.elapsed();
        to_send
    }
}

fn labels_of(set: &LabelSet) -> Labels {
    let mut b = LabelsBuilder::new();
    for (k, v) in set {
        b.push(k, v);
    }
    b.build().unwrap_or_default()
}

fn set_of(l: &Labels) -> LabelSet {
    l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn eval_recording(
    rule: &mut Rule,
    ts: Timestamp,
    limit: usize,
    lang: QueryLang,
    ctx: &EvalContext,
) -> Result<Vec<(Labels, f64)>, String> {
    let vector = ctx.query_for(lang)?(&rule.spec.expr, ts)?;
    let name = rule.spec.record.clone().unwrap_or_default();
    let mut out = Vec::with_capacity(vector.len());
    let mut seen = HashSet::new();
    for s in vector {
        let mut b = s.labels.to_builder();
        b.set("__name__", &name);
        for (k, v) in &rule.spec.labels {
            b.set(k, v);
        }
        let l = b.build().map_err(|e| e.to_string())?;
        if !seen.insert(l.clone()) {
            return Err("vector contains metrics with the same labelset after applying rule labels".into());
        }
        out.push((l, s.value));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!("exceeded limit of {limit} with {} series", out.len()));
    }
    Ok(out)
}

/// The prelude Prometheus puts before every alert label and annotation template.
const PRELUDE: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

fn expand(name: &str, text: &str, data: &Value, env: &Env) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    match telltale_template::render(name, &format!("{PRELUDE}{text}"), data, env) {
        Ok(s) => s,
        // Prometheus puts the error text in place of the value and logs it.
        Err(e) => {
            tracing::warn!(template = name, error = %e, "expanding alert template failed");
            format!("<error expanding template: {e}>")
        }
    }
}

fn eval_alerting(
    rule: &mut Rule,
    at: Timestamp,
    ts: Timestamp,
    limit: usize,
    lang: QueryLang,
    ctx: &EvalContext,
) -> Result<Vec<(Labels, f64)>, String> {
    let vector = ctx.query_for(lang)?(&rule.spec.expr, ts)?;
    let name = rule.spec.alert.clone().unwrap_or_default();
    let q = ctx.query.clone();
    let template_query: telltale_template::QueryFn = Arc::new(move |expr: &str| {
        let v = q(expr, ts)?;
        Ok(v.into_iter()
            .map(|s| QuerySample {
                labels: s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                value: s.value,
            })
            .collect())
    });
    let env = Env { query: Some(template_query), external_url: ctx.external_url.clone(), html: false };
    let tmpl_name = format!("__alert_{name}");
    let mut current: BTreeMap<LabelSet, RuleAlert> = BTreeMap::new();
    for s in vector {
        let series = set_of(&s.labels);
        let data = Value::map([
            ("Labels", Value::string_map(series.clone())),
            ("ExternalLabels", Value::Map(BTreeMap::new())),
            ("ExternalURL", Value::str(ctx.external_url.clone())),
            ("Value", Value::Float(s.value)),
        ]);
        let mut labels = series;
        labels.remove("__name__");
        for (k, v) in &rule.spec.labels {
            let x = expand(&tmpl_name, v, &data, &env);
            if x.is_empty() {
                labels.remove(k);
            } else {
                labels.insert(k.clone(), x);
            }
        }
        labels.insert("alertname".into(), name.clone());
        let annotations: LabelSet =
            rule.spec.annotations.iter().map(|(k, v)| (k.clone(), expand(&tmpl_name, v, &data, &env))).collect();
        if current.contains_key(&labels) {
            return Err("vector contains metrics with the same labelset after applying alert labels".into());
        }
        current.insert(
            labels.clone(),
            RuleAlert {
                labels,
                annotations,
                state: AlertState::Pending,
                value: s.value,
                active_at: at,
                fired_at: None,
                resolved_at: None,
                last_sent_at: None,
                valid_until: 0,
                keep_firing_since: None,
            },
        );
    }
    for (k, a) in &current {
        match rule.active.get_mut(k) {
            Some(old) if old.state != AlertState::Inactive => {
                old.value = a.value;
                old.annotations = a.annotations.clone();
            }
            _ => {
                rule.active.insert(k.clone(), a.clone());
            }
        }
    }
    let hold = rule.spec.for_.unwrap_or_default().as_millis() as i64;
    let keep_for = rule.spec.keep_firing_for.unwrap_or_default().as_millis() as i64;
    let mut out = Vec::new();
    let mut remove = Vec::new();
    let mut active_count = 0;
    for (k, a) in rule.active.iter_mut() {
        if !current.contains_key(k) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && keep_for > 0 {
                let since = *a.keep_firing_since.get_or_insert(at);
                keep_firing = at - since < keep_for;
            }
            if a.state == AlertState::Pending || a.resolved_at.is_some_and(|r| at - r > RESOLVED_RETENTION_MS) {
                remove.push(k.clone());
            }
            if a.state != AlertState::Inactive && !keep_firing {
                a.state = AlertState::Inactive;
                a.resolved_at = Some(at);
            }
            if !keep_firing {
                continue;
            }
        } else {
            a.keep_firing_since = None;
        }
        active_count += 1;
        if a.state == AlertState::Pending && at - a.active_at >= hold {
            a.state = AlertState::Firing;
            a.fired_at = Some(at);
        }
        let mut alerts_labels = a.labels.clone();
        alerts_labels.insert("__name__".into(), "ALERTS".into());
        alerts_labels.insert("alertstate".into(), a.state.as_str().into());
        out.push((labels_of(&alerts_labels), 1.0));
        let mut for_state = a.labels.clone();
        for_state.insert("__name__".into(), "ALERTS_FOR_STATE".into());
        out.push((labels_of(&for_state), (a.active_at / 1000) as f64));
    }
    for k in remove {
        rule.active.remove(&k);
    }
    if limit > 0 && active_count > limit {
        rule.active.clear();
        return Err(format!("exceeded limit of {limit} with {active_count} alerts"));
    }
    Ok(out)
}

/// Prometheus's `sendAlerts`: firing alerts every `resend_delay`, resolved ones when they
/// resolve (and again while retained), each valid for 4 × max(resend delay, interval).
fn alerts_to_send(rule: &mut Rule, at: Timestamp, interval: Duration, ctx: &EvalContext) -> Vec<Alert> {
    let resend = ctx.resend_delay.as_millis() as i64;
    let delta = resend.max(interval.as_millis() as i64);
    let generator_url = format!("{}{}", ctx.external_url.trim_end_matches('/'), crate::explore_link(&rule.spec.expr));
    let mut out = Vec::new();
    for a in rule.active.values_mut() {
        if !a.needs_sending(at, resend) {
            continue;
        }
        a.last_sent_at = Some(at);
        a.valid_until = at + 4 * delta;
        out.push(Alert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.fired_at.unwrap_or(a.active_at),
            ends_at: Some(a.resolved_at.unwrap_or(a.valid_until)),
            generator_url: generator_url.clone(),
            value: Some(a.value),
        });
    }
    out
}
