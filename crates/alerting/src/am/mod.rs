//! The Alertmanager-compatible notification pipeline: received alerts, the routing tree,
//! aggregation groups with `group_wait`/`group_interval`/`repeat_interval`, silences,
//! inhibition, the notification log (dedup), and the API v2 views.
//!
//! State changes are functions of a time passed in: [`Alertmanager::tick`] says which
//! notifications are due at `now`, [`Alertmanager::deliver`] sends them through a
//! [`Notifier`] and records the outcome. The loop in [`Alertmanager::run`] only reads the
//! clock and sleeps.

pub mod config;
pub mod matchers;
pub mod silence;
pub mod timeinterval;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use telltale_model::Timestamp;
use telltale_notify::{Integration, Message, MessageAlert, Notifier};
use tokio::sync::watch;

use crate::{Alert, Error, LabelSet, Result};
use config::{AlertmanagerConfig, Compiled, CompiledRoute};
use silence::{PostableSilence, Silences};

/// Go's zero time, which Alertmanager's JSON uses for "no end".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// The same, in milliseconds since the epoch.
const GO_ZERO_MS: Timestamp = -62_135_596_800_000;

/// Alertmanager's label-set fingerprint: FNV-1a 64 over sorted names and values, each
/// followed by 0xff.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut add = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    };
    for (k, v) in labels {
        k.bytes().for_each(&mut add);
        add(0xff);
        v.bytes().for_each(&mut add);
        add(0xff);
    }
    h
}

/// RFC 3339 with milliseconds, as Alertmanager's API writes times.
pub(crate) fn api_time(ms: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A received alert with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    alert: Alert,
    ends_at: Timestamp,
    updated_at: Timestamp,
}

/// One entry of the notification log: what a receiver's integration was last told.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogEntry {
    /// Fingerprints of the firing alerts notified.
    pub firing: Vec<u64>,
    /// Fingerprints of the resolved alerts notified.
    pub resolved: Vec<u64>,
    /// When (ms).
    pub at: Timestamp,
    /// The last failure, if the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the last attempt was made (ms), successful or not.
    #[serde(default)]
    pub last_attempt: Timestamp,
    /// The group notified.
    #[serde(default)]
    pub group_key: String,
    /// The receiver.
    #[serde(default)]
    pub receiver: String,
    /// The integration (`webhook[0]`, ...).
    #[serde(default)]
    pub integration: String,
}

#[derive(Debug)]
struct Group {
    route: CompiledRoute,
    labels: LabelSet,
    alerts: BTreeMap<u64, Stored>,
    next_flush: Timestamp,
}

/// A notification due now: one integration of one receiver for one group.
#[derive(Debug, Clone)]
pub struct Due {
    /// Notification-log key.
    log_key: String,
    /// `webhook[0]`, ...
    pub integration_name: String,
    /// The channel.
    pub integration: Integration,
    /// What to send.
    pub message: Message,
    firing: Vec<u64>,
    resolved: Vec<u64>,
    group_key: String,
    sent_resolved: Vec<(u64, Timestamp)>,
}

#[derive(Default)]
struct State {
    config: Option<Arc<Compiled>>,
    original: String,
    alerts: BTreeMap<u64, Stored>,
    groups: BTreeMap<String, Group>,
    silences: Silences,
    nflog: BTreeMap<String, LogEntry>,
    resolve_timeout_ms: i64,
    external_url: String,
    dir: Option<PathBuf>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Alerts received, by status.
    pub received_firing: u64,
    /// Resolved alerts received.
    pub received_resolved: u64,
    /// Notifications sent, by integration kind.
    pub notifications: BTreeMap<String, u64>,
    /// Notifications failed, by integration kind.
    pub failed: BTreeMap<String, u64>,
}

/// The pipeline; cheap to clone.
#[derive(Clone, Default)]
pub struct Alertmanager {
    state: Arc<Mutex<State>>,
    stats: Arc<Mutex<Stats>>,
    wake: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: LabelSet,
    #[serde(default)]
    annotations: LabelSet,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

impl Alertmanager {
    /// A pipeline with the default config (one receiver without integrations).
    pub fn new() -> Self {
        let am = Self::default();
        let _ = am.configure(&AlertmanagerConfig::default(), String::new(), String::new());
        am
    }

