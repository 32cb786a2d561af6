//! The service graph: pairing a client span with its server span, as Tempo's
//! `servicegraphs` processor does
//! (<https://github.com/grafana/tempo/tree/main/modules/generator/processor/servicegraphs>).
//!
//! A client (or producer) span waits under `(trace id, its span id)`; a server (or consumer)
//! span under `(trace id, its parent span id)`. When both halves of a key are in, the edge is
//! complete. Halves still alone after `wait` expire: a root server span becomes an edge from
//! a virtual client (its peer attribute, or `user`), a client span with a peer attribute an
//! edge to a virtual server, anything else is counted unpaired. A client span with a database
//! attribute completes at once as an edge to the database.

use std::collections::{HashMap, VecDeque};

use telltale_model::{attr, KeyValue, Nanos, Span, SpanId, SpanKind, StatusCode, TraceId};

use crate::Options;

/// Tempo's `connection_type` values (its `store.ConnectionType`); `""` means a plain request
/// and leaves the label out.
pub(crate) const MESSAGING_SYSTEM: &str = "messaging_system";
pub(crate) const DATABASE: &str = "database";
pub(crate) const VIRTUAL_NODE: &str = "virtual_node";

/// A complete edge, ready to be counted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Edge {
    pub(crate) client: String,
    pub(crate) server: String,
    pub(crate) connection_type: &'static str,
    /// `client` or `server` when that side is a virtual node (Tempo's `virtual_node` label).
    pub(crate) virtual_node: &'static str,
    pub(crate) failed: bool,
    pub(crate) client_seconds: f64,
    pub(crate) server_seconds: f64,
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
}

/// What the store reports back for the caller to count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// An edge completed (paired, database, or virtual node).
    Complete(Edge),
    /// A half expired with nothing to pair it with: the service of the side that was seen.
    Unpaired { client: String, server: String },
    /// The pending map was full: the half was dropped (its side's service).
    Dropped { client: String, server: String },
}

#[derive(Debug, Clone, Default)]
struct Pending {
    seq: u64,
    root: bool,
    client: String,
    server: String,
    connection_type: &'static str,
    failed: bool,
    client_seconds: f64,
    server_seconds: f64,
    peer: Option<String>,
    trace_id: TraceId,
    span_id: SpanId,
}

type Key = (TraceId, SpanId);

/// Half-edges waiting for their other half, bounded by `max_pending_edges`.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pending: HashMap<Key, Pending>,
    /// Keys in insertion order with their expiry; entries whose `seq` no longer matches the
    /// map are leftovers of completed edges and are skipped.
    order: VecDeque<(Nanos, Key, u64)>,
    next_seq: u64,
}

fn is_client(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Client | SpanKind::Producer)
}

fn is_server(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Server | SpanKind::Consumer)
}

fn seconds(span: &Span) -> f64 {
    span.duration() as f64 / 1e9
}

/// The first of `keys` found in `first` then `second`, stringified as Tempo does.
fn find(keys: &[String], first: &[KeyValue], second: &[KeyValue]) -> Option<String> {
    keys.iter().find_map(|k| attr(first, k).or_else(|| attr(second, k)).map(|v| v.to_string()))
}

