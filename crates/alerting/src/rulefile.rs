//! Prometheus rule files: the YAML schema (`groups:` of alerting and recording rules) and
//! the checks `promtool check rules` makes, with its messages.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One rule file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rule groups.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

/// A rule group as written in the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Unique within the file.
    pub name: String,
    /// How often the group is evaluated (`30s`); the global default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub interval: Option<Duration>,
    /// Evaluate this much in the past, so late samples are in (Prometheus's `query_offset`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub query_offset: Option<Duration>,
    /// At most this many alerts per alerting rule or series per recording rule (0: no limit).
    #[serde(default)]
    pub limit: usize,
    /// Labels added to every rule of the group (Prometheus 3); a rule's own labels win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Which query language the rules' `expr` is in: `promql` (default), or `logql` for
    /// log-based rules (LogQL metric expressions, as in Loki's ruler).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    /// The rules, evaluated in order (a recording rule's output is visible to later rules).
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

impl GroupSpec {
    /// Whether the rules' expressions are LogQL (`type: logql`).
    pub fn is_logql(&self) -> bool {
        self.kind.as_deref() == Some("logql")
    }
}

/// One alerting (`alert:`) or recording (`record:`) rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Name of the series a recording rule writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Name of the alert (its `alertname` label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// The PromQL expression.
    #[serde(default)]
    pub expr: String,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub for_: Option<Duration>,
    /// How long a firing alert keeps firing after the condition stopped holding.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub keep_firing_for: Option<Duration>,
    /// Labels added to the alert or the recorded series (templated for alerts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Templated annotations of the alert.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Prometheus durations (`5m`, `1h30m`) as optional fields.
mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&telltale_model::units::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| telltale_model::units::parse_duration(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

impl RuleSpec {
    /// The rule's name: the alert name or the recorded metric.
    pub fn name(&self) -> &str {
        self.alert.as_deref().or(self.record.as_deref()).unwrap_or("")
    }
}

fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a rule file's text and checks every rule as `promtool check rules` does; every
/// problem found is returned, each naming the group and rule.
pub fn parse(text: &str, origin: &str) -> Result<RuleFile, Vec<String>> {
    let blank = text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Ok(RuleFile::default());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let file: RuleFile = serde_path_to_error::deserialize(de).map_err(|e| {
        // The YAML library's message already starts with the path of the offending key.
        vec![format!("{origin}: {}", e.into_inner())]
    })?;
    let errs = validate(&file);
    if errs.is_empty() {
        Ok(file)
    } else {
        Err(errs.into_iter().map(|e| format!("{origin}: {e}")).collect())
    }
}

/// Reads and parses a rule file.
pub fn load(path: &Path) -> Result<RuleFile, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        op: "read rule file",
        path: path.into(),
        source,
    })?;
    parse(&text, &path.display().to_string()).map_err(|errors| Error::BadRules { errors })
}

/// Every problem in `file`, as Prometheus's `RuleGroups.Validate` words them.
pub fn validate(file: &RuleFile) -> Vec<String> {
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for g in &file.groups {
        if g.name.is_empty() {
            errs.push("groupname must not be empty".to_string());
        }
        if !seen.insert(g.name.as_str()) {
            errs.push(format!("groupname: {:?} is repeated in the same file", g.name));
        }
        if let Some(kind) = &g.kind {
            if kind != "promql" && kind != "logql" {
                errs.push(format!("group {:?}: unsupported rule type {kind:?} (\"promql\" or \"logql\")", g.name));
            }
        }
        if g.interval.is_some_and(|d| d.is_zero()) {
            errs.push(format!("group {:?}: interval must be greater than zero", g.name));
        }
        for (i, r) in g.rules.iter().enumerate() {
            for e in validate_rule(r, g.is_logql()) {
                errs.push(format!("group {:?}, rule {}, {:?}: {e}", g.name, i + 1, r.name()));
            }
        }
    }
    errs
}

