//! `telltale serve`: open the listener, then the store, serve until SIGTERM/SIGINT, reload
//! on SIGHUP or `POST /-/reload`, and close the store after the last request.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use telltale_api::{metrics, system_now_ms, AppState, Limits};
use telltale_collect::scrape::Manager;
use telltale_logstore::LogDb;
use telltale_model::units;
use telltale_storage::{Maintenance, MetricStore};
use telltale_tsdb::Tsdb;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::{self, changed_keys, is_live, Config, Overrides};

/// How long shutdown waits for in-flight requests before closing the store anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The file, under the data directory, holding the address actually bound (useful with
/// port 0; the test kit reads it).
pub(crate) const ADDR_FILE: &str = "telltale.addr";

/// Runs the server until a terminating signal. Errors are startup failures.
pub(crate) fn run(config_path: Option<PathBuf>, flags: Overrides) -> anyhow::Result<()> {
    init_tracing();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let config = config::load(config_path.as_deref(), &env, &flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start runtime")?;
    runtime.block_on(serve(config, Source { path: config_path, env, flags }))
}

pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

/// Where the configuration came from, to read it again on reload.
struct Source {
    path: Option<PathBuf>,
    env: BTreeMap<String, String>,
    flags: Overrides,
}

fn api_limits(c: &Config) -> Limits {
    Limits::new(c.server.max_body_size, c.limits.clone(), c.otlp.clone())
        .with_query(c.query.engine_options())
        .with_logs(c.logs.limits.clone(), c.logs.rates.clone(), c.logs.engine_options())
}

async fn serve(config: Config, source: Source) -> anyhow::Result<()> {
    let config_path = source.path.clone();
    // Rule files are read before anything starts, so a broken one stops startup.
    let groups = crate::alerting::load_groups(&config, config_path.as_deref()).map_err(anyhow::Error::msg)?;
    let data_dir = config.storage.data_dir.clone();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let addr = config::listen_addr(&config.server.listen).map_err(anyhow::Error::msg)?;
    let auth = open_auth(&config, &source.env, addr)?;
    let sealed = crate::secrets::open(&config)?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    write_addr_file(&data_dir, bound)?;

    let state = AppState::new(api_limits(&config), Arc::new(system_now_ms));
    let auth_store = auth.store.clone();
    let tls_web = auth.web.clone().filter(|_| auth.tls);
    state.set_auth(Arc::new(auth));
    state.set_receivers(telltale_api::receivers::Receivers::new(sealed));
    state.set_config_yaml(config::redacted_yaml(&config));
    let dashboards_dir = data_dir.join("dashboards");
    let dashboards =
        telltale_dashboards::Store::open(&dashboards_dir, config.dashboards.clone(), telltale_ui::builtin_dashboards())
            .with_context(|| format!("cannot open the dashboards in {}", dashboards_dir.display()))?;
    state.set_dashboards(Arc::new(dashboards));
    let scraper: Arc<OnceLock<Arc<Manager>>> = Arc::default();
    let sender = telltale_notify::Sender::default();
    state.set_reloader(reloader(source, config.clone(), state.clone(), scraper.clone(), sender.clone()));
    let retention = units::format_duration(config.storage.tsdb.retention_time);
    state.update_runtime(|r| r.storage_retention = retention);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut stop = stop_rx.clone();
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let app = telltale_api::router(state.clone());
    let server = match tls_web {
        Some(web) => {
            let listener = crate::listener::TlsListener::new(listener, web)?;
            tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(shutdown).into_future())
        }
        None => {
            // No Nagle: a response's last small write must not wait for the client's delayed ACK
            // (on a keep-alive connection that cost about 4 ms per request, as Grafana's are).
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    warn!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(shutdown).into_future())
        }
    };
    info!(addr = %bound, data_dir = %data_dir.display(), "listening");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;

    let (open_dir, opts) = (data_dir.join("metrics"), config.storage.tsdb.clone());
    let tsdb = tokio::select! {
        s = tokio::task::spawn_blocking(move || Tsdb::open(&open_dir, &opts)) => {
            let dir = data_dir.join("metrics");
            Arc::new(s.context("store open task failed")?.with_context(|| format!("cannot open the metrics store in {}", dir.display()))?)
        }
        _ = term.recv() => return stop_early(stop_tx, server).await,
        _ = int.recv() => return stop_early(stop_tx, server).await,
    };
    for problem in tsdb.problems() {
        warn!(problem = %problem, "storage problem found on open");
    }
    let (logs_dir, logs_opts) = (data_dir.join("logs"), config.storage.logs.clone());
    let logdb = tokio::select! {
        s = tokio::task::spawn_blocking(move || LogDb::open(&logs_dir, &logs_opts)) => {
            let dir = data_dir.join("logs");
            Arc::new(s.context("log store open task failed")?.with_context(|| format!("cannot open the log store in {}", dir.display()))?)
        }
        _ = term.recv() => return stop_early(stop_tx, server).await,
        _ = int.recv() => return stop_early(stop_tx, server).await,
    };
    for problem in logdb.problems() {
        warn!(problem = %problem, "log storage problem found on open");
    }
    state.set_log_store(logdb.clone());
    let (traces_dir, cfg) = (data_dir.join("traces"), config.clone());
    let traces = tokio::select! {
        s = tokio::task::spawn_blocking(move || crate::traces::open(&traces_dir, &cfg)) => {
            s.context("trace store open task failed")?.map_err(anyhow::Error::msg)?
        }
        _ = term.recv() => return stop_early(stop_tx, server).await,
        _ = int.recv() => return stop_early(stop_tx, server).await,
    };
    state.set_traces(traces.clone());
    state.set_sql(Arc::new(crate::logs::Sql {
        engine: telltale_sql::SqlEngine::new(logdb.clone(), config.logs.sql.options()),
        runtime: tokio::runtime::Handle::current(),
    }));
    let store: Arc<dyn MetricStore> = tsdb.clone();
    state.set_store(store.clone());
    let mut tasks = Vec::new();
    let every = config.server.self_scrape_interval;
    if !every.is_zero() {
        // One scrape before announcing readiness, so own metrics are queryable from the start.
        let (st, sto) = (state.clone(), store.clone());
        let _ = tokio::task::spawn_blocking(move || scrape_once(&st, sto.as_ref(), bound)).await;
        tasks.push(tokio::spawn(self_scrape(state.clone(), store.clone(), bound, every, stop_rx.clone())));
    }
    let sink: Arc<dyn telltale_collect::Sink> = Arc::new(StoreSink { state: state.clone(), store: store.clone() });
    let clock: telltale_collect::scrape::Clock = Arc::new(system_now_ms);
    if config.collectors.enabled {
        tasks.push(tokio::spawn(telltale_collect::host::run(
            config.collectors.clone(),
            sink.clone(),
            clock.clone(),
            stop_rx.clone(),
        )));
    } else {
        info!("host collectors off (collectors.enabled: false)");
    }
    let manager = Manager::new(sink.clone(), clock);
    let (jobs, _) = manager.apply(&config.global, &config.scrape_configs).context("cannot start scraping")?;
    if !jobs.is_empty() {
        info!(jobs = %jobs.join(","), "scraping");
    }
    manager.targets().set_own_port(bound.port());
    state.set_targets(manager.targets());
    let _ = scraper.set(manager.clone());
    tasks.extend(upkeep(&config, &tsdb, &logdb, &stop_rx));
    tasks.extend(crate::traces::upkeep(&config, Some(&state), &traces, &store, &stop_rx));
    tasks.push(tokio::spawn(periodic(Duration::from_secs(60), stop_rx.clone(), "auth usage", {
        let store = auth_store.clone();
        move || store.flush_usage(system_now_ms())
    })));
    let tenants = Tenants::default();
    state.set_tenant_opener(tenants.opener(&config, tokio::runtime::Handle::current(), stop_rx.clone()));
    let external_url = crate::alerting::external_url(&config, bound);
    let am = state.alertmanager().clone();
    if let Err(e) = am.persist_to(data_dir.join("alerting")) {
        warn!(error = %e, "cannot read saved silences or notification log; starting without them");
    }
    crate::alerting::configure(&state, &sender, &config, config_path.as_deref(), &external_url)
        .map_err(anyhow::Error::msg)?;
    tasks.push(tokio::spawn({
        let stop = stop_rx.clone();
        let notifier: Arc<dyn telltale_notify::Notifier> = Arc::new(sender.clone());
        async move { am.run(notifier, Arc::new(system_now_ms), stop).await }
    }));
    let rules = state.rules().clone();
    if let Err(e) = rules.persist_to(data_dir.join("alerting").join("rules_state.json")) {
        warn!(error = %e, "cannot read the saved alert state; alerts start afresh");
    }
    rules.set_groups(groups);
    let ctx = crate::alerting::eval_context(store.clone(), logdb.clone(), &config, external_url.clone());
    let send = crate::alerting::sender(&state);
    tasks.push(tokio::spawn({
        let stop = stop_rx.clone();
        async move { rules.run(ctx, Arc::new(system_now_ms), send, stop).await }
    }));
    tasks.extend(crate::syslog::start(&config.logs.syslog, state.clone(), stop_rx.clone()).await?);
    tasks.extend(crate::otlpgrpc::start(&config, state.clone(), stop_rx.clone()).await?);
    tasks.extend(crate::logs::start_files(&config.logs, &config.storage.data_dir, state.clone(), stop_rx.clone())?);
    info!("ready");

    loop {
        tokio::select! {
            _ = term.recv() => { info!(signal = "SIGTERM", "shutting down"); break }
            _ = int.recv() => { info!(signal = "SIGINT", "shutting down"); break }
            _ = hup.recv() => reload_now(&state).await,
        }
    }
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(Ok(Ok(()))) => info!("in-flight requests finished"),
        Ok(Ok(Err(e))) => error!(error = %e, "http server failed"),
        Ok(Err(e)) => error!(error = %e, "http server task failed"),
        Err(_) => {
            warn!(timeout_s = DRAIN_TIMEOUT.as_secs(), "requests still running at shutdown; closing the store anyway")
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    tenants.close().await;
    manager.stop().await;
    drop(sink);
    drop(store);
    if let Err(e) = tokio::task::spawn_blocking(move || auth_store.flush_usage(system_now_ms())).await? {
        warn!(error = %e, "cannot write the tokens' last use at shutdown");
    }
    tokio::task::spawn_blocking(move || close_store(tsdb)).await.context("store close task failed")??;
    tokio::task::spawn_blocking(move || traces.db().sync_wal())
        .await
        .context("trace store close task failed")?
        .context("cannot sync the trace WAL at shutdown")?;
    tokio::task::spawn_blocking(move || logdb.sync_wal())
        .await
        .context("log store close task failed")?
        .context("cannot sync the log WAL at shutdown")?;
    info!("stopped");
    Ok(())
}

