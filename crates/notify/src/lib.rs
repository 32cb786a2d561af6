//! Notification channels for Telltale's alerting: each receiver speaks the receiving
//! service's documented payload and takes Alertmanager's config keys for it, so an
//! `alertmanager.yml` `receivers:` section works unchanged.
//!
//! Input: a [`Message`] (Alertmanager's webhook data model: receiver, status, alerts,
//! group and common labels) and a receiver's config. Output: an HTTP request or a mail,
//! with a timeout and retries with backoff; failures come back as [`Error`].
//!
//! The one design decision to know: the channels are a closed set, so they are an enum
//! ([`Integration`]) matched exhaustively, not trait objects; [`Notifier`] is the one seam
//! (the alerting pipeline calls it; tests use [`Recording`]).
#![warn(missing_docs)]

mod config;
mod http;
mod message;
mod webhook;

use std::sync::Arc;

pub use config::{HttpConfig, ReceiverConfig, Secret, WebhookConfig};
pub use message::{Message, MessageAlert};

/// Why a notification was not delivered.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error status; `retry` says whether trying again may help.
    #[error("{integration}: {status}: {body}")]
    Status {
        /// `webhook[0]`, ...
        integration: String,
        /// HTTP status.
        status: u16,
        /// The start of the answer.
        body: String,
        /// 5xx and 429 are retried.
        retry: bool,
    },
    /// The request could not be made (connection refused, timeout, TLS).
    #[error("{integration}: {message}")]
    Transport {
        /// Which integration.
        integration: String,
        /// What happened.
        message: String,
    },
    /// The receiver's config or templates cannot produce a request.
    #[error("{integration}: {message}")]
    Config {
        /// Which integration.
        integration: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// The error's category.
    pub fn kind(&self) -> telltale_model::ErrorKind {
        match self {
            Error::Config { .. } => telltale_model::ErrorKind::InvalidInput,
            _ => telltale_model::ErrorKind::Unavailable,
        }
    }

    /// Whether retrying may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Status { retry, .. } => *retry,
            Error::Transport { .. } => true,
            Error::Config { .. } => false,
        }
    }
}

/// One configured channel of a receiver.
#[derive(Debug, Clone, PartialEq)]
pub enum Integration {
    /// A generic webhook receiving Alertmanager's JSON (version 4).
    Webhook(WebhookConfig),
}

impl Integration {
    /// `webhook`, `slack`, ... (Alertmanager's integration names, used in metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Integration::Webhook(_) => "webhook",
        }
    }

    /// Whether resolved notifications are sent.
    pub fn send_resolved(&self) -> bool {
        match self {
            Integration::Webhook(c) => c.send_resolved,
        }
    }
}

/// The integrations of every receiver in `config`, in order, named `kind[i]`.
pub fn integrations(r: &ReceiverConfig) -> Vec<(String, Integration)> {
    let mut out = Vec::new();
    for (i, c) in r.webhook_configs.iter().enumerate() {
        out.push((format!("webhook[{i}]"), Integration::Webhook(c.clone())));
    }
    out
}

/// The seam between the alerting pipeline and delivery: send one notification.
pub trait Notifier: Send + Sync {
    /// Delivers `msg` through `integration` (retrying inside as configured).
    fn send<'a>(&'a self, integration: &'a Integration, msg: &'a Message) -> BoxFuture<'a, Result<(), Error>>;
}

/// The future a [`Notifier`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Delivers over the network, with per-integration timeout and retries with backoff.
#[derive(Debug, Clone, Default)]
pub struct Sender {
    /// Templates for the channels' texts.
    pub templates: Arc<telltale_template::Templates>,
}

impl Notifier for Sender {
    fn send<'a>(&'a self, integration: &'a Integration, msg: &'a Message) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            match integration {
                Integration::Webhook(c) => webhook::send(c, msg).await,
            }
        })
    }
}

/// A fake for pipeline tests: records every notification instead of sending it.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    sent: Arc<std::sync::Mutex<Vec<(String, Message)>>>,
}

impl Recording {
    /// Everything sent so far: (integration kind, message).
    pub fn sent(&self) -> Vec<(String, Message)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Notifier for Recording {
    fn send<'a>(&'a self, integration: &'a Integration, msg: &'a Message) -> BoxFuture<'a, Result<(), Error>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push((integration.kind().to_string(), msg.clone()));
        Box::pin(async { Ok(()) })
    }
}
