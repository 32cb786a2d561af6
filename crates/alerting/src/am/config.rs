//! The Alertmanager configuration under `alerting:` (the schema of `alertmanager.yml`):
//! `global`, `route`, `receivers`, `inhibit_rules`, `templates`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use telltale_model::Matcher;
use telltale_notify::{GlobalConfig, ReceiverConfig};

use super::matchers;

/// `alerting:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Defaults shared by receivers.
    pub global: GlobalConfig,
    /// The routing tree; its root matches every alert.
    pub route: Route,
    /// Where notifications go.
    pub receivers: Vec<ReceiverConfig>,
    /// Mute alerts while others fire.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Template files (globs) for notification texts.
    pub templates: Vec<String>,
    /// Named time intervals for routes' `mute_time_intervals`/`active_time_intervals`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub time_intervals: Vec<super::timeinterval::NamedTimeInterval>,
    /// The older name of `time_intervals`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<super::timeinterval::NamedTimeInterval>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            global: GlobalConfig::default(),
            route: Route { receiver: Some("default".into()), ..Default::default() },
            receivers: vec![ReceiverConfig { name: "default".into(), ..Default::default() }],
            inhibit_rules: Vec::new(),
            templates: Vec::new(),
            time_intervals: Vec::new(),
            mute_time_intervals: Vec::new(),
        }
    }
}

/// A node of the routing tree.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// Receiver of alerts that stop here (inherited when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// Labels alerts are grouped by; `...` groups by every label (inherited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// Keep matching later siblings after this route matched.
    #[serde(rename = "continue")]
    pub continue_: bool,
    /// Matchers in Alertmanager's syntax (`severity=~"page|critical"`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    /// Deprecated equality matchers.
    #[serde(rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub match_: BTreeMap<String, String>,
    /// Deprecated regex matchers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_re: BTreeMap<String, String>,
    /// Wait before the first notification of a new group (inherited; 30s at the root).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_dur")]
    pub group_wait: Option<Duration>,
    /// Wait between notifications about changes in a group (inherited; 5m).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_dur")]
    pub group_interval: Option<Duration>,
    /// Re-send an unchanged, still-firing group after this long (inherited; 4h).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_dur")]
    pub repeat_interval: Option<Duration>,
    /// Names of time intervals during which this route sends nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which this route sends nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<String>,
    /// Child routes, tried in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

mod opt_dur {
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

/// `inhibit_rules:` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InhibitRule {
    /// Alerts that mute (firing ones only).
    pub source_matchers: Vec<String>,
    /// Alerts that get muted.
    pub target_matchers: Vec<String>,
    /// Labels that must be equal in source and target.
    pub equal: Vec<String>,
    /// Deprecated forms of the matchers.
    pub source_match: BTreeMap<String, String>,
    /// Deprecated.
    pub source_match_re: BTreeMap<String, String>,
    /// Deprecated.
    pub target_match: BTreeMap<String, String>,
    /// Deprecated.
    pub target_match_re: BTreeMap<String, String>,
}

/// A route with everything inherited resolved and its matchers compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRoute {
    pub(crate) key: String,
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) receiver: String,
    pub(crate) group_by: Option<Vec<String>>,
    pub(crate) group_all: bool,
    pub(crate) continue_: bool,
    pub(crate) group_wait: Duration,
    pub(crate) group_interval: Duration,
    pub(crate) repeat_interval: Duration,
    pub(crate) mute: Vec<String>,
    pub(crate) active: Vec<String>,
    pub(crate) children: Vec<CompiledRoute>,
}

fn compile_matchers(
    list: &[String],
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for m in list {
        out.extend(matchers::parse(m)?);
    }
    for (k, v) in eq {
        out.push(Matcher::equal(k, v));
    }
    for (k, v) in re {
        out.push(Matcher::new(telltale_model::MatchOp::Regex, k, v).map_err(|e| format!("match_re {k}: {e}"))?);
    }
    Ok(out)
}

impl CompiledRoute {
    fn build(
        r: &Route,
        parent: Option<&CompiledRoute>,
        key_prefix: &str,
        index: usize,
    ) -> Result<CompiledRoute, String> {
        let matchers = compile_matchers(&r.matchers, &r.match_, &r.match_re)?;
        let shown: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
        let key = match parent {
            None => "{}".to_string(),
            Some(_) => format!("{key_prefix}/{{{}}}", shown.join(",")),
        };
        // Children under the same parent with the same matchers need distinct keys.
        let key = if parent.is_some() && index > 0 { format!("{key}/{index}") } else { key };
        let group_by = r.group_by.clone().or_else(|| parent.and_then(|p| p.group_by.clone()));
        let mut out = CompiledRoute {
            receiver: r
                .receiver
                .clone()
                .or_else(|| parent.map(|p| p.receiver.clone()))
                .ok_or("root route must specify a default receiver")?,
            group_all: group_by.as_ref().is_some_and(|g| g.iter().any(|l| l == "...")),
            group_by,
            continue_: r.continue_,
            group_wait: r.group_wait.or(parent.map(|p| p.group_wait)).unwrap_or(Duration::from_secs(30)),
            group_interval: r.group_interval.or(parent.map(|p| p.group_interval)).unwrap_or(Duration::from_secs(300)),
            repeat_interval: r
                .repeat_interval
                .or(parent.map(|p| p.repeat_interval))
                .unwrap_or(Duration::from_secs(4 * 3600)),
            matchers,
            key,
            // Time intervals are not inherited (as in Alertmanager).
            mute: r.mute_time_intervals.clone(),
            active: r.active_time_intervals.clone(),
            children: Vec::new(),
        };
        if out.group_interval.is_zero() {
            return Err("group_interval cannot be zero".into());
        }
        if out.repeat_interval.is_zero() {
            return Err("repeat_interval cannot be zero".into());
        }
        let mut children = Vec::new();
        for (i, c) in r.routes.iter().enumerate() {
            children.push(CompiledRoute::build(c, Some(&out), &out.key, i)?);
        }
        out.children = children;
        Ok(out)
    }

