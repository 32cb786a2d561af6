//! The scrape manager: one pool per `scrape_configs` job, one loop per target, the state
//! `/api/v1/targets` shows, and reconfiguration on reload.
//!
//! A reload compares each job's config with the running one: unchanged jobs keep running
//! untouched (no gap, no staleness), changed jobs restart, removed jobs stop. Within a job,
//! file discovery re-reads its files every `refresh_interval`; a target that appears gets a
//! loop, one that disappears is stopped. A stopping loop writes stale markers for every
//! series it produced, so they end at once in PromQL instead of after the lookback.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use telltale_model::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::{validate, GlobalConfig, ScrapeConfig};
use super::relabel::{LabelMap, Relabel};
use super::scraper::{report, samples, Client, Report, Settings};
use super::target::{populate, read_file_sd, Group, Outcome, Target};
use crate::{Result, Sink, Staleness};

/// Milliseconds since the epoch; injected so tests are exact.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// A target's last scrape, as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Default)]
struct Health {
    last_scrape: Option<Timestamp>,
    duration: f64,
    error: String,
    up: Option<bool>,
}

struct ActiveView {
    target: Arc<Target>,
    health: Arc<Mutex<Health>>,
}

#[derive(Default)]
struct PoolView {
    active: Vec<ActiveView>,
    /// At most `keep_dropped_targets` of them.
    dropped: Vec<LabelMap>,
    /// All dropped targets, kept or not.
    dropped_count: usize,
    interval: String,
    timeout: String,
}

/// What the scrape manager shows: every pool's active and dropped targets. Cheap to clone.
#[derive(Clone, Default)]
pub struct Targets {
    pools: Arc<RwLock<BTreeMap<String, PoolView>>>,
    /// The port Telltale listens on, for `globalUrl` (see [`global_url`]).
    own_port: Arc<std::sync::OnceLock<u16>>,
    host: Arc<std::sync::OnceLock<String>>,
}

