//! Targets: discovered groups (static and file), their labels before and after relabeling,
//! and the URL each is scraped at, as Prometheus's `PopulateLabels` builds them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use telltale_model::units;

use super::config::{FileSdConfig, GlobalConfig, ScrapeConfig};
use super::relabel::{process, LabelMap, Relabel};

/// One target group: addresses and the labels they share.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// `host:port` of each target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels of every target in the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the group came from (`__meta_filepath` for file discovery).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// The HTTP discovery endpoint it came from (`__meta_url`).
    #[serde(skip)]
    pub url: Option<String>,
}

/// A target after relabeling.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Labels before relabeling (`discoveredLabels`).
    pub discovered: LabelMap,
    /// Every label after relabeling, `__` ones included (address, scheme, path, params).
    pub all: LabelMap,
    /// The labels every series of the target gets (no `__` labels).
    pub labels: LabelMap,
    /// The URL to scrape.
    pub url: String,
}

/// Result of relabeling one discovered target.
pub enum Outcome {
    /// Scrape it.
    Active(Box<Target>),
    /// Dropped by relabeling (or without an address): only its discovered labels are kept.
    Dropped(LabelMap),
}

/// Builds the target for `address` of `group` as Prometheus does: defaults for `job`,
/// `__scheme__`, `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`,
/// `__param_*`; relabeling; `instance` defaults to `__address__`; `__` labels leave the
/// series' label set. Prometheus 3's rule: no default port is added to the address.
pub fn populate(
    cfg: &ScrapeConfig,
    global: &GlobalConfig,
    group: &Group,
    address: &str,
    relabel: &[Relabel],
) -> Outcome {
    let mut l: LabelMap = group.labels.clone();
    l.insert("__address__".into(), address.to_string());
    if let Some(p) = &group.source {
        l.insert("__meta_filepath".into(), p.display().to_string());
    }
    if let Some(u) = &group.url {
        l.insert("__meta_url".into(), u.clone());
    }
    let defaults = [
        ("job", cfg.job_name.clone()),
        ("__scrape_interval__", units::format_duration(cfg.interval(global))),
        ("__scrape_timeout__", units::format_duration(cfg.timeout(global))),
        ("__metrics_path__", cfg.metrics_path.clone()),
        ("__scheme__", cfg.scheme.clone()),
    ];
    for (k, v) in defaults {
        if l.get(k).is_none_or(|x| x.is_empty()) {
            l.insert(k.to_string(), v);
        }
    }
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            l.insert(format!("__param_{k}"), first.clone());
        }
    }
    l.retain(|_, v| !v.is_empty());
    let discovered = l.clone();
    if !process(&mut l, relabel) {
        return Outcome::Dropped(discovered);
    }
    let Some(addr) = l.get("__address__").cloned() else { return Outcome::Dropped(discovered) };
    l.retain(|k, _| !k.starts_with("__meta_"));
    if l.get("instance").is_none_or(|v| v.is_empty()) {
        l.insert("instance".into(), addr.clone());
    }
    let labels: LabelMap =
        l.iter().filter(|(k, _)| !k.starts_with("__")).map(|(k, v)| (k.clone(), v.clone())).collect();
    let url = scrape_url(&l, cfg, &addr);
    Outcome::Active(Box::new(Target { discovered, all: l, labels, url }))
}

/// `scheme://address/path?params`, with `__param_*` labels overriding the configured params.
fn scrape_url(l: &LabelMap, cfg: &ScrapeConfig, addr: &str) -> String {
    let scheme = l.get("__scheme__").map_or("http", String::as_str);
    let path = l.get("__metrics_path__").map_or("/metrics", String::as_str);
    let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
    for (k, v) in l {
        if let Some(name) = k.strip_prefix("__param_") {
            let e = params.entry(name.to_string()).or_default();
            if e.is_empty() {
                e.push(v.clone());
            } else {
                e[0] = v.clone();
            }
        }
    }
    let mut url = format!("{scheme}://{addr}{path}");
    let mut first = !path.contains('?');
    for (k, vs) in &params {
        for v in vs {
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
    }
    url
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the groups of one `file_sd_configs` entry. A file that cannot be read or parsed is
/// logged and contributes nothing (Prometheus keeps the last good groups; a file read every
/// refresh gives the same result once fixed).
pub fn read_file_sd(sd: &FileSdConfig) -> Vec<Group> {
    let mut out = Vec::new();
    for pattern in &sd.files {
        for path in glob(Path::new(pattern)) {
            match read_groups(&path) {
                Ok(groups) => out.extend(groups),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot read file_sd file"),
            }
        }
    }
    out
}

fn read_groups(path: &Path) -> Result<Vec<Group>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut groups: Vec<Group> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?
    };
    for g in &mut groups {
        g.source = Some(path.to_path_buf());
    }
    Ok(groups)
}