/// The periodic upkeep of one tenant's stores: metrics and logs maintenance (blocks,
/// compaction, retention), log compaction when idle, flushing frozen log heads, WAL syncs.
fn upkeep(
    config: &Config,
    tsdb: &Arc<Tsdb>,
    logdb: &Arc<LogDb>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let every = config.storage.maintenance_interval;
    let mut tasks = vec![
        tokio::spawn(periodic(every, stop.clone(), "maintenance", {
            let tsdb = tsdb.clone();
            move || tsdb.maintain(system_now_ms())
        })),
        tokio::spawn(periodic(every, stop.clone(), "log maintenance", {
            let logdb = logdb.clone();
            move || logdb.maintain(system_now_ms())
        })),
        tokio::spawn(periodic(Duration::from_secs(1), stop.clone(), "log compaction", {
            let logdb = logdb.clone();
            move || logdb.compact_when_idle()
        })),
        // Writers freeze a full log head and go on; this writes frozen heads out as segments.
        tokio::spawn(periodic(Duration::from_millis(200), stop.clone(), "log flush", {
            let logdb = logdb.clone();
            move || logdb.flush_pending()
        })),
    ];
    if let Some(every) = config.storage.logs.wal.fsync_interval().filter(|d| !d.is_zero()) {
        tasks.push(tokio::spawn(periodic(every, stop.clone(), "log wal sync", {
            let logdb = logdb.clone();
            move || logdb.sync_wal()
        })));
    }
    if let Some(every) = config.storage.tsdb.wal.fsync.interval() {
        tasks.push(tokio::spawn(periodic(every, stop.clone(), "wal sync", {
            let tsdb = tsdb.clone();
            move || tsdb.sync_wal()
        })));
    }
    tasks
}