    /// Applies a config (at start and on reload); `original` is its YAML for `/api/v2/status`.
    pub fn configure(&self, c: &AlertmanagerConfig, original: String, external_url: String) -> Result<()> {
        let compiled = config::compile(c).map_err(|e| Error::BadRules { errors: vec![e] })?;
        let mut s = self.state.lock();
        s.config = Some(Arc::new(compiled));
        s.original = original;
        s.resolve_timeout_ms = c.global.resolve_timeout.as_millis() as i64;
        s.external_url = external_url;
        // Groups are rebuilt from the alerts under the new tree, keeping the log.
        s.groups.clear();
        let alerts: Vec<Stored> = s.alerts.values().cloned().collect();
        drop(s);
        let now = alerts.iter().map(|a| a.updated_at).max().unwrap_or(0);
        for a in alerts {
            self.route(a, now, true);
        }
        Ok(())
    }

    /// The external URL notifications link to.
    pub fn external_url(&self) -> String {
        self.state.lock().external_url.clone()
    }

    /// Checks a config without applying it.
    pub fn check(c: &AlertmanagerConfig) -> std::result::Result<(), String> {
        config::compile(c).map(|_| ())
    }

    /// Keeps silences and the notification log in `dir` (read now; written on change).
    pub fn persist_to(&self, dir: PathBuf) -> Result<()> {
        let mut s = self.state.lock();
        if let Ok(b) = std::fs::read(dir.join("silences.json")) {
            s.silences = serde_json::from_slice(&b).map_err(|e| Error::Invalid(format!("silences.json: {e}")))?;
        }
        if let Ok(b) = std::fs::read(dir.join("nflog.json")) {
            s.nflog = serde_json::from_slice(&b).map_err(|e| Error::Invalid(format!("nflog.json: {e}")))?;
        }
        s.dir = Some(dir);
        Ok(())
    }

    fn save(&self, what: &str) {
        let s = self.state.lock();
        let Some(dir) = s.dir.clone() else { return };
        let bytes = match what {
            "silences" => serde_json::to_vec(&s.silences),
            _ => serde_json::to_vec(&s.nflog),
        };
        drop(s);
        if let Ok(b) = bytes {
            if let Err(e) = crate::write_atomic(&dir.join(format!("{what}.json")), &b) {
                tracing::warn!(error = %e, "cannot save alerting state");
            }
        }
    }

    /// Takes alerts from rules (or anyone) at `now`.
    pub fn receive(&self, alerts: Vec<Alert>, now: Timestamp) {
        let timeout = self.state.lock().resolve_timeout_ms;
        for a in alerts {
            let ends_at = a.ends_at.unwrap_or(now.max(a.starts_at) + timeout);
            {
                let mut st = self.stats.lock();
                if ends_at <= now {
                    st.received_resolved += 1;
                } else {
                    st.received_firing += 1;
                }
            }
            self.route(Stored { alert: a, ends_at, updated_at: now }, now, false);
        }
        self.wake.notify_one();
    }

