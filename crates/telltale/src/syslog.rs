//! Syslog listeners (`logs.syslog.udp`, `logs.syslog.tcp`): datagrams and TCP streams are
//! framed and decoded by `telltale_ingest::syslog` and written through the same limits and
//! counters as the HTTP log paths.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use telltale_api::AppState;
use telltale_ingest::syslog;
use telltale_model::units;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// `logs.syslog:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SyslogConfig {
    /// UDP address to receive syslog datagrams on (`127.0.0.1:5514`); empty: off.
    pub(crate) udp: String,
    /// TCP address for octet-counted or newline-framed syslog (`127.0.0.1:5514`); empty: off.
    pub(crate) tcp: String,
    /// Longest message kept; longer ones are cut (then `logs.limits.max_line_size` applies).
    #[serde(with = "units::size")]
    pub(crate) max_message_size: u64,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self { udp: String::new(), tcp: String::new(), max_message_size: 64 << 10 }
    }
}

impl SyslogConfig {
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        for (key, v) in [("logs.syslog.udp", &self.udp), ("logs.syslog.tcp", &self.tcp)] {
            if !v.is_empty() {
                crate::config::listen_addr(v).map_err(|e| (key.to_string(), e))?;
            }
        }
        Ok(())
    }
}

fn store(state: &AppState, messages: &[Vec<u8>]) {
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let now = state.now_ms().saturating_mul(1_000_000);
    let limits = state.limits();
    match syslog::decode(&refs, now, &limits.logs) {
        Ok(batch) => {
            if let Err(e) = state.write_logs("syslog", &batch) {
                warn!(error = %e, lines = batch.entry_count(), "syslog lines not stored");
            }
        }
        Err(e) => warn!(error = %e, "syslog messages refused"),
    }
}

/// Binds the configured listeners and serves them until `stop`.
pub(crate) async fn start(
    cfg: &SyslogConfig,
    state: AppState,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    let max = cfg.max_message_size as usize;
    if !cfg.udp.is_empty() {
        let addr = crate::config::listen_addr(&cfg.udp).map_err(anyhow::Error::msg)?;
        let sock =
            tokio::net::UdpSocket::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on udp {addr}: {e}"))?;
        info!(proto = "udp", addr = %sock.local_addr()?, "syslog listening");
        tasks.push(tokio::spawn(udp(sock, state.clone(), stop.clone(), max)));
    }
    if !cfg.tcp.is_empty() {
        let addr = crate::config::listen_addr(&cfg.tcp).map_err(anyhow::Error::msg)?;
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on tcp {addr}: {e}"))?;
        info!(proto = "tcp", addr = %l.local_addr()?, "syslog listening");
        tasks.push(tokio::spawn(tcp(l, state, stop, max)));
    }
    Ok(tasks)
}

async fn udp(sock: tokio::net::UdpSocket, state: AppState, mut stop: watch::Receiver<bool>, max: usize) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let first = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let mut messages = Vec::new();
        match first {
            Ok((n, _)) => messages.push(buf[..n.min(max)].to_vec()),
            Err(e) => {
                debug!(error = %e, "syslog udp receive failed");
                continue;
            }
        }
        // Whatever else is already queued goes into the same batch.
        while messages.len() < 1000 {
            match sock.try_recv_from(&mut buf) {
                Ok((n, _)) => messages.push(buf[..n.min(max)].to_vec()),
                Err(_) => break,
            }
        }
        let st = state.clone();
        let _ = tokio::task::spawn_blocking(move || store(&st, &messages)).await;
    }
}

async fn tcp(l: tokio::net::TcpListener, state: AppState, mut stop: watch::Receiver<bool>, max: usize) {
    loop {
        let (conn, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(c) => c,
                Err(e) => { debug!(error = %e, "syslog tcp accept failed"); continue }
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        tokio::spawn(connection(conn, peer, state.clone(), stop.clone(), max));
    }
}

async fn connection(
    mut conn: tokio::net::TcpStream,
    peer: SocketAddr,
    state: AppState,
    mut stop: watch::Receiver<bool>,
    max: usize,
) {
    let mut framer = syslog::Framer::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = tokio::select! {
            r = conn.read(&mut buf) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let mut messages = match n {
            Ok(0) | Err(_) => {
                let last: Vec<Vec<u8>> = framer.finish().into_iter().collect();
                if !last.is_empty() {
                    let st = state.clone();
                    let _ = tokio::task::spawn_blocking(move || store(&st, &last)).await;
                }
                debug!(%peer, "syslog tcp connection closed");
                return;
            }
            Ok(n) => framer.push(&buf[..n], max),
        };
        if !messages.is_empty() {
            let st = state.clone();
            let m = std::mem::take(&mut messages);
            let _ = tokio::task::spawn_blocking(move || store(&st, &m)).await;
        }
    }
}
