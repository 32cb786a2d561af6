//! `telltale agent`: the host collectors and `scrape_configs` of a Telltale config, shipped by
//! Prometheus remote write to a server, buffered on disk while it is unreachable; and the
//! files of `logs.files`, tailed and pushed to the server's Loki push API.
//!
//! Reads the same YAML file as `serve` (its `collectors`, `global`, `scrape_configs`,
//! `logs.files` and `agent` sections; the server's other sections are accepted and ignored).
//! SIGTERM/SIGINT: stop collecting (stale markers are queued), give the sender
//! `agent.drain_timeout` to empty the queue, sync it, exit 0. What is still queued is sent
//! after the next start.
//!
//! Tailed files need no queue of their own: the files are the buffer. Each poll of a
//! `logs.files` entry (at most [`FILE_READ_BUDGET`]) is one push, and its offsets are checkpointed
//! only after the server acknowledged it; while the server is away the same push is retried
//! and nothing more is read. A restart resumes at the checkpoint, so the one way to repeat
//! lines is a crash between the acknowledgement and the checkpoint (a file write and rename),
//! chosen over the other order, which could lose them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use telltale_api::system_now_ms;
use telltale_collect::agent::{self, Delivery, Queue, QueueSink, Stats};
use telltale_collect::scrape::Manager;
use telltale_collect::Sink;
use telltale_filetail::Tailer;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{self, Overrides};
use crate::logs::{file_batch, LineClock, FILE_READ_BUDGET};

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
    let (tail_stop, tail_rx) = mpsc::channel();
    let tail = start_files(&config, &data_dir, client.clone(), stats.clone(), tail_rx)?;
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
    let _ = tail_stop.send(());
    let _ = tokio::task::spawn_blocking(move || shipper.join()).await;
    if let Some(t) = tail {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
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
        sent_log_lines = g(&stats.sent_log_lines),
        dropped_rejected_log_lines = g(&stats.dropped_rejected_log_lines),
        log_push_retries = g(&stats.log_push_retries),
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

/// One entry of `logs.files`, followed.
struct Source {
    tailer: Tailer,
    /// Its configured labels plus the external labels it does not set itself.
    labels: Vec<(String, String)>,
}

/// What the tailing thread pushes with.
struct Pusher {
    client: agent::Client,
    opts: agent::Options,
    url: String,
    stats: Arc<Stats>,
}

/// Starts following `logs.files` on a thread of its own (see the module docs); `None` when
/// there are none.
fn start_files(
    config: &config::Config,
    data_dir: &Path,
    client: agent::Client,
    stats: Arc<Stats>,
    stop: mpsc::Receiver<()>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    let files = &config.logs.files;
    if files.is_empty() {
        return Ok(None);
    }
    let url = config.agent.logs_push_url().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut sources = Vec::new();
    for (tailer, mut labels) in config.logs.open_tailers(&data_dir.join("logs"))? {
        for (k, v) in &config.global.external_labels {
            if !labels.iter().any(|(n, _)| n == k) {
                labels.push((k.clone(), v.clone()));
            }
        }
        sources.push(Source { tailer, labels });
    }
    info!(files = files.len(), logs_push = %url, "tailing files");
    let pusher = Pusher { client, opts: config.agent.clone(), url, stats };
    let every = config.logs.files_poll_interval;
    let t = std::thread::Builder::new()
        .name("telltale-tail".into())
        .spawn(move || tail_files(sources, &pusher, every, &stop))?;
    Ok(Some(t))
}

/// Polls every source, pushes what it read and checkpoints once the server took it; waits
/// `every` between rounds unless a poll left more to read. On `stop`: one more round (what
/// was written until then), retries ending `drain_timeout` after the stop.
fn tail_files(mut sources: Vec<Source>, pusher: &Pusher, every: Duration, stop: &mpsc::Receiver<()>) {
    let mut stopping: Option<Instant> = None;
    let mut clock = LineClock::default();
    loop {
        let mut more = false;
        for src in &mut sources {
            if stopping.is_some_and(|at| at.elapsed() >= pusher.opts.drain_timeout) {
                return;
            }
            let poll = src.tailer.poll_at_most(FILE_READ_BUDGET);
            for p in &poll.problems {
                warn!(problem = %p, "file tailing");
            }
            more |= poll.more;
            if poll.files.is_empty() {
                continue;
            }
            let batch = file_batch(poll.files, &src.labels, system_now_ms().saturating_mul(1_000_000), &mut clock);
            let lines = batch.entry_count() as u64;
            let attempt = || agent::push_logs(&pusher.client, &pusher.opts, &pusher.url, &batch);
            let stats = &pusher.stats;
            match agent::deliver(&pusher.opts, "log push", &stats.log_push_retries, stop, &mut stopping, attempt) {
                Delivery::Sent => {
                    stats.sent_log_lines.fetch_add(lines, Ordering::Relaxed);
                }
                Delivery::Rejected(why) => {
                    // Checkpointed all the same: the server will never take these lines, and
                    // retrying them forever would stop the file from being followed.
                    stats.dropped_rejected_log_lines.fetch_add(lines, Ordering::Relaxed);
                    warn!(lines, error = %why, "log push refused; lines dropped");
                }
                Delivery::Abandoned => {
                    warn!(
                        lines,
                        "log push not acknowledged before agent.drain_timeout; read again after the next start"
                    );
                    return;
                }
            }
            if let Err(e) = src.tailer.commit() {
                warn!(error = %e, "cannot checkpoint tailed files");
            }
        }
        if let Some(at) = stopping {
            if !more || at.elapsed() >= pusher.opts.drain_timeout {
                return;
            }
        } else if !more {
            match stop.recv_timeout(every) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => stopping = Some(Instant::now()),
            }
        }
    }
}
