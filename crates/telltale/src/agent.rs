//! `telltale agent`: the host collectors and `scrape_configs` of a Telltale config, shipped by
//! Prometheus remote write to a server, buffered on disk while it is unreachable.
//!
//! Reads the same YAML file as `serve` (its `collectors`, `global`, `scrape_configs` and
//! `agent` sections; the server's sections are accepted and ignored). SIGTERM/SIGINT: stop
//! collecting (stale markers are queued), give the sender `agent.drain_timeout` to empty the
//! queue, sync it, exit 0. What is still queued is sent after the next start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context;
use telltale_api::system_now_ms;
use telltale_collect::agent::{self, Queue, QueueSink, Stats};
use telltale_collect::scrape::Manager;
use telltale_collect::Sink;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{self, Overrides};

/// Runs the agent until a terminating signal.
pub(crate) fn run(url: Option<String>, config_path: Option<PathBuf>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    crate::serve::init_tracing();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut config = config::load(config_path.as_deref(), &env, &Overrides::default())?;
    if let Some(u) = url {
        config.agent.remote_write_url = u;
    }
    config.agent.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        !config.agent.remote_write_url.is_empty(),
        "no remote write URL: give --remote-write URL or agent.remote_write_url"
    );
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("./telltale-agent-data"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .context("cannot start runtime")?;
    runtime.block_on(agent_main(config, data_dir))
}

async fn agent_main(config: config::Config, data_dir: PathBuf) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::default());
    let qdir = data_dir.join("queue");
    let queue = Queue::open(&qdir, config.agent.max_queue_size, stats.clone())
        .with_context(|| format!("cannot open the queue in {}", qdir.display()))?;
    let sink: Arc<dyn Sink> =
        Arc::new(QueueSink::new(queue.clone(), config.agent.max_series_per_send, &config.global.external_labels));
    let url = config.agent.remote_write_url.clone();
    let client = agent::client(&config.agent).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (ship_stop, ship_rx) = mpsc::channel();
    let shipper = {
        let (q, s, o, u) = (queue.clone(), stats.clone(), config.agent.clone(), url.clone());
        std::thread::Builder::new()
            .name("telltale-ship".into())
            .spawn(move || agent::ship(q, s, o, client, u, ship_rx))?
    };
    let clock: telltale_collect::scrape::Clock = Arc::new(system_now_ms);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if config.collectors.enabled {
        tasks.push(tokio::spawn(telltale_collect::host::run(
            config.collectors.clone(),
            sink.clone(),
            clock.clone(),
            stop_rx.clone(),
        )));
    }
    let instance = config.collectors.instance_label();
    tasks.push(tokio::spawn(own_metrics(
        stats.clone(),
        sink.clone(),
        instance,
        config.collectors.interval,
        stop_rx.clone(),
    )));
    let manager = Manager::new(sink.clone(), clock);
    manager.apply(&config.global, &config.scrape_configs).context("cannot start scraping")?;
    info!(remote_write = %url, data_dir = %data_dir.display(), "agent running");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => info!(signal = "SIGINT", "shutting down"),
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    manager.stop().await;
    // A last own-metrics sample, so the server holds the counters as they end.
    let last = stats
        .to_batch(&[("job", "telltale-agent"), ("instance", &config.collectors.instance_label())], system_now_ms());
    if let Err(e) = sink.write("agent", &last) {
        warn!(error = %e, "cannot queue own metrics");
    }
    let _ = ship_stop.send(());
    let _ = tokio::task::spawn_blocking(move || shipper.join()).await;
    queue.close();
    let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    if !queue.is_drained() {
        warn!("the queue was not drained before shutdown; the rest is sent after the next start");
    }
    info!(
        enqueued_samples = g(&stats.enqueued_samples),
        sent_samples = g(&stats.sent_samples),
        dropped_full = g(&stats.dropped_full_samples),
        dropped_rejected = g(&stats.dropped_rejected_samples),
        retries = g(&stats.retries),
        "stopped"
    );
    Ok(())
}

/// Queues the agent's own counters (`telltale_agent_*`, `job="telltale-agent"`) every `every`.
async fn own_metrics(
    stats: Arc<Stats>,
    sink: Arc<dyn Sink>,
    instance: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let b = stats.to_batch(&[("job", "telltale-agent"), ("instance", &instance)], system_now_ms());
        let sink = sink.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = sink.write("agent", &b) {
                warn!(error = %e, "cannot queue own metrics");
            }
        })
        .await;
    }
}