fn validate_rule(r: &RuleSpec, logql: bool) -> Vec<String> {
    let mut errs = Vec::new();
    match (&r.record, &r.alert) {
        (Some(_), Some(_)) => errs.push("only one of 'record' and 'alert' must be set".to_string()),
        (None, None) => errs.push("one of 'record' or 'alert' must be set".to_string()),
        _ => {}
    }
    if r.expr.trim().is_empty() {
        errs.push("field 'expr' must be set in rule".to_string());
    } else if logql {
        match telltale_logql::parse(&r.expr) {
            Ok(telltale_logql::ast::Expr::Log(_)) => {
                errs.push("a LogQL rule needs a metric query (e.g. count_over_time(...[5m])), not a log query".into())
            }
            Ok(_) => {}
            Err(e) => errs.push(format!("could not parse LogQL expression: {}", e.to_string().replace('\n', " "))),
        }
    } else if let Err(e) = promql_parser::parser::parse(&r.expr) {
        errs.push(format!("could not parse expression: {}", e.replace('\n', " ")));
    }
    if let Some(rec) = &r.record {
        if !r.annotations.is_empty() {
            errs.push("invalid field 'annotations' in recording rule".to_string());
        }
        if r.for_.is_some() {
            errs.push("invalid field 'for' in recording rule".to_string());
        }
        if r.keep_firing_for.is_some() {
            errs.push("invalid field 'keep_firing_for' in recording rule".to_string());
        }
        if !valid_metric_name(rec) {
            errs.push(format!("invalid recording rule name: {rec}"));
        }
    }
    if let Some(a) = &r.alert {
        if a.is_empty() {
            errs.push("invalid alert name: empty".to_string());
        }
    }
    for (k, v) in &r.labels {
        if !valid_label_name(k) {
            errs.push(format!("invalid label name: {k}"));
        }
        if k == "__name__" {
            errs.push("invalid label name: __name__".to_string());
        }
        if r.alert.is_some() {
            if let Err(e) = telltale_template::check(&format!("__alert_{}", r.name()), v) {
                errs.push(format!("label {k:?}: {e}"));
            }
        }
    }
    for (k, v) in &r.annotations {
        if !valid_label_name(k) {
            errs.push(format!("invalid annotation name: {k}"));
        }
        if let Err(e) = telltale_template::check(&format!("__alert_{}", r.name()), v) {
            errs.push(format!("annotation {k:?}: {e}"));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_prometheus_docs_example() {
        // From Prometheus's docs/configuration/alerting_rules.md and recording_rules.md.
        let text = r#"
groups:
- name: example
  labels:
    team: myteam
  rules:
  - alert: HighRequestLatency
    expr: job:request_latency_seconds:mean5m{job="myjob"} > 0.5
    for: 10m
    keep_firing_for: 5m
    labels:
      severity: page
    annotations:
      summary: High request latency
  - record: code:prometheus_http_requests_total:sum
    expr: sum by (code) (prometheus_http_requests_total)
- name: other
  interval: 30s
  limit: 10
  query_offset: 1m
  rules: []
"#;
        let f = parse(text, "r.yml").unwrap();
        assert_eq!(f.groups.len(), 2);
        let a = &f.groups[0].rules[0];
        assert_eq!(
            (a.name(), a.for_, a.keep_firing_for),
            ("HighRequestLatency", Some(Duration::from_secs(600)), Some(Duration::from_secs(300)))
        );
        assert_eq!(f.groups[1].interval, Some(Duration::from_secs(30)));
        assert_eq!(f.groups[1].query_offset, Some(Duration::from_secs(60)));
    }

    #[test]
    fn finds_every_problem_with_promtool_words() {
        let text = r#"
groups:
- name: g
  rules:
  - alert: A
    record: b
    expr: up
  - expr: up
  - record: "bad name"
    expr: sum(
    annotations: {x: y}
  - alert: T
    expr: up
    annotations:
      summary: "{{ .Labels.x "
- name: g
  rules: []
"#;
        let errs = parse(text, "r.yml").unwrap_err();
        let want = [
            "r.yml: groupname: \"g\" is repeated in the same file",
            "r.yml: group \"g\", rule 1, \"A\": only one of 'record' and 'alert' must be set",
            "r.yml: group \"g\", rule 2, \"\": one of 'record' or 'alert' must be set",
            "r.yml: group \"g\", rule 3, \"bad name\": could not parse expression:",
            "r.yml: group \"g\", rule 3, \"bad name\": invalid field 'annotations' in recording rule",
            "r.yml: group \"g\", rule 3, \"bad name\": invalid recording rule name: bad name",
            "r.yml: group \"g\", rule 4, \"T\": annotation \"summary\": template: __alert_T:1: unclosed action",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "missing {w:?} in {errs:#?}");
        }
        let errs = parse("groups:\n- name: x\n  rulez: []\n", "r.yml").unwrap_err();
        assert!(errs[0].starts_with("r.yml: groups[0]: unknown field `rulez`"), "{errs:?}");
    }

    #[test]
    fn logql_groups_hold_log_metric_queries() {
        let ok = "groups:\n- name: logs\n  type: logql\n  rules:\n  - alert: Errors\n    expr: sum by (app) (count_over_time({app=\"api\"} |= \"error\" [5m])) > 10\n  - record: app:errors:rate5m\n    expr: sum(rate({app=\"api\"} |= \"error\" [5m]))\n";
        let f = parse(ok, "r.yml").unwrap();
        assert_eq!(f.groups[0].kind.as_deref(), Some("logql"));
        let bad = "groups:\n- name: logs\n  type: logql\n  rules:\n  - alert: Lines\n    expr: '{app=\"api\"} |= \"error\"'\n  - alert: Broken\n    expr: count_over_time({app=\"api\"}\n- name: other\n  type: sql\n  rules: []\n- name: prom\n  rules:\n  - alert: NotPromQL\n    expr: 'count_over_time({app=\"api\"} |= \"x\" [5m])'\n";
        let errs = parse(bad, "r.yml").unwrap_err();
        let want = [
            "r.yml: group \"logs\", rule 1, \"Lines\": a LogQL rule needs a metric query",
            "r.yml: group \"logs\", rule 2, \"Broken\": could not parse LogQL expression",
            "r.yml: group \"other\": unsupported rule type \"sql\" (\"promql\" or \"logql\")",
            "r.yml: group \"prom\", rule 1, \"NotPromQL\": could not parse expression",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "missing {w:?} in {errs:#?}");
        }
    }
}