/// A tenant's metrics and log stores, kept to sync their WALs at shutdown.
type TenantDbs = (Arc<Tsdb>, Arc<LogDb>, Arc<telltale_api::TraceService>);

/// The stores of tenants other than the default one, opened under `DATA_DIR/tenants/<id>/` the
/// first time a request names the tenant, with the same upkeep; closed at shutdown.
#[derive(Default, Clone)]
struct Tenants {
    open: Arc<Mutex<Vec<TenantDbs>>>,
    upkeep: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Tenants {
    fn opener(
        &self,
        config: &Config,
        runtime: tokio::runtime::Handle,
        stop: watch::Receiver<bool>,
    ) -> telltale_api::TenantOpener {
        let (me, config) = (self.clone(), config.clone());
        Arc::new(move |id: &str| {
            let dir = config.storage.data_dir.join("tenants").join(id);
            let tsdb = Arc::new(
                Tsdb::open(&dir.join("metrics"), &config.storage.tsdb)
                    .map_err(|e| format!("cannot open its metrics store: {e}"))?,
            );
            let logdb = Arc::new(
                LogDb::open(&dir.join("logs"), &config.storage.logs)
                    .map_err(|e| format!("cannot open its log store: {e}"))?,
            );
            let dashboards = telltale_dashboards::Store::open(
                &dir.join("dashboards"),
                config.dashboards.clone(),
                telltale_ui::builtin_dashboards(),
            )
            .map_err(|e| format!("cannot open its dashboards: {e}"))?;
            let sql = crate::logs::Sql {
                engine: telltale_sql::SqlEngine::new(logdb.clone(), config.logs.sql.options()),
                runtime: runtime.clone(),
            };
            let traces = crate::traces::open(&dir.join("traces"), &config)?;
            let tasks = {
                let _in_runtime = runtime.enter();
                let metrics: Arc<dyn MetricStore> = tsdb.clone();
                let mut t = upkeep(&config, &tsdb, &logdb, &stop);
                t.extend(crate::traces::upkeep(&config, None, &traces, &metrics, &stop));
                t
            };
            me.upkeep.lock().unwrap_or_else(|p| p.into_inner()).extend(tasks);
            me.open.lock().unwrap_or_else(|p| p.into_inner()).push((tsdb.clone(), logdb.clone(), traces.clone()));
            Ok(telltale_api::TenantStores {
                metrics: tsdb,
                logs: logdb,
                sql: Some(Arc::new(sql)),
                dashboards: Some(Arc::new(dashboards)),
                traces: Some(traces),
            })
        })
    }

    /// After the stop signal: waits for the upkeep, then syncs every tenant's WALs.
    async fn close(&self) {
        let tasks = std::mem::take(&mut *self.upkeep.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|p| p.into_inner()));
        let synced = tokio::task::spawn_blocking(move || {
            for (tsdb, logdb, traces) in open {
                if let Err(e) = traces.db().sync_wal() {
                    warn!(error = %e, "cannot sync a tenant's trace WAL at shutdown");
                }
                if let Err(e) = tsdb.sync_wal() {
                    warn!(error = %e, "cannot sync a tenant's metrics WAL at shutdown");
                }
                if let Err(e) = logdb.sync_wal() {
                    warn!(error = %e, "cannot sync a tenant's log WAL at shutdown");
                }
            }
        });
        let _ = synced.await;
    }
}