impl Store {
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Adds one span of `service` (with its resource attributes); spans that are neither
    /// client nor server are ignored.
    pub(crate) fn add(
        &mut self,
        opts: &Options,
        service: &str,
        resource: &[KeyValue],
        span: &Span,
        now: Nanos,
        events: &mut Vec<Event>,
    ) {
        let client_side = is_client(span.kind);
        if !client_side && !is_server(span.kind) {
            return;
        }
        let key = if client_side { (span.trace_id, span.span_id) } else { (span.trace_id, span.parent_span_id) };
        let connection_type = match span.kind {
            SpanKind::Producer | SpanKind::Consumer => MESSAGING_SYSTEM,
            _ => "",
        };
        let existing = self.pending.remove(&key);
        let is_new = existing.is_none();
        let mut e = existing
            .unwrap_or_else(|| Pending { root: !client_side && span.parent_span_id.is_zero(), ..Pending::default() });
        e.connection_type = connection_type;
        e.failed |= span.status == StatusCode::Error;
        if let Some(peer) = find(&opts.peer_attributes, &span.attributes, &[]) {
            e.peer = Some(peer);
        }
        if client_side {
            e.trace_id = span.trace_id;
            e.span_id = span.span_id;
            e.client = service.to_string();
            e.client_seconds = seconds(span);
            self.database(opts, &mut e, resource, span);
        } else {
            if e.trace_id.is_zero() {
                e.trace_id = span.trace_id;
                e.span_id = span.span_id;
            }
            e.server = service.to_string();
            e.server_seconds = seconds(span);
        }
        if !e.client.is_empty() && !e.server.is_empty() {
            events.push(Event::Complete(edge(e, "")));
            return;
        }
        if is_new && self.pending.len() >= opts.max_pending_edges {
            events.push(Event::Dropped { client: e.client, server: e.server });
            return;
        }
        if is_new {
            e.seq = self.next_seq;
            self.next_seq += 1;
            let expires = now.saturating_add(opts.wait.as_nanos().min(i64::MAX as u128) as i64);
            self.order.push_back((expires, key, e.seq));
        }
        self.pending.insert(key, e);
        self.compact();
    }

    /// Tempo's `upsertDatabaseRequest`: a client span naming a database is an edge to it,
    /// named by `peer.service`, `server.address`, `network.peer.address[:port]`, or the
    /// database name, in that order.
    fn database(&self, opts: &Options, e: &mut Pending, resource: &[KeyValue], span: &Span) {
        let Some(db_name) = find(&opts.database_name_attributes, resource, &span.attributes) else {
            return;
        };
        e.connection_type = DATABASE;
        e.server_seconds = seconds(span);
        let one = |k: &str| find(&[k.to_string()], resource, &span.attributes);
        e.server = if let Some(s) = one("peer.service").or_else(|| one("server.address")) {
            s
        } else if let Some(host) = one("network.peer.address") {
            match one("network.peer.port") {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        } else {
            db_name
        };
    }

    /// Expires every half whose wait ended at or before `now`.
    pub(crate) fn expire(&mut self, now: Nanos, events: &mut Vec<Event>) {
        while let Some(&(at, key, seq)) = self.order.front() {
            if at > now {
                break;
            }
            self.order.pop_front();
            match self.pending.get(&key) {
                Some(p) if p.seq == seq => {}
                _ => continue,
            }
            let mut e = self.pending.remove(&key).expect("checked above");
            e.connection_type = VIRTUAL_NODE;
            if e.client.is_empty() {
                if e.root {
                    e.client = e.peer.take().unwrap_or_else(|| "user".to_string());
                    events.push(Event::Complete(edge(e, "client")));
                    continue;
                }
            } else if e.server.is_empty() {
                if let Some(peer) = e.peer.take() {
                    e.server = peer;
                    events.push(Event::Complete(edge(e, "server")));
                    continue;
                }
            }
            events.push(Event::Unpaired { client: e.client, server: e.server });
        }
    }

    /// Keeps the expiry queue from growing past twice the live entries (completed edges
    /// leave their queue entry behind until it reaches the front).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.pending.len() + 1024 {
            let pending = &self.pending;
            self.order.retain(|(_, k, seq)| pending.get(k).is_some_and(|p| p.seq == *seq));
        }
    }
}

fn edge(e: Pending, virtual_node: &'static str) -> Edge {
    Edge {
        client: e.client,
        server: e.server,
        connection_type: e.connection_type,
        virtual_node,
        failed: e.failed,
        client_seconds: e.client_seconds,
        server_seconds: e.server_seconds,
        trace_id: e.trace_id,
        span_id: e.span_id,
    }
}
