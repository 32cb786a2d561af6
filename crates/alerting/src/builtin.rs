//! The built-in rule packs. For the host collectors (`rules/node.yml`, node_exporter metric
//! names): host down, filesystem over 90 % or predicted full within 24 h, memory under
//! 10 %, disk I/O over 90 % for 10 minutes, load over cores for 15 minutes, interface
//! errors, clock skew; on by default. For services that send traces (`rules/traces.yml`, the
//! RED metrics made from spans): error rate, error-budget and latency-budget burn; off by
//! default. Each rule can be turned off.

use serde::{Deserialize, Serialize};

use crate::rulefile::{self, GroupSpec};

/// The file name the pack's groups carry in the APIs.
pub const FILE: &str = "builtin:node.yml";

const TEXT: &str = include_str!("../rules/node.yml");

/// The file name the trace pack's groups carry in the APIs.
pub const TRACES_FILE: &str = "builtin:traces.yml";

const TRACES_TEXT: &str = include_str!("../rules/traces.yml");

/// `rules.traces:`: the RED-metrics rule pack.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesPackOptions {
    /// Load the pack (off by default: it alerts on services, which not every server has).
    pub enabled: bool,
    /// Names of its alerts to leave out (`ServiceHighErrorRate`, ...).
    pub disabled: Vec<String>,
}

/// `rules.builtin:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinOptions {
    /// Load the built-in rules at all.
    pub enabled: bool,
    /// Names of built-in alerts to leave out (`HostHighLoad`, ...).
    pub disabled: Vec<String>,
    /// The `job` label of the host collectors' series.
    pub job: String,
}

impl Default for BuiltinOptions {
    fn default() -> Self {
        Self { enabled: true, disabled: Vec::new(), job: "node".into() }
    }
}

/// Names of every built-in alert.
pub fn names() -> Vec<String> {
    names_of(&all())
}

fn names_of(groups: &[GroupSpec]) -> Vec<String> {
    groups.iter().flat_map(|g| g.rules.iter().map(|r| r.name().to_string())).collect()
}

fn all() -> Vec<GroupSpec> {
    rulefile::parse(TEXT, FILE).map(|f| f.groups).unwrap_or_default()
}

fn all_traces() -> Vec<GroupSpec> {
    rulefile::parse(TRACES_TEXT, TRACES_FILE).map(|f| f.groups).unwrap_or_default()
}

fn check_disabled(disabled: &[String], known: &[String]) -> Result<(), String> {
    for d in disabled {
        if !known.contains(d) {
            return Err(format!("unknown built-in rule {d:?}; the built-in rules are {}", known.join(", ")));
        }
    }
    Ok(())
}

/// Checks the options: every disabled name must be a built-in alert.
pub fn validate(opts: &BuiltinOptions) -> Result<(), String> {
    check_disabled(&opts.disabled, &names())
}

/// Checks the trace pack's options: every disabled name must be one of its alerts.
pub fn validate_traces(opts: &TracesPackOptions) -> Result<(), String> {
    check_disabled(&opts.disabled, &names_of(&all_traces()))
}

/// The trace pack's groups in force under `opts`.
pub fn trace_groups(opts: &TracesPackOptions) -> Vec<GroupSpec> {
    if !opts.enabled {
        return Vec::new();
    }
    let mut groups = all_traces();
    for g in &mut groups {
        g.rules.retain(|r| !opts.disabled.iter().any(|d| d == r.name()));
    }
    groups.retain(|g| !g.rules.is_empty());
    groups
}

/// The groups in force under `opts`.
pub fn groups(opts: &BuiltinOptions) -> Vec<GroupSpec> {
    if !opts.enabled {
        return Vec::new();
    }
    let job = format!("job={:?}", opts.job);
    let mut groups = all();
    for g in &mut groups {
        g.rules.retain(|r| !opts.disabled.iter().any(|d| d == r.name()));
        for r in &mut g.rules {
            r.expr = r.expr.replace("job=\"node\"", &job);
        }
    }
    groups.retain(|g| !g.rules.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pack_is_valid_and_rules_can_be_turned_off() {
        let errs = rulefile::parse(TEXT, FILE).err();
        assert!(errs.is_none(), "{errs:?}");
        let n = names();
        assert_eq!(n.len(), 9, "{n:?}");
        let opts = BuiltinOptions { disabled: vec!["HostHighLoad".into()], job: "host".into(), ..Default::default() };
        let g = groups(&opts);
        assert_eq!(g[0].rules.len(), 8);
        assert!(g[0].rules.iter().all(|r| r.name() != "HostHighLoad"));
        assert!(g[0].rules[0].expr.contains("job=\"host\""));
        assert!(groups(&BuiltinOptions { enabled: false, ..Default::default() }).is_empty());
        assert!(validate(&BuiltinOptions { disabled: vec!["Nope".into()], ..Default::default() })
            .unwrap_err()
            .contains("unknown built-in rule \"Nope\""));
    }

    #[test]
    fn the_trace_pack_is_valid_off_by_default_and_rules_can_be_turned_off() {
        let errs = rulefile::parse(TRACES_TEXT, TRACES_FILE).err();
        assert!(errs.is_none(), "{errs:?}");
        assert!(trace_groups(&TracesPackOptions::default()).is_empty());
        let on = TracesPackOptions { enabled: true, disabled: vec!["ServiceHighErrorRate".into()] };
        let names = names_of(&trace_groups(&on));
        assert_eq!(names, ["ServiceErrorBudgetBurn", "ServiceLatencyBudgetBurn"]);
        assert!(validate_traces(&TracesPackOptions { enabled: true, disabled: vec!["HostDown".into()] }).is_err());
    }
}