/// Authentication from the config: the auth store (with the bootstrap admin), the web config
/// file, and the safe default: without any authentication, only loopback.
fn open_auth(config: &Config, env: &BTreeMap<String, String>, addr: SocketAddr) -> anyhow::Result<telltale_api::Auth> {
    let web = match &config.server.web_config_file {
        Some(path) => Some(Arc::new(
            telltale_auth::WebConfigFile::open(path).with_context(|| format!("web config {}", path.display()))?,
        )),
        None => None,
    };
    let loaded = web.as_ref().map(|w| w.current());
    let web_users = loaded.as_ref().is_some_and(|l| l.config.users().is_some());
    let tls = loaded.as_ref().is_some_and(|l| l.tls.is_some());
    let required = config.auth.enabled || web_users;
    if !required {
        if !addr.ip().is_loopback() && !config.server.insecure_no_auth {
            anyhow::bail!(
                "refusing to listen on {addr} without authentication: anyone who can reach it could read, write and \
                 delete data. Turn on auth (auth.enabled with auth.admin, or --web.config.file with basic_auth_users), \
                 listen on 127.0.0.1, or pass --insecure-no-auth if the network in front is trusted"
            );
        }
        if addr.ip().is_loopback() {
            info!("authentication is off, so only loopback is served; see docs/security.md to expose Telltale");
        } else {
            warn!(addr = %addr, "authentication is off and the listener is not loopback (--insecure-no-auth)");
        }
    }
    let dir = config.storage.data_dir.join("auth");
    let store = telltale_auth::AuthStore::open(&dir, config.auth.policy())
        .with_context(|| format!("cannot open the auth store in {}", dir.display()))?;
    if let Some(admin) = &config.auth.admin {
        let password = admin.resolve_password(env)?;
        if store.ensure_user(&admin.user, &password, telltale_auth::Role::Admin, system_now_ms())? {
            info!(user = %admin.user, "admin user created from auth.admin");
        }
    }
    if config.auth.enabled && store.is_empty() && !web_users {
        warn!("auth is enabled but no user, service account or web config user exists: set auth.admin, or run `telltale user add` or `telltale token create`");
    }
    if tls {
        info!("TLS is on (web config)");
    }
    let mut auth = telltale_api::Auth::new(Arc::new(store), web, required, config.auth.default_tenant.clone(), tls);
    if let Some(o) = &config.auth.oidc {
        let redirect_url = match (o.redirect_url.as_str(), config.server.external_url.as_str()) {
            ("", "") => None,
            ("", base) => Some(format!("{}/api/v1/auth/oidc/callback", base.trim_end_matches('/'))),
            (url, _) => Some(url.to_string()),
        };
        info!(issuer = %o.issuer_url, redirect_url = ?redirect_url, "single sign-on through OpenID Connect");
        auth.oidc = Some(telltale_api::OidcSetup { options: o.clone(), secret: o.resolve_secret(env)?, redirect_url });
    }
    Ok(auth)
}