/// Prometheus's `globalUrl`: a target on a loopback address (`127.0.0.1`, `localhost`, `::1`)
/// is not reachable from elsewhere, so its host is replaced by this host's name (Prometheus:
/// its external URL's, by default `http://<hostname>:<port>`), keeping the target's port;
/// a loopback target on Telltale's own port is Telltale itself.
pub fn global_url(url: &str, hostname: &str, own_port: Option<u16>) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if !matches!(bare, "127.0.0.1" | "localhost" | "::1") {
        return url.to_string();
    }
    let host = if hostname.contains(':') { format!("[{hostname}]") } else { hostname.to_string() };
    match port {
        Some(p) if own_port.is_some_and(|o| o.to_string() == p) => format!("http://{host}:{p}{path}"),
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn rfc3339(ms: Option<Timestamp>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

impl Targets {
    /// Tells the view Telltale's own port, so `globalUrl` of a target scraping Telltale on
    /// loopback names it as Prometheus would. Only the first call counts.
    pub fn set_own_port(&self, port: u16) {
        let _ = self.own_port.set(port);
    }

    /// The `data` of Prometheus 3's `GET /api/v1/targets`: `state` is `active`, `dropped` or
    /// `any` (default), `pool` limits it to one scrape pool.
    pub fn to_json(&self, state: Option<&str>, pool: Option<&str>) -> Value {
        let pools = self.pools.read().unwrap_or_else(|p| p.into_inner());
        let (want_active, want_dropped) = match state.map(str::to_ascii_lowercase).as_deref() {
            Some("active") => (true, false),
            Some("dropped") => (false, true),
            _ => (true, true),
        };
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        let mut dropped_counts = serde_json::Map::new();
        let hostname = self.host.get_or_init(crate::host::hostname);
        let own = self.own_port.get().copied();
        for (name, p) in pools.iter() {
            if pool.is_some_and(|want| want != name) {
                continue;
            }
            dropped_counts.insert(name.clone(), json!(p.dropped_count));
            if want_active {
                for a in &p.active {
                    let h = lock(&a.health).clone();
                    let health = match h.up {
                        None => "unknown",
                        Some(true) => "up",
                        Some(false) => "down",
                    };
                    active.push(json!({
                        "discoveredLabels": a.target.discovered,
                        "labels": a.target.labels,
                        "scrapePool": name,
                        "scrapeUrl": a.target.url,
                        "globalUrl": global_url(&a.target.url, hostname, own),
                        "lastError": h.error,
                        "lastScrape": rfc3339(h.last_scrape),
                        "lastScrapeDuration": h.duration,
                        "health": health,
                        "scrapeInterval": p.interval,
                        "scrapeTimeout": p.timeout,
                    }));
                }
            }
            if want_dropped {
                for d in &p.dropped {
                    dropped.push(json!({ "discoveredLabels": d, "scrapePool": name }));
                }
            }
        }
        // As Prometheus 3: both lists are always there (empty when not asked for); the
        // counts are null unless dropped targets were asked for.
        let counts = if want_dropped { Value::Object(dropped_counts) } else { Value::Null };
        json!({ "activeTargets": active, "droppedTargets": dropped, "droppedTargetCounts": counts })
    }

    /// `(pool, scrape URL, health)` of every active target, for logs and tests.
    pub fn health(&self) -> Vec<(String, String, String)> {
        let pools = self.pools.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (name, p) in pools.iter() {
            for a in &p.active {
                let h = lock(&a.health);
                let s = match h.up {
                    None => "unknown",
                    Some(true) => "up",
                    Some(false) => "down",
                };
                out.push((name.clone(), a.target.url.clone(), s.to_string()));
            }
        }
        out
    }
}

struct PoolHandle {
    cfg: ScrapeConfig,
    global: GlobalConfig,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs the scrape pools; see the module docs.
pub struct Manager {
    sink: Arc<dyn Sink>,
    clock: Clock,
    runtime: tokio::runtime::Handle,
    pools: Mutex<BTreeMap<String, PoolHandle>>,
    view: Targets,
}

impl Manager {
    /// A manager with no pools. Must be called inside a tokio runtime (its loops run there).
    pub fn new(sink: Arc<dyn Sink>, clock: Clock) -> Arc<Self> {
        Arc::new(Self {
            sink,
            clock,
            runtime: tokio::runtime::Handle::current(),
            pools: Mutex::new(BTreeMap::new()),
            view: Targets::default(),
        })
    }

    /// The targets view `/api/v1/targets` serves.
    pub fn targets(&self) -> Targets {
        self.view.clone()
    }

    /// Makes the running pools match `configs` (validated first; on error nothing changes).
    /// Returns the jobs started or restarted and the jobs stopped.
    pub fn apply(&self, global: &GlobalConfig, configs: &[ScrapeConfig]) -> Result<(Vec<String>, Vec<String>)> {
        validate(global, configs)?;
        let mut pools = lock(&self.pools);
        let mut stopped = Vec::new();
        let names: Vec<String> = pools.keys().cloned().collect();
        for name in names {
            let keep =
                configs.iter().any(|c| c.job_name == name && pools[&name].cfg == *c && pools[&name].global == *global);
            if !keep {
                let p = pools.remove(&name).expect("listed");
                let _ = p.stop.send(true);
                stopped.push(name);
            }
        }
        let mut started = Vec::new();
        for c in configs {
            if pools.contains_key(&c.job_name) {
                continue;
            }
            let (tx, rx) = watch::channel(false);
            let pool = Pool::new(c, global, self.sink.clone(), self.clock.clone(), self.view.clone());
            let task = self.runtime.spawn(pool.run(rx));
            pools.insert(c.job_name.clone(), PoolHandle { cfg: c.clone(), global: global.clone(), stop: tx, task });
            started.push(c.job_name.clone());
        }
        Ok((started, stopped))
    }

    /// Stops every pool and waits until each loop wrote its stale markers.
    pub async fn stop(&self) {
        let pools: Vec<PoolHandle> = std::mem::take(&mut *lock(&self.pools)).into_values().collect();
        for p in &pools {
            let _ = p.stop.send(true);
        }
        for p in pools {
            let _ = p.task.await;
        }
    }
}

/// One job's settings, shared by its loops.
struct Pool {
    cfg: ScrapeConfig,
    global: GlobalConfig,
    interval: Duration,
    relabel: Vec<Relabel>,
    client: Arc<Client>,
    settings: Arc<Settings>,
    sink: Arc<dyn Sink>,
    clock: Clock,
    view: Targets,
    /// Set while the job has more targets than `target_limit`: every scrape fails with it.
    over_limit: Mutex<Option<String>>,
    /// The last good answer of each `http_sd_configs` entry.
    http_sd_last: Mutex<Vec<Vec<Group>>>,
}

struct LoopHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Pool {
    fn new(cfg: &ScrapeConfig, global: &GlobalConfig, sink: Arc<dyn Sink>, clock: Clock, view: Targets) -> Arc<Self> {
        let cfg = &cfg.with_global_limits(global);
        let compile = |r: &[super::relabel::RelabelConfig]| r.iter().filter_map(|r| r.compile().ok()).collect();
        let timeout = cfg.timeout(global);
        let mut limits = telltale_ingest::Limits::unlimited();
        limits.max_labels_per_series = cfg.label_limit;
        limits.max_label_name_length = cfg.label_name_length_limit;
        limits.max_label_value_length = cfg.label_value_length_limit;
        let settings = Settings {
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            metric_relabel: compile(&cfg.metric_relabel_configs),
            limits,
            sample_limit: cfg.sample_limit,
            fallback: match cfg.fallback_scrape_protocol.as_deref() {
                Some(p) if p.starts_with("OpenMetrics") => telltale_ingest::exposition::Format::OpenMetrics,
                _ => telltale_ingest::exposition::Format::Prometheus,
            },
        };
        Arc::new(Self {
            cfg: cfg.clone(),
            global: global.clone(),
            interval: cfg.interval(global),
            relabel: compile(&cfg.relabel_configs),
            client: Arc::new(Client::new(cfg, global, timeout)),
            over_limit: Mutex::new(None),
            http_sd_last: Mutex::new(Vec::new()),
            settings: Arc::new(settings),
            sink,
            clock,
            view,
        })
    }

    fn groups(&self) -> Vec<Group> {
        let mut out: Vec<Group> = self
            .cfg
            .static_configs
            .iter()
            .map(|s| Group { targets: s.targets.clone(), labels: s.labels.clone(), source: None, url: None })
            .collect();
        for sd in &self.cfg.file_sd_configs {
            out.extend(read_file_sd(sd));
        }
        let mut last = lock(&self.http_sd_last);
        last.resize(self.cfg.http_sd_configs.len(), Vec::new());
        for (i, sd) in self.cfg.http_sd_configs.iter().enumerate() {
            match sd.fetch() {
                Ok(groups) => last[i] = groups,
                // Prometheus keeps the last good answer; so does Telltale.
                Err(e) => tracing::warn!(job = %self.cfg.job_name, url = %sd.url, error = %e, "http_sd fetch failed"),
            }
            out.extend(last[i].iter().cloned());
        }
        out
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let name = self.cfg.job_name.clone();
        let mut loops: HashMap<String, LoopHandle> = HashMap::new();
        let refresh = self
            .cfg
            .file_sd_configs
            .iter()
            .map(|f| f.refresh_interval)
            .chain(self.cfg.http_sd_configs.iter().map(|h| h.refresh_interval))
            .min();
        loop {
            let me = self.clone();
            let groups = tokio::task::spawn_blocking(move || me.groups()).await.unwrap_or_default();
            self.sync(&groups, &mut loops);
            let Some(every) = refresh else {
                let _ = stop.wait_for(|s| *s).await;
                break;
            };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        for (_, l) in loops.drain() {
            let _ = l.stop.send(true);
            let _ = l.task.await;
        }
        self.view.pools.write().unwrap_or_else(|p| p.into_inner()).remove(&name);
    }

    /// Starts loops for new targets, stops those of vanished ones, and updates the view.
    fn sync(self: &Arc<Self>, groups: &[Group], loops: &mut HashMap<String, LoopHandle>) {
        let mut active: Vec<ActiveView> = Vec::new();
        let mut dropped = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let old_health: HashMap<String, Arc<Mutex<Health>>> = {
            let pools = self.view.pools.read().unwrap_or_else(|p| p.into_inner());
            pools
                .get(&self.cfg.job_name)
                .map(|p| p.active.iter().map(|a| (key(&a.target), a.health.clone())).collect())
                .unwrap_or_default()
        };
        for g in groups {
            for addr in &g.targets {
                match populate(&self.cfg, &self.global, g, addr, &self.relabel) {
                    Outcome::Dropped(d) => dropped.push(d),
                    Outcome::Active(t) => {
                        let k = key(&t);
                        if !seen.insert(k.clone()) {
                            continue; // the same target twice: scraped once, as Prometheus does
                        }
                        let health = old_health.get(&k).cloned().unwrap_or_default();
                        let target = Arc::new(*t);
                        if !loops.contains_key(&k) {
                            let (tx, rx) = watch::channel(false);
                            let task = tokio::spawn(self.clone().scrape_loop(target.clone(), health.clone(), rx));
                            loops.insert(k.clone(), LoopHandle { stop: tx, task });
                        }
                        active.push(ActiveView { target, health });
                    }
                }
            }
        }
        loops.retain(|k, l| {
            let keep = seen.contains(k);
            if !keep {
                let _ = l.stop.send(true);
            }
            keep
        });
        // As Prometheus: past target_limit no target is scraped; each scrape fails saying why.
        let limit = self.cfg.target_limit;
        *lock(&self.over_limit) = (limit > 0 && active.len() > limit)
            .then(|| format!("target_limit exceeded (number of targets: {}, limit: {limit})", active.len()));
        let dropped_count = dropped.len();
        if self.cfg.keep_dropped_targets > 0 {
            dropped.truncate(self.cfg.keep_dropped_targets);
        }
        let view = PoolView {
            active,
            dropped,
            dropped_count,
            interval: telltale_model::units::format_duration(self.interval),
            timeout: telltale_model::units::format_duration(self.cfg.timeout(&self.global)),
        };
        self.view.pools.write().unwrap_or_else(|p| p.into_inner()).insert(self.cfg.job_name.clone(), view);
    }

    async fn scrape_loop(
        self: Arc<Self>,
        target: Arc<Target>,
        health: Arc<Mutex<Health>>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Spread targets over the interval by a stable hash, as Prometheus does.
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write(target.url.as_bytes());
        let interval_ms = self.interval.as_millis().max(1) as u64;
        let offset = Duration::from_millis(h.finish() % interval_ms);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut caches = Some((Staleness::new(), Staleness::new()));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let (me, t, hl) = (self.clone(), target.clone(), health.clone());
            let mut c = caches.take().unwrap_or_default();
            let job = tokio::task::spawn_blocking(move || {
                me.scrape_once(&t, &hl, &mut c);
                c
            });
            caches = Some(job.await.unwrap_or_default());
        }
        // End of the loop: every series it wrote ends now.
        if let Some((mut series, mut reports)) = caches {
            let (sink, now) = (self.sink.clone(), (self.clock)());
            let _ = tokio::task::spawn_blocking(move || {
                let mut b = series.end(now);
                b.extend(reports.end(now));
                if b.series_count() > 0 {
                    if let Err(e) = sink.write("scrape", &b) {
                        tracing::warn!(error = %e, "cannot write stale markers");
                    }
                }
            })
            .await;
        }
    }

    fn scrape_once(&self, target: &Target, health: &Mutex<Health>, caches: &mut (Staleness, Staleness)) {
        let now = (self.clock)();
        let started = Instant::now();
        let forced = lock(&self.over_limit).clone();
        let result = forced
            .map_or_else(|| self.client.fetch(&target.url), Err)
            .and_then(|(body, ctype)| samples(&body, ctype.as_deref(), target, &self.settings, now, &mut caches.0));
        let duration = started.elapsed().as_secs_f64();
        let (mut batch, r, error) = match result {
            Ok((batch, scraped, kept, added)) => {
                (batch, Report { up: true, duration, scraped, post_relabel: kept, added }, String::new())
            }
            Err(e) => {
                // A failed scrape ends every series of the previous one, as in Prometheus.
                let mut empty = telltale_model::WriteBatch::new();
                caches.0.update(&mut empty, now);
                (empty, Report { up: false, duration, ..Report::default() }, e)
            }
        };
        batch.extend(report(target, now, &r, &mut caches.1));
        if let Err(e) = self.sink.write("scrape", &batch) {
            tracing::warn!(job = %self.cfg.job_name, target = %target.url, error = %e, "cannot store scrape");
        }
        if !error.is_empty() {
            tracing::debug!(job = %self.cfg.job_name, target = %target.url, error = %error, "scrape failed");
        }
        *lock(health) = Health { last_scrape: Some(now), duration, error, up: Some(r.up) };
    }
}

/// A target's identity: all its labels after relabeling.
fn key(t: &Target) -> String {
    let mut k = String::new();
    for (n, v) in &t.all {
        k.push_str(n);
        k.push('\u{1}');
        k.push_str(v);
        k.push('\u{2}');
    }
    k
}

#[cfg(test)]
mod tests {
    use super::global_url;

    #[test]
    fn global_urls_name_this_host_for_loopback_targets() {
        let g = |u: &str| global_url(u, "vm", Some(7070));
        assert_eq!(g("http://127.0.0.1:9100/metrics"), "http://vm:9100/metrics");
        assert_eq!(g("https://localhost:9100/m?x=1"), "https://vm:9100/m?x=1");
        assert_eq!(g("http://[::1]:9100/metrics"), "http://vm:9100/metrics");
        assert_eq!(g("https://127.0.0.1:7070/metrics"), "http://vm:7070/metrics");
        assert_eq!(g("http://10.0.0.1:9100/metrics"), "http://10.0.0.1:9100/metrics");
        assert_eq!(g("http://localhost/metrics"), "http://vm/metrics");
    }
}