    /// The routes an alert with `labels` goes to (Alertmanager's `Route.Match`).
    pub(crate) fn routes_for<'a>(&'a self, labels: &crate::LabelSet, out: &mut Vec<&'a CompiledRoute>) -> bool {
        if !matchers::matches(&self.matchers, labels) {
            return false;
        }
        let before = out.len();
        for c in &self.children {
            if c.routes_for(labels, out) && !c.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// The labels `labels` is grouped by on this route.
    pub(crate) fn group_labels(&self, labels: &crate::LabelSet) -> crate::LabelSet {
        if self.group_all {
            return labels.clone();
        }
        let by = self.group_by.as_deref().unwrap_or(&[]);
        labels.iter().filter(|(k, _)| by.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Compiled {
    /// Whether `route` may notify at `now`: not inside a mute interval, and inside an
    /// active interval when it names any.
    pub(crate) fn may_notify(&self, route: &CompiledRoute, now: telltale_model::Timestamp) -> bool {
        let hit = |names: &[String]| {
            names.iter().any(|n| self.intervals.get(n).is_some_and(|v| v.iter().any(|i| i.contains(now))))
        };
        !hit(&route.mute) && (route.active.is_empty() || hit(&route.active))
    }
}

/// An inhibit rule with compiled matchers.
#[derive(Debug, Clone)]
pub(crate) struct CompiledInhibit {
    pub(crate) source: Vec<Matcher>,
    pub(crate) target: Vec<Matcher>,
    pub(crate) equal: Vec<String>,
}

/// Everything the pipeline needs from the config, checked.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) intervals: BTreeMap<String, Vec<super::timeinterval::TimeInterval>>,
    pub(crate) root: CompiledRoute,
    pub(crate) inhibit: Vec<CompiledInhibit>,
    pub(crate) receivers: BTreeMap<String, ReceiverConfig>,
    pub(crate) global: GlobalConfig,
}

/// Checks and compiles the config as Alertmanager's loader does.
pub(crate) fn compile(c: &AlertmanagerConfig) -> Result<Compiled, String> {
    let mut receivers = BTreeMap::new();
    for r in &c.receivers {
        if r.name.is_empty() {
            return Err("receivers: a receiver has no name".into());
        }
        r.validate_with(&c.global)?;
        if receivers.insert(r.name.clone(), r.clone()).is_some() {
            return Err(format!("receivers: notification config name {:?} is not unique", r.name));
        }
    }
    if !c.route.matchers.is_empty() || !c.route.match_.is_empty() || !c.route.match_re.is_empty() {
        return Err("route: root route must not have any matchers".into());
    }
    let root = CompiledRoute::build(&c.route, None, "", 0).map_err(|e| format!("route: {e}"))?;
    fn check(r: &CompiledRoute, known: &BTreeMap<String, ReceiverConfig>) -> Result<(), String> {
        if !known.contains_key(&r.receiver) {
            return Err(format!("route: undefined receiver {:?} used in route", r.receiver));
        }
        r.children.iter().try_for_each(|c| check(c, known))
    }
    check(&root, &receivers)?;
    let mut intervals = BTreeMap::new();
    for ti in c.time_intervals.iter().chain(&c.mute_time_intervals) {
        let compiled: Result<Vec<_>, String> = ti.time_intervals.iter().map(|t| t.compile()).collect();
        let compiled = compiled.map_err(|e| format!("time_intervals {:?}: {e}", ti.name))?;
        if intervals.insert(ti.name.clone(), compiled).is_some() {
            return Err(format!("time_intervals: name {:?} is not unique", ti.name));
        }
    }
    fn check_names(
        r: &CompiledRoute,
        known: &BTreeMap<String, Vec<super::timeinterval::TimeInterval>>,
    ) -> Result<(), String> {
        for n in r.mute.iter().chain(&r.active) {
            if !known.contains_key(n) {
                return Err(format!("route: undefined time interval {n:?} used in route"));
            }
        }
        r.children.iter().try_for_each(|c| check_names(c, known))
    }
    check_names(&root, &intervals)?;
    let mut inhibit = Vec::new();
    for (i, r) in c.inhibit_rules.iter().enumerate() {
        let source = compile_matchers(&r.source_matchers, &r.source_match, &r.source_match_re)
            .map_err(|e| format!("inhibit_rules[{i}]: {e}"))?;
        let target = compile_matchers(&r.target_matchers, &r.target_match, &r.target_match_re)
            .map_err(|e| format!("inhibit_rules[{i}]: {e}"))?;
        inhibit.push(CompiledInhibit { source, target, equal: r.equal.clone() });
    }
    Ok(Compiled { intervals, root, inhibit, receivers, global: c.global.clone() })
}