async fn stop_early(
    stop_tx: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) -> anyhow::Result<()> {
    info!("shutting down before the store was open");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, server).await;
    Ok(())
}

/// Syncs the WAL and closes the store. Every acknowledged write is already in the WAL; this
/// makes sure it is on disk too.
fn close_store(tsdb: Arc<Tsdb>) -> anyhow::Result<()> {
    match Arc::try_unwrap(tsdb) {
        Ok(tsdb) => tsdb.close().context("cannot close the metrics store")?,
        // The reload closure still holds the state (and so the store); syncing is what closing does.
        Err(tsdb) => tsdb.sync_wal().context("cannot sync the WAL at shutdown")?,
    }
    Ok(())
}

/// Runs `job` on the blocking pool every `every` until shutdown, logging failures.
pub(crate) async fn periodic<E: std::fmt::Display + Send + 'static>(
    every: Duration,
    mut stop: watch::Receiver<bool>,
    name: &'static str,
    job: impl Fn() -> Result<(), E> + Send + Sync + Clone + 'static,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let job = job.clone();
        match tokio::task::spawn_blocking(job).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(task = name, error = %e, "periodic task failed"),
            Err(e) => warn!(task = name, error = %e, "periodic task panicked"),
        }
    }
}

fn write_addr_file(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let tmp = data_dir.join(format!("{ADDR_FILE}.tmp"));
    std::fs::write(&tmp, format!("{addr}\n")).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, data_dir.join(ADDR_FILE)).with_context(|| format!("cannot write {ADDR_FILE}"))?;
    Ok(())
}