    /// `POST /api/v2/alerts`: a JSON list of postable alerts.
    pub fn post_alerts(&self, body: &[u8], now: Timestamp) -> Result<()> {
        let posted: Vec<PostableAlert> =
            serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("invalid alerts: {e}")))?;
        let mut alerts = Vec::with_capacity(posted.len());
        for p in posted {
            if p.labels.is_empty() {
                return Err(Error::Invalid("invalid alert: at least one label pair required".into()));
            }
            for (k, v) in &p.labels {
                if k.is_empty()
                    || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || k.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(Error::Invalid(format!("invalid alert: invalid label name {k:?}")));
                }
                if v.is_empty() {
                    return Err(Error::Invalid(format!("invalid alert: empty value for label {k:?}")));
                }
            }
            // Go clients (amtool) send the zero time (year 1) for "not set".
            let set = |t: &Timestamp| *t > GO_ZERO_MS + 86_400_000;
            let starts_at = p.starts_at.filter(|s| !s.is_empty());
            let starts = starts_at.map(|s| silence::parse_time("startsAt", &s)).transpose()?.filter(set).unwrap_or(now);
            let ends_at = p.ends_at.filter(|s| !s.is_empty());
            let ends = ends_at.map(|s| silence::parse_time("endsAt", &s)).transpose()?.filter(set);
            if ends.is_some_and(|e| e < starts) {
                return Err(Error::Invalid("invalid alert: start time must be before end time".into()));
            }
            alerts.push(Alert {
                labels: p.labels,
                annotations: p.annotations,
                starts_at: starts,
                ends_at: ends,
                generator_url: p.generator_url,
                value: None,
            });
        }
        self.receive(alerts, now);
        Ok(())
    }

    fn route(&self, a: Stored, now: Timestamp, rebuilding: bool) {
        let mut s = self.state.lock();
        let fp = fingerprint(&a.alert.labels);
        // Merge with what we have, as Alertmanager's alert store does.
        let merged = match s.alerts.get(&fp) {
            Some(old)
                if !rebuilding
                    && old.ends_at >= a.alert.starts_at
                    && a.alert.starts_at >= old.alert.starts_at.min(a.alert.starts_at) =>
            {
                let mut m = a.clone();
                m.alert.starts_at = old.alert.starts_at.min(a.alert.starts_at);
                m
            }
            _ => a,
        };
        s.alerts.insert(fp, merged.clone());
        let Some(cfg) = s.config.clone() else { return };
        let mut routes = Vec::new();
        cfg.root.routes_for(&merged.alert.labels, &mut routes);
        for r in routes {
            let labels = r.group_labels(&merged.alert.labels);
            let key = format!("{}:{}", r.key, show(&labels));
            let g = s.groups.entry(key.clone()).or_insert_with(|| {
                let wait = r.group_wait.as_millis() as i64;
                // An alert older than group_wait is flushed at once.
                let next = if merged.alert.starts_at + wait < now { now } else { now + wait };
                Group { route: r.clone(), labels, alerts: BTreeMap::new(), next_flush: next }
            });
            g.alerts.insert(fp, merged.clone());
        }
    }

    fn muted(&self, s: &State, labels: &LabelSet, now: Timestamp) -> (Vec<String>, Vec<String>) {
        let silenced = s.silences.silencing(labels, now);
        let mut inhibited = Vec::new();
        if let Some(cfg) = &s.config {
            let fp = fingerprint(labels);
            for r in &cfg.inhibit {
                if !matchers::matches(&r.target, labels) {
                    continue;
                }
                for (sfp, src) in &s.alerts {
                    if *sfp == fp || src.ends_at <= now || !matchers::matches(&r.source, &src.alert.labels) {
                        continue;
                    }
                    if r.equal.iter().all(|l| src.alert.labels.get(l) == labels.get(l)) {
                        inhibited.push(format!("{sfp:016x}"));
                    }
                }
            }
        }
        (silenced, inhibited)
    }

    /// The notifications due at `now` (and the time of the next one).
    pub fn tick(&self, now: Timestamp) -> (Vec<Due>, Option<Timestamp>) {
        let mut s = self.state.lock();
        s.silences.gc(now);
        s.alerts.retain(|_, a| a.ends_at + silence::RETENTION_MS.min(3_600_000) > now);
        let Some(cfg) = s.config.clone() else { return (Vec::new(), None) };
        let keys: Vec<String> = s.groups.iter().filter(|(_, g)| g.next_flush <= now).map(|(k, _)| k.clone()).collect();
        let mut due = Vec::new();
        for key in keys {
            let (route, labels, alerts) = {
                let g = &s.groups[&key];
                (g.route.clone(), g.labels.clone(), g.alerts.values().cloned().collect::<Vec<_>>())
            };
            let mut shown = Vec::new();
            for a in alerts {
                let (sil, inh) = self.muted(&s, &a.alert.labels, now);
                if sil.is_empty() && inh.is_empty() {
                    shown.push(a);
                }
            }
            if let Some(g) = s.groups.get_mut(&key) {
                g.next_flush = now + route.group_interval.as_millis() as i64;
            }
            // Outside the route's active times (or inside a mute time): nothing is sent and
            // the log is untouched, so the group is notified once the time comes.
            if !cfg.may_notify(&route, now) {
                continue;
            }
            // Everything muted: the pipeline stops before dedup (Alertmanager's MultiStage
            // returns on an empty alert list), so the log keeps what receivers were told.
            if shown.is_empty() {
                let resolved: Vec<(u64, Timestamp)> = s.groups[&key]
                    .alerts
                    .values()
                    .filter(|a| a.ends_at <= now)
                    .map(|a| (fingerprint(&a.alert.labels), a.updated_at))
                    .collect();
                clear_resolved(&mut s, &key, &resolved);
                continue;
            }
            let receiver = cfg.receivers.get(&route.receiver).cloned().unwrap_or_default();
            let firing: Vec<u64> =
                shown.iter().filter(|a| a.ends_at > now).map(|a| fingerprint(&a.alert.labels)).collect();
            let resolved: Vec<(u64, Timestamp)> = shown
                .iter()
                .filter(|a| a.ends_at <= now)
                .map(|a| (fingerprint(&a.alert.labels), a.updated_at))
                .collect();
            let resolved_fps: Vec<u64> = resolved.iter().map(|(f, _)| *f).collect();
            let integrations = telltale_notify::integrations(&receiver, &cfg.global);
            if integrations.is_empty() {
                // Nobody to tell: resolved alerts leave the group now.
                clear_resolved(&mut s, &key, &resolved);
                continue;
            }
            for (name, integ) in integrations {
                let log_key = format!("{key}|{}|{name}", route.receiver);
                let entry = s.nflog.get(&log_key);
                let repeat = route.repeat_interval.as_millis() as i64;
                if !needs_update(entry, &firing, &resolved_fps, integ.send_resolved(), repeat, now) {
                    continue;
                }
                let alerts: Vec<&Stored> = shown.iter().filter(|a| a.ends_at > now || integ.send_resolved()).collect();
                if alerts.is_empty() {
                    // Only resolved alerts and send_resolved off: nothing to send, but the log
                    // learns the receiver's alerts are gone (as Alertmanager's RetryStage).
                    s.nflog.insert(
                        log_key,
                        LogEntry {
                            firing: Vec::new(),
                            resolved: resolved_fps.clone(),
                            at: now,
                            error: None,
                            last_attempt: now,
                            group_key: key.clone(),
                            receiver: route.receiver.clone(),
                            integration: name.clone(),
                        },
                    );
                    continue;
                }
                let message = build_message(&route.receiver, &key, &labels, &alerts, now, &s.external_url);
                due.push(Due {
                    log_key,
                    integration_name: name,
                    integration: integ,
                    message,
                    firing: firing.clone(),
                    resolved: resolved_fps.clone(),
                    group_key: key.clone(),
                    sent_resolved: resolved.clone(),
                });
            }
            if due.iter().all(|d| d.group_key != key) {
                clear_resolved(&mut s, &key, &resolved);
            }
        }
        let next = s.groups.values().map(|g| g.next_flush).min();
        (due, next)
    }

    /// Sends `due` through `notifier` and records each outcome in the notification log.
    pub async fn deliver(&self, due: Vec<Due>, notifier: &dyn Notifier, now: Timestamp) {
        for d in due {
            let r = notifier.send(&d.integration, &d.message).await;
            let kind = d.integration.kind().to_string();
            let mut s = self.state.lock();
            match r {
                Ok(()) => {
                    *self.stats.lock().notifications.entry(kind).or_default() += 1;
                    s.nflog.insert(
                        d.log_key.clone(),
                        LogEntry {
                            firing: d.firing,
                            resolved: d.resolved,
                            at: now,
                            error: None,
                            last_attempt: now,
                            group_key: d.group_key.clone(),
                            receiver: d.message.receiver.clone(),
                            integration: d.integration_name.clone(),
                        },
                    );
                    clear_resolved(&mut s, &d.group_key, &d.sent_resolved);
                }
                Err(e) => {
                    *self.stats.lock().failed.entry(kind).or_default() += 1;
                    tracing::warn!(integration = %d.integration_name, receiver = %d.message.receiver, error = %e, "notification failed");
                    let entry = s.nflog.entry(d.log_key.clone()).or_default();
                    entry.error = Some(e.to_string());
                    entry.last_attempt = now;
                    entry.group_key = d.group_key.clone();
                    entry.receiver = d.message.receiver.clone();
                    entry.integration = d.integration_name.clone();
                }
            }
            drop(s);
        }
        self.save("nflog");
    }

    /// Ticks and delivers until `stop`, sleeping until the next group is due.
    pub async fn run(
        &self,
        notifier: Arc<dyn Notifier>,
        now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let t = now();
            let (due, next) = self.tick(t);
            if !due.is_empty() {
                self.deliver(due, notifier.as_ref(), t).await;
                continue;
            }
            let wait = next.map_or(1000, |n| (n - now()).clamp(1, 1000)) as u64;
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
                _ = self.wake.notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.save("nflog");
        self.save("silences");
    }

    /// The counters for `/metrics`.
    pub fn stats(&self) -> Stats {
        self.stats.lock().clone()
    }

    /// The notification log, for the API and tests.
    pub fn log(&self) -> BTreeMap<String, LogEntry> {
        self.state.lock().nflog.clone()
    }

    /// Telltale's `GET /api/v1/notifications`: the notification log, newest attempt first:
    /// what each receiver's integration was last told about each group, and its last error.
    pub fn log_json(&self) -> Json {
        let s = self.state.lock();
        let mut entries: Vec<&LogEntry> = s.nflog.values().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.last_attempt));
        Json::Array(
            entries
                .into_iter()
                .map(|e| {
                    json!({
                        "groupKey": e.group_key,
                        "receiver": e.receiver,
                        "integration": e.integration,
                        "lastNotified": if e.at > 0 { Json::String(api_time(e.at)) } else { Json::Null },
                        "lastAttempt": api_time(e.last_attempt),
                        "firing": e.firing.len(),
                        "resolved": e.resolved.len(),
                        "error": e.error,
                    })
                })
                .collect(),
        )
    }

    /// `POST /api/v2/silences`: returns `{"silenceID": ...}`.
    pub fn post_silence(&self, body: &[u8], now: Timestamp) -> Result<Json> {
        let p: PostableSilence =
            serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("invalid silence: {e}")))?;
        let id = self.state.lock().silences.set(p, now)?;
        self.save("silences");
        self.wake.notify_one();
        Ok(json!({ "silenceID": id }))
    }

    /// `DELETE /api/v2/silence/{id}`.
    pub fn expire_silence(&self, id: &str, now: Timestamp) -> Result<()> {
        self.state.lock().silences.expire(id, now)?;
        self.save("silences");
        Ok(())
    }

    fn silence_json(s: &silence::Silence, now: Timestamp) -> Json {
        json!({
            "id": s.id,
            "matchers": s.matchers,
            "startsAt": api_time(s.starts_at),
            "endsAt": api_time(s.ends_at),
            "updatedAt": api_time(s.updated_at),
            "createdBy": s.created_by,
            "comment": s.comment,
            "status": { "state": silence::state(s, now) },
        })
    }

    /// `GET /api/v2/silence/{id}`.
    pub fn silence(&self, id: &str, now: Timestamp) -> Result<Json> {
        let s = self.state.lock();
        let sil = s.silences.all.get(id).ok_or_else(|| Error::NotFound(format!("silence {id} not found")))?;
        Ok(Self::silence_json(sil, now))
    }

    /// `GET /api/v2/silences?filter=...`: active first (by end), then pending (by start),
    /// then expired (latest first), as Alertmanager sorts them.
    pub fn silences(&self, filter: &[String], now: Timestamp) -> Result<Json> {
        let ms = parse_filter(filter)?;
        let s = self.state.lock();
        let mut list: Vec<&silence::Silence> = s
            .silences
            .all
            .values()
            .filter(|sil| ms.iter().all(|m| sil.matchers.iter().any(|x| x.name == m.name && m.matches(&x.value))))
            .collect();
        let rank = |x: &silence::Silence| match silence::state(x, now) {
            "active" => (0, x.ends_at),
            "pending" => (1, x.starts_at),
            _ => (2, -x.ends_at),
        };
        list.sort_by_key(|x| rank(x));
        Ok(Json::Array(list.into_iter().map(|x| Self::silence_json(x, now)).collect()))
    }

    fn alert_json(&self, s: &State, a: &Stored, now: Timestamp) -> (Json, bool, bool) {
        let (sil, inh) = self.muted(s, &a.alert.labels, now);
        let receivers: Vec<Json> = s
            .config
            .as_ref()
            .map(|c| {
                let mut r = Vec::new();
                c.root.routes_for(&a.alert.labels, &mut r);
                let mut names: Vec<String> = r.iter().map(|x| x.receiver.clone()).collect();
                names.dedup();
                names.into_iter().map(|n| json!({ "name": n })).collect()
            })
            .unwrap_or_default();
        let state = if sil.is_empty() && inh.is_empty() { "active" } else { "suppressed" };
        let j = json!({
            "labels": a.alert.labels,
            "annotations": a.alert.annotations,
            "startsAt": api_time(a.alert.starts_at),
            "endsAt": api_time(a.ends_at),
            "updatedAt": api_time(a.updated_at),
            "generatorURL": a.alert.generator_url,
            "fingerprint": format!("{:016x}", fingerprint(&a.alert.labels)),
            "receivers": receivers,
            "status": { "state": state, "silencedBy": sil, "inhibitedBy": inh, "mutedBy": [] },
        });
        (j, !sil.is_empty(), !inh.is_empty())
    }

    /// `GET /api/v2/alerts` with its filters (`filter`, `silenced`, `inhibited`, `active`,
    /// `receiver`): the alerts not yet resolved.
    pub fn alerts(&self, q: &AlertQuery, now: Timestamp) -> Result<Json> {
        let ms = parse_filter(&q.filter)?;
        let recv = q
            .receiver
            .as_deref()
            .map(|r| regex::Regex::new(&format!("^(?:{r})$")))
            .transpose()
            .map_err(|e| Error::Invalid(format!("invalid receiver regex: {e}")))?;
        let s = self.state.lock();
        let mut out = Vec::new();
        for a in s.alerts.values().filter(|a| a.ends_at > now) {
            if !matchers::matches(&ms, &a.alert.labels) {
                continue;
            }
            let (j, silenced, inhibited) = self.alert_json(&s, a, now);
            let active = !silenced && !inhibited;
            if (silenced && !q.silenced) || (inhibited && !q.inhibited) || (active && !q.active) {
                continue;
            }
            if let Some(re) = &recv {
                if !j["receivers"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| re.is_match(x["name"].as_str().unwrap_or(""))))
                {
                    continue;
                }
            }
            out.push(j);
        }
        Ok(Json::Array(out))
    }

    /// `GET /api/v2/alerts/groups`.
    pub fn groups(&self, q: &AlertQuery, now: Timestamp) -> Result<Json> {
        let ms = parse_filter(&q.filter)?;
        let s = self.state.lock();
        let mut out = Vec::new();
        for g in s.groups.values() {
            let alerts: Vec<Json> = g
                .alerts
                .values()
                .filter(|a| a.ends_at > now && matchers::matches(&ms, &a.alert.labels))
                .filter_map(|a| {
                    let (j, silenced, inhibited) = self.alert_json(&s, a, now);
                    let active = !silenced && !inhibited;
                    let keep = (q.active || !active) && (q.inhibited || !inhibited) && (q.silenced || !silenced);
                    keep.then_some(j)
                })
                .collect();
            if alerts.is_empty() {
                continue;
            }
            out.push(json!({ "labels": g.labels, "receiver": { "name": g.route.receiver }, "alerts": alerts }));
        }
        Ok(Json::Array(out))
    }

    /// `GET /api/v2/receivers`.
    pub fn receivers(&self) -> Json {
        let s = self.state.lock();
        let names: Vec<Json> =
            s.config.as_ref().map(|c| c.receivers.keys().map(|n| json!({ "name": n })).collect()).unwrap_or_default();
        Json::Array(names)
    }

    /// `GET /api/v2/status`; `uptime` is when the server started.
    pub fn status(&self, uptime: Timestamp) -> Json {
        let s = self.state.lock();
        json!({
            "cluster": { "name": "", "peers": [], "status": "disabled" },
            "config": { "original": s.original },
            "uptime": api_time(uptime),
            "versionInfo": {
                "branch": "", "buildDate": "", "buildUser": "", "goVersion": "", "revision": "",
                "version": concat!("telltale-", env!("CARGO_PKG_VERSION")),
            },
        })
    }
}