/// Files matching `pattern`, whose last component may hold `*` and `?`; sorted.
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![pattern.to_path_buf()];
    }
    let dir = pattern.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let re: String = name
        .chars()
        .map(|c| match c {
            '*' => ".*".to_string(),
            '?' => ".".to_string(),
            c => regex::escape(&c.to_string()),
        })
        .collect();
    let Ok(re) = regex::Regex::new(&format!("^{re}$")) else { return Vec::new() };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| re.is_match(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::relabel::RelabelConfig;

    fn cfg(yaml: &str) -> ScrapeConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn labels_url_and_relabeling() {
        let c = cfg("job_name: node\nparams:\n  module: [a, b]\nrelabel_configs:\n  - source_labels: [__address__]\n    regex: '(.*):.*'\n    target_label: host\n");
        let relabel: Vec<Relabel> = c.relabel_configs.iter().map(|r| r.compile().unwrap()).collect();
        let g = Group { targets: vec![], labels: [("env".into(), "prod".into())].into(), source: None, url: None };
        let Outcome::Active(t) = populate(&c, &GlobalConfig::default(), &g, "h:9100", &relabel) else { panic!() };
        assert_eq!(t.url, "http://h:9100/metrics?module=a&module=b");
        let want: LabelMap = [("env", "prod"), ("host", "h"), ("instance", "h:9100"), ("job", "node")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(t.labels, want);
        assert_eq!(t.discovered["__scrape_interval__"], "1m");
        assert_eq!(t.discovered["__param_module"], "a");
    }

    #[test]
    fn dropped_targets_keep_their_discovered_labels() {
        let c = cfg("job_name: x\n");
        let drop: RelabelConfig =
            serde_yaml_ng::from_str("source_labels: [__address__]\nregex: 'bad.*'\naction: drop\n").unwrap();
        let g = Group { targets: vec![], labels: BTreeMap::new(), source: None, url: None };
        let Outcome::Dropped(d) = populate(&c, &GlobalConfig::default(), &g, "bad:1", &[drop.compile().unwrap()])
        else {
            panic!()
        };
        assert_eq!(d["__address__"], "bad:1");
        // __param_ labels set by relabeling override the configured params.
        let c = cfg("job_name: x\nparams:\n  target: [one]\nrelabel_configs:\n  - target_label: __param_target\n    replacement: two\n");
        let r: Vec<Relabel> = c.relabel_configs.iter().map(|r| r.compile().unwrap()).collect();
        let Outcome::Active(t) = populate(&c, &GlobalConfig::default(), &g, "h:1", &r) else { panic!() };
        assert_eq!(t.url, "http://h:1/metrics?target=two");
    }

    #[test]
    fn file_sd_reads_json_and_yaml_by_pattern() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), r#"[{"targets":["a:1","b:2"],"labels":{"env":"x"}}]"#).unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['c:3']\n").unwrap();
        std::fs::write(dir.path().join("c.json"), "not json").unwrap();
        let sd = FileSdConfig {
            files: vec![format!("{}/*.json", dir.path().display()), format!("{}/b.yml", dir.path().display())],
            refresh_interval: std::time::Duration::from_secs(1),
        };
        let groups = read_file_sd(&sd);
        let targets: Vec<&str> = groups.iter().flat_map(|g| g.targets.iter().map(String::as_str)).collect();
        assert_eq!(targets, ["a:1", "b:2", "c:3"]);
        assert!(groups[0].source.as_ref().unwrap().ends_with("a.json"));
    }
}