/// The function `/-/reload` and SIGHUP run: load the config again the same way, apply what
/// can change live, and name what needs a restart.
fn reloader(
    source: Source,
    running: Config,
    state: AppState,
    scraper: Arc<OnceLock<Arc<Manager>>>,
    sender: telltale_notify::Sender,
) -> telltale_api::Reloader {
    let running = Mutex::new(running);
    Arc::new(move || {
        let new = config::load(source.path.as_deref(), &source.env, &source.flags).map_err(|e| e.to_string())?;
        let groups = crate::alerting::load_groups(&new, source.path.as_deref())?;
        let url = state.alertmanager().external_url();
        crate::alerting::configure(&state, &sender, &new, source.path.as_deref(), &url)?;
        state.rules().set_groups(groups);
        let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
        let (live, restart): (Vec<String>, Vec<String>) =
            changed_keys(&running, &new).into_iter().partition(|k| is_live(k));
        if let Some(m) = scraper.get() {
            let (started, stopped) = m.apply(&new.global, &new.scrape_configs).map_err(|e| e.to_string())?;
            if !started.is_empty() || !stopped.is_empty() {
                info!(started = %started.join(","), stopped = %stopped.join(","), "scrape jobs changed");
            }
        }
        running.global = new.global.clone();
        running.scrape_configs = new.scrape_configs.clone();
        state.set_limits(api_limits(&new));
        running.server.max_body_size = new.server.max_body_size;
        running.limits = new.limits.clone();
        running.otlp = new.otlp.clone();
        running.query = new.query.clone();
        running.logs.limits = new.logs.limits.clone();
        running.logs.rates = new.logs.rates.clone();
        running.logs.query = new.logs.query.clone();
        running.rule_files = new.rule_files.clone();
        running.rules = new.rules.clone();
        running.alerting = new.alerting.clone();
        state.set_config_yaml(config::redacted_yaml(&running));
        if !restart.is_empty() {
            warn!(settings = %restart.join(", "), "changed settings need a restart to apply");
        }
        info!(applied = %live.join(", "), "config reloaded");
        let mut summary = String::from("config reloaded");
        if live.is_empty() && restart.is_empty() {
            summary.push_str("; nothing changed");
        }
        if !live.is_empty() {
            summary.push_str(&format!("; applied: {}", live.join(", ")));
        }
        if !restart.is_empty() {
            summary.push_str(&format!("; needs a restart: {}", restart.join(", ")));
        }
        Ok(summary)
    })
}

async fn reload_now(state: &AppState) {
    info!(signal = "SIGHUP", "reloading config");
    let Some(reload) = state.reloader() else { return };
    match tokio::task::spawn_blocking(move || reload()).await {
        Ok(Ok(summary)) => state.audit("config_reloaded", "signal:SIGHUP", serde_json::json!({"applied": summary})),
        Ok(Err(reason)) => {
            error!(error = %reason, "config not reloaded");
            state.audit("config_reload_failed", "signal:SIGHUP", serde_json::json!({"reason": reason}));
        }
        Err(e) => error!(error = %e, "reload task failed"),
    }
}

/// Writes Telltale's own metrics into its store every `every`, as a scrape would, so they
/// can be queried (`{job="telltale"}`).
async fn self_scrape(
    state: AppState,
    store: Arc<dyn MetricStore>,
    instance: SocketAddr,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let (state, store) = (state.clone(), store.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || scrape_once(&state, store.as_ref(), instance)).await {
            warn!(error = %e, "self-scrape task failed");
        }
    }
}

fn scrape_once(state: &AppState, store: &dyn MetricStore, instance: SocketAddr) {
    let instance = instance.to_string();
    let mut stats = store.stats();
    if let Ok(logs) = state.default_log_store() {
        stats.extend(logs.stats());
    }
    let families = state.families(&stats);
    let batch = metrics::to_batch(&families, state.now_ms(), &[("job", "telltale"), ("instance", &instance)]);
    if let Err(e) = store.write(&batch) {
        warn!(error = %e, "cannot store own metrics");
    }
}

/// Host metrics and scrapes go into the store like every other write, counted under their
/// source (`collectors`, `scrape`).
struct StoreSink {
    state: AppState,
    store: Arc<dyn MetricStore>,
}

impl telltale_collect::Sink for StoreSink {
    fn write(&self, source: &'static str, batch: &telltale_model::WriteBatch) -> telltale_collect::Result<()> {
        match self.state.write_counted(self.store.as_ref(), source, batch) {
            Ok(_) => Ok(()),
            Err(e) => Err(telltale_collect::Error::Sink(e.to_string())),
        }
    }
}
