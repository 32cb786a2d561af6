//! Relabeling, as Prometheus's `model/relabel` does it: each step reads the label set the
//! previous step produced; regexes are anchored at both ends; `$1`, `${1}` and `$name` in
//! `replacement` (and in `target_label` for `replace`) expand the regex's groups.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// One `relabel_configs` / `metric_relabel_configs` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values, joined by `separator`, are matched against `regex`.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins the source label values.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`; compared by `keepequal`/`dropequal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    /// Matched against the joined value (or label names, for `labelmap`/`labeldrop`/`labelkeep`).
    #[serde(default = "default_regex")]
    pub regex: String,
    /// The hash modulus of `hashmod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    /// What `replace` and `labelmap` write.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// `replace` (default), `keep`, `drop`, `keepequal`, `dropequal`, `hashmod`, `labelmap`,
    /// `labeldrop`, `labelkeep`, `lowercase`, `uppercase`.
    #[serde(default = "default_action")]
    pub action: String,
}

fn default_separator() -> String {
    ";".into()
}
fn default_regex() -> String {
    "(.*)".into()
}
fn default_replacement() -> String {
    "$1".into()
}
fn default_action() -> String {
    "replace".into()
}

/// The actions (Prometheus's names, matched case-insensitively as Prometheus does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

/// A relabel step with its regex compiled.
#[derive(Debug, Clone)]
pub struct Relabel {
    source: Vec<String>,
    separator: String,
    target: String,
    regex: Regex,
    modulus: u64,
    replacement: String,
    action: Action,
}

impl RelabelConfig {
    /// Compiles and checks the step; the error is one line naming the problem.
    pub fn compile(&self) -> Result<Relabel, String> {
        let action = match self.action.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            other => return Err(format!("unknown relabel action {other:?}")),
        };
        let regex = Regex::new(&format!("^(?:{})$", self.regex))
            .map_err(|e| format!("invalid regex {:?}: {}", self.regex, e.to_string().replace('\n', " ")))?;
        let target = self.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(format!("relabel configuration for {} action requires 'target_label' value", self.action));
        }
        if action == Action::HashMod && self.modulus.unwrap_or(0) == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty() || !target.is_empty() || self.replacement != "$1")
        {
            return Err(format!("{} action requires only 'regex', and no other fields", self.action));
        }
        if action != Action::Replace && !target.is_empty() && !is_label_name(&target) {
            return Err(format!("{target:?} is invalid 'target_label' for {} action", self.action));
        }
        Ok(Relabel {
            source: self.source_labels.clone(),
            separator: self.separator.clone(),
            target,
            regex,
            modulus: self.modulus.unwrap_or(0),
            replacement: self.replacement.clone(),
            action,
        })
    }
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A label set being relabeled: name → value, sorted; an empty value means absent.
pub type LabelMap = BTreeMap<String, String>;

/// Runs `steps` over `labels`; `false` means the series or target is dropped.
pub fn process(labels: &mut LabelMap, steps: &[Relabel]) -> bool {
    for s in steps {
        if !s.apply(labels) {
            return false;
        }
    }
    labels.retain(|_, v| !v.is_empty());
    true
}