/// Filters of the alert listing endpoints.
#[derive(Debug, Clone)]
pub struct AlertQuery {
    /// `filter=` matchers.
    pub filter: Vec<String>,
    /// Include silenced alerts (default true).
    pub silenced: bool,
    /// Include inhibited alerts (default true).
    pub inhibited: bool,
    /// Include active alerts (default true).
    pub active: bool,
    /// Only alerts routed to receivers matching this regex.
    pub receiver: Option<String>,
}

impl Default for AlertQuery {
    fn default() -> Self {
        Self { filter: Vec::new(), silenced: true, inhibited: true, active: true, receiver: None }
    }
}

fn parse_filter(f: &[String]) -> Result<Vec<telltale_model::Matcher>> {
    let mut out = Vec::new();
    for x in f {
        out.extend(matchers::parse(x).map_err(Error::Invalid)?);
    }
    Ok(out)
}

fn clear_resolved(s: &mut State, key: &str, resolved: &[(u64, Timestamp)]) {
    if let Some(g) = s.groups.get_mut(key) {
        for (fp, updated) in resolved {
            if g.alerts.get(fp).is_some_and(|a| a.updated_at == *updated) {
                g.alerts.remove(fp);
            }
        }
        if g.alerts.is_empty() {
            s.groups.remove(key);
        }
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &[u64],
    resolved: &[u64],
    send_resolved: bool,
    repeat_ms: i64,
    now: Timestamp,
) -> bool {
    let Some(e) = entry.filter(|e| e.error.is_none() || !e.firing.is_empty() || !e.resolved.is_empty()) else {
        return !firing.is_empty();
    };
    if e.at == 0 && e.firing.is_empty() && e.resolved.is_empty() {
        return !firing.is_empty();
    }
    if !firing.iter().all(|f| e.firing.contains(f)) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.iter().all(|r| e.resolved.contains(r)) {
        return true;
    }
    e.at + repeat_ms < now
}

fn show(l: &LabelSet) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn build_message(
    receiver: &str,
    key: &str,
    group_labels: &LabelSet,
    alerts: &[&Stored],
    now: Timestamp,
    external_url: &str,
) -> Message {
    let common = |f: &dyn Fn(&Alert) -> &LabelSet| -> BTreeMap<String, String> {
        let mut it = alerts.iter();
        let Some(first) = it.next() else { return BTreeMap::new() };
        let mut c = f(&first.alert).clone();
        for a in it {
            c.retain(|k, v| f(&a.alert).get(k) == Some(v));
        }
        c
    };
    let firing = alerts.iter().any(|a| a.ends_at > now);
    Message {
        version: "4".into(),
        group_key: key.to_string(),
        truncated_alerts: 0,
        status: if firing { "firing" } else { "resolved" }.into(),
        receiver: receiver.to_string(),
        group_labels: group_labels.clone(),
        common_labels: common(&|a| &a.labels),
        common_annotations: common(&|a| &a.annotations),
        external_url: external_url.to_string(),
        alerts: alerts
            .iter()
            .map(|a| MessageAlert {
                status: if a.ends_at > now { "firing" } else { "resolved" }.into(),
                labels: a.alert.labels.clone(),
                annotations: a.alert.annotations.clone(),
                starts_at: crate::manager::go_time(Some(a.alert.starts_at)),
                ends_at: if a.ends_at > now { ZERO_TIME.into() } else { crate::manager::go_time(Some(a.ends_at)) },
                generator_url: a.alert.generator_url.clone(),
                fingerprint: format!("{:016x}", fingerprint(&a.alert.labels)),
                value: a.alert.value,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