impl Relabel {
    fn apply(&self, l: &mut LabelMap) -> bool {
        let get = |l: &LabelMap, n: &str| l.get(n).cloned().unwrap_or_default();
        let val = self.source.iter().map(|n| get(l, n)).collect::<Vec<_>>().join(&self.separator);
        match self.action {
            Action::Drop => return !self.regex.is_match(&val),
            Action::Keep => return self.regex.is_match(&val),
            Action::DropEqual => return get(l, &self.target) != val,
            Action::KeepEqual => return get(l, &self.target) == val,
            Action::Replace => {
                let Some(caps) = self.regex.captures(&val) else { return true };
                let mut target = String::new();
                caps.expand(&self.target, &mut target);
                if !is_label_name(&target) {
                    return true;
                }
                let mut res = String::new();
                caps.expand(&self.replacement, &mut res);
                if res.is_empty() {
                    l.remove(&target);
                } else {
                    l.insert(target, res);
                }
            }
            Action::Lowercase => {
                l.insert(self.target.clone(), val.to_lowercase());
            }
            Action::Uppercase => {
                l.insert(self.target.clone(), val.to_uppercase());
            }
            Action::HashMod => {
                let d = md5::compute(val.as_bytes());
                // Prometheus uses the last 8 bytes of the MD5, big-endian.
                let mut last = [0u8; 8];
                last.copy_from_slice(&d.0[8..]);
                let m = u64::from_be_bytes(last) % self.modulus;
                l.insert(self.target.clone(), m.to_string());
            }
            Action::LabelMap => {
                let mut add = Vec::new();
                for (n, v) in l.iter() {
                    if self.regex.is_match(n) {
                        add.push((self.regex.replace_all(n, self.replacement.as_str()).into_owned(), v.clone()));
                    }
                }
                for (n, v) in add {
                    l.insert(n, v);
                }
            }
            Action::LabelDrop => l.retain(|n, _| !self.regex.is_match(n)),
            Action::LabelKeep => l.retain(|n, _| self.regex.is_match(n)),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Relabel {
        let c: RelabelConfig = serde_yaml_ng::from_str(yaml).unwrap();
        c.compile().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelMap {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn replace_with_groups_and_target_templates() {
        let mut l = labels(&[("__address__", "10.0.0.1:9100"), ("a", "x")]);
        let s = cfg("source_labels: [__address__]\nregex: '(.*):(\\d+)'\ntarget_label: host\nreplacement: '${1}'\n");
        assert!(process(&mut l, &[s]));
        assert_eq!(l["host"], "10.0.0.1");
        let s = cfg("source_labels: [a]\nregex: '(.*)'\ntarget_label: 'lbl_$1'\nreplacement: 'v'\n");
        assert!(process(&mut l, &[s]));
        assert_eq!(l["lbl_x"], "v");
        // No match: nothing changes. Empty result: the label goes.
        let s = cfg("source_labels: [a]\nregex: 'nomatch'\ntarget_label: a\nreplacement: 'z'\n");
        assert!(process(&mut l, &[s]));
        assert_eq!(l["a"], "x");
        let s = cfg("source_labels: [a]\ntarget_label: a\nreplacement: ''\n");
        assert!(process(&mut l, &[s]));
        assert!(!l.contains_key("a"));
        // `$1x` is the group named "1x" (Go's rule): empty.
        let mut l = labels(&[("a", "v")]);
        assert!(process(&mut l, &[cfg("source_labels: [a]\ntarget_label: b\nreplacement: '$1x'\n")]));
        assert!(!l.contains_key("b"));
    }

    #[test]
    fn keep_drop_and_equal() {
        let keep = cfg("source_labels: [job, env]\nseparator: '/'\nregex: 'node/prod'\naction: keep\n");
        assert!(process(&mut labels(&[("job", "node"), ("env", "prod")]), std::slice::from_ref(&keep)));
        assert!(!process(&mut labels(&[("job", "node")]), std::slice::from_ref(&keep)));
        let drop = cfg("source_labels: [__name__]\nregex: 'go_.*'\naction: Drop\n");
        assert!(!process(&mut labels(&[("__name__", "go_goroutines")]), std::slice::from_ref(&drop)));
        assert!(process(&mut labels(&[("__name__", "up")]), &[drop]));
        let eq = cfg("source_labels: [a]\ntarget_label: b\naction: keepequal\n");
        assert!(process(&mut labels(&[("a", "1"), ("b", "1")]), std::slice::from_ref(&eq)));
        assert!(!process(&mut labels(&[("a", "1"), ("b", "2")]), &[eq]));
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Prometheus: the last 8 bytes of md5("foo"), big-endian, modulo 1000.
        let s = cfg("source_labels: [a]\nmodulus: 1000\ntarget_label: shard\naction: hashmod\n");
        let mut l = labels(&[("a", "foo")]);
        assert!(process(&mut l, &[s]));
        let d = md5::compute(b"foo");
        let want = u64::from_be_bytes(d.0[8..].try_into().unwrap()) % 1000;
        assert_eq!(l["shard"], want.to_string());
    }

    #[test]
    fn labelmap_labeldrop_labelkeep() {
        let mut l = labels(&[("__meta_kubernetes_pod_label_app", "web"), ("__meta_x", "1"), ("keep_me", "k")]);
        assert!(process(
            &mut l,
            &[
                cfg("regex: '__meta_kubernetes_pod_label_(.+)'\naction: labelmap\n"),
                cfg("regex: '__meta_.*'\naction: labeldrop\n")
            ]
        ));
        assert_eq!(l, labels(&[("app", "web"), ("keep_me", "k")]));
        assert!(process(&mut l, &[cfg("regex: 'app'\naction: labelkeep\n")]));
        assert_eq!(l, labels(&[("app", "web")]));
    }

    #[test]
    fn bad_steps_are_refused() {
        let bad = |y: &str| serde_yaml_ng::from_str::<RelabelConfig>(y).unwrap().compile().unwrap_err();
        assert_eq!(
            bad("action: hashmod\ntarget_label: x\n"),
            "relabel configuration for hashmod requires non-zero modulus"
        );
        assert_eq!(bad("action: replace\n"), "relabel configuration for replace action requires 'target_label' value");
        assert_eq!(bad("action: explode\n"), "unknown relabel action \"explode\"");
        assert!(bad("regex: '('\naction: drop\n").starts_with("invalid regex \"(\""));
        assert_eq!(
            bad("action: labeldrop\nsource_labels: [a]\n"),
            "labeldrop action requires only 'regex', and no other fields"
        );
    }
}
