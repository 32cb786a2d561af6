//! The span codec both the WAL and the segments use: rows (a span plus the index of its
//! resource and scope) written column by column (trace ids run-length coded, span ids, times as
//! deltas, names and attribute strings through a block dictionary, then attributes, events and
//! links), so that zstd over a segment block sees like next to like. The WAL writes the same
//! bytes uncompressed. Decoding never panics: a bad block is `None`.

use hashbrown::HashMap;
use telltale_model::{AttrValue, KeyValue, Scope, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, TraceId};
use telltale_walfile::{put_bytes, put_uvarint, put_varint, Cursor};

/// A span with the index of its resource and scope in the table beside it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) res: u32,
    pub(crate) scope: u32,
    pub(crate) span: Span,
}

/// A span to encode, by reference, with its resource and scope indexes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowRef<'a> {
    pub(crate) res: u32,
    pub(crate) scope: u32,
    pub(crate) span: &'a Span,
}

impl Row {
    pub(crate) fn as_ref(&self) -> RowRef<'_> {
        RowRef { res: self.res, scope: self.scope, span: &self.span }
    }
}

/// A resource without its spans: attributes, dropped count, schema URL.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Resource {
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) dropped_attributes_count: u32,
    pub(crate) schema_url: String,
}

impl Resource {
    pub(crate) fn service(&self) -> &str {
        telltale_model::attr(&self.attributes, "service.name")
            .and_then(AttrValue::as_str)
            .unwrap_or(telltale_model::UNKNOWN_SERVICE)
    }
}

/// A scope with the schema URL of its spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ScopeInfo {
    pub(crate) scope: Scope,
    pub(crate) schema_url: String,
}

const V_EMPTY: u8 = 0;
const V_STR: u8 = 1;
const V_BOOL: u8 = 2;
const V_INT: u8 = 3;
const V_DOUBLE: u8 = 4;
const V_BYTES: u8 = 5;
const V_ARRAY: u8 = 6;
const V_MAP: u8 = 7;

/// How strings are written: inline, or as an index into a block dictionary.
pub(crate) trait Strings {
    fn put(&mut self, out: &mut Vec<u8>, s: &str);
}

/// Reads strings written by a [`Strings`].
pub(crate) trait ReadStrings {
    fn get(&self, c: &mut Cursor<'_>) -> Option<String>;
}

pub(crate) struct Inline;

impl Strings for Inline {
    fn put(&mut self, out: &mut Vec<u8>, s: &str) {
        put_bytes(out, s.as_bytes());
    }
}

impl ReadStrings for Inline {
    fn get(&self, c: &mut Cursor<'_>) -> Option<String> {
        c.str().map(str::to_owned)
    }
}

#[derive(Default)]
pub(crate) struct Dict {
    ids: HashMap<String, u32>,
    list: Vec<String>,
}

impl Strings for Dict {
    fn put(&mut self, out: &mut Vec<u8>, s: &str) {
        let id = match self.ids.get(s) {
            Some(id) => *id,
            None => {
                let id = self.list.len() as u32;
                self.ids.insert(s.to_owned(), id);
                self.list.push(s.to_owned());
                id
            }
        };
        put_uvarint(out, u64::from(id));
    }
}

pub(crate) struct DictRead(Vec<String>);

impl ReadStrings for DictRead {
    fn get(&self, c: &mut Cursor<'_>) -> Option<String> {
        self.0.get(c.usize()?).cloned()
    }
}

fn put_value(out: &mut Vec<u8>, v: &AttrValue, s: &mut impl Strings) {
    match v {
        AttrValue::Empty => out.push(V_EMPTY),
        AttrValue::Str(x) => {
            out.push(V_STR);
            s.put(out, x);
        }
        AttrValue::Bool(b) => out.extend_from_slice(&[V_BOOL, u8::from(*b)]),
        AttrValue::Int(i) => {
            out.push(V_INT);
            put_varint(out, *i);
        }
        AttrValue::Double(d) => {
            out.push(V_DOUBLE);
            out.extend_from_slice(&d.to_le_bytes());
        }
        AttrValue::Bytes(b) => {
            out.push(V_BYTES);
            put_bytes(out, b);
        }
        AttrValue::Array(a) => {
            out.push(V_ARRAY);
            put_uvarint(out, a.len() as u64);
            for x in a {
                put_value(out, x, s);
            }
        }
        AttrValue::Map(m) => {
            out.push(V_MAP);
            put_attrs(out, m, s);
        }
    }
}

fn get_value(c: &mut Cursor<'_>, s: &impl ReadStrings, depth: u32) -> Option<AttrValue> {
    if depth > 32 {
        return None;
    }
    Some(match c.u8()? {
        V_EMPTY => AttrValue::Empty,
        V_STR => AttrValue::Str(s.get(c)?),
        V_BOOL => AttrValue::Bool(c.u8()? != 0),
        V_INT => AttrValue::Int(c.varint()?),
        V_DOUBLE => AttrValue::Double(f64::from_le_bytes(c.take(8)?.try_into().ok()?)),
        V_BYTES => AttrValue::Bytes(c.bytes()?.to_vec()),
        V_ARRAY => {
            let n = c.usize()?;
            let mut a = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                a.push(get_value(c, s, depth + 1)?);
            }
            AttrValue::Array(a)
        }
        V_MAP => AttrValue::Map(get_attrs_at(c, s, depth + 1)?),
        _ => return None,
    })
}

pub(crate) fn put_attrs(out: &mut Vec<u8>, attrs: &[KeyValue], s: &mut impl Strings) {
    put_uvarint(out, attrs.len() as u64);
    for kv in attrs {
        s.put(out, &kv.key);
        put_value(out, &kv.value, s);
    }
}

pub(crate) fn get_attrs(c: &mut Cursor<'_>, s: &impl ReadStrings) -> Option<Vec<KeyValue>> {
    get_attrs_at(c, s, 0)
}

fn get_attrs_at(c: &mut Cursor<'_>, s: &impl ReadStrings, depth: u32) -> Option<Vec<KeyValue>> {
    let n = c.usize()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let key = s.get(c)?;
        out.push(KeyValue { key, value: get_value(c, s, depth)? });
    }
    Some(out)
}

fn get_u32(c: &mut Cursor<'_>) -> Option<u32> {
    u32::try_from(c.uvarint()?).ok()
}

fn get_span_id(c: &mut Cursor<'_>) -> Option<SpanId> {
    Some(SpanId(c.take(8)?.try_into().ok()?))
}

fn get_trace_id(c: &mut Cursor<'_>) -> Option<TraceId> {
    Some(TraceId(c.take(16)?.try_into().ok()?))
}

pub(crate) fn put_resource(out: &mut Vec<u8>, r: &Resource) {
    put_attrs(out, &r.attributes, &mut Inline);
    put_uvarint(out, u64::from(r.dropped_attributes_count));
    put_bytes(out, r.schema_url.as_bytes());
}

pub(crate) fn get_resource(c: &mut Cursor<'_>) -> Option<Resource> {
    Some(Resource {
        attributes: get_attrs(c, &Inline)?,
        dropped_attributes_count: get_u32(c)?,
        schema_url: c.str()?.to_owned(),
    })
}

pub(crate) fn put_scope(out: &mut Vec<u8>, s: &ScopeInfo) {
    put_bytes(out, s.scope.name.as_bytes());
    put_bytes(out, s.scope.version.as_bytes());
    put_attrs(out, &s.scope.attributes, &mut Inline);
    put_uvarint(out, u64::from(s.scope.dropped_attributes_count));
    put_bytes(out, s.schema_url.as_bytes());
}

pub(crate) fn get_scope(c: &mut Cursor<'_>) -> Option<ScopeInfo> {
    Some(ScopeInfo {
        scope: Scope {
            name: c.str()?.to_owned(),
            version: c.str()?.to_owned(),
            attributes: get_attrs(c, &Inline)?,
            dropped_attributes_count: get_u32(c)?,
        },
        schema_url: c.str()?.to_owned(),
    })
}

/// The columns of a block, in the order they are written.
#[derive(Default)]
struct Columns {
    traces: Vec<u8>,
    ids: Vec<u8>,
    times: Vec<u8>,
    meta: Vec<u8>,
    attrs: Vec<u8>,
    events: Vec<u8>,
    links: Vec<u8>,
}

/// Encodes rows (in the order given) as one block.
pub(crate) fn encode_rows<'a>(rows: impl ExactSizeIterator<Item = RowRef<'a>>) -> Vec<u8> {
    let mut dict = Dict::default();
    let mut c = Columns::default();
    let n = rows.len();
    let mut run: Option<(TraceId, u64)> = None;
    let mut prev_start = 0i64;
    for r in rows {
        let s = r.span;
        match &mut run {
            Some((t, k)) if *t == s.trace_id => *k += 1,
            _ => {
                if let Some((t, k)) = run.take() {
                    c.traces.extend_from_slice(&t.0);
                    put_uvarint(&mut c.traces, k);
                }
                run = Some((s.trace_id, 1));
            }
        }
        c.ids.extend_from_slice(&s.span_id.0);
        c.ids.extend_from_slice(&s.parent_span_id.0);
        put_varint(&mut c.times, s.start.wrapping_sub(prev_start));
        prev_start = s.start;
        put_varint(&mut c.times, s.end.wrapping_sub(s.start));
        let m = &mut c.meta;
        dict.put(m, &s.name);
        m.push((s.kind as u8) | ((s.status as u8) << 4));
        put_uvarint(m, u64::from(r.res));
        put_uvarint(m, u64::from(r.scope));
        put_uvarint(m, u64::from(s.flags));
        dict.put(m, &s.trace_state);
        dict.put(m, &s.status_message);
        put_uvarint(m, u64::from(s.dropped_attributes_count));
        put_uvarint(m, u64::from(s.dropped_events_count));
        put_uvarint(m, u64::from(s.dropped_links_count));
        put_attrs(&mut c.attrs, &s.attributes, &mut dict);
        put_uvarint(&mut c.events, s.events.len() as u64);
        for e in &s.events {
            put_varint(&mut c.events, e.time.wrapping_sub(s.start));
            dict.put(&mut c.events, &e.name);
            put_attrs(&mut c.events, &e.attributes, &mut dict);
            put_uvarint(&mut c.events, u64::from(e.dropped_attributes_count));
        }
        put_uvarint(&mut c.links, s.links.len() as u64);
        for l in &s.links {
            c.links.extend_from_slice(&l.trace_id.0);
            c.links.extend_from_slice(&l.span_id.0);
            dict.put(&mut c.links, &l.trace_state);
            put_attrs(&mut c.links, &l.attributes, &mut dict);
            put_uvarint(&mut c.links, u64::from(l.dropped_attributes_count));
            put_uvarint(&mut c.links, u64::from(l.flags));
        }
    }
    if let Some((t, k)) = run {
        c.traces.extend_from_slice(&t.0);
        put_uvarint(&mut c.traces, k);
    }
    let mut out = Vec::new();
    put_uvarint(&mut out, n as u64);
    put_uvarint(&mut out, dict.list.len() as u64);
    for s in &dict.list {
        put_bytes(&mut out, s.as_bytes());
    }
    for col in [&c.traces, &c.ids, &c.times, &c.meta, &c.attrs, &c.events, &c.links] {
        put_bytes(&mut out, col);
    }
    out
}

/// Decodes a block written by [`encode_rows`].
pub(crate) fn decode_rows(data: &[u8]) -> Option<Vec<Row>> {
    let mut c = Cursor::new(data);
    let n = c.usize()?;
    let nd = c.usize()?;
    let mut list = Vec::with_capacity(nd.min(1 << 16));
    for _ in 0..nd {
        list.push(c.str()?.to_owned());
    }
    let dict = DictRead(list);
    let mut traces = Cursor::new(c.bytes()?);
    let mut ids = Cursor::new(c.bytes()?);
    let mut times = Cursor::new(c.bytes()?);
    let mut meta = Cursor::new(c.bytes()?);
    let mut attrs = Cursor::new(c.bytes()?);
    let mut events = Cursor::new(c.bytes()?);
    let mut links = Cursor::new(c.bytes()?);
    if !c.b.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(n.min(1 << 20));
    let (mut trace, mut left) = (TraceId::default(), 0u64);
    let mut prev_start = 0i64;
    for _ in 0..n {
        if left == 0 {
            trace = get_trace_id(&mut traces)?;
            left = traces.uvarint()?;
            if left == 0 {
                return None;
            }
        }
        left -= 1;
        let span_id = get_span_id(&mut ids)?;
        let parent_span_id = get_span_id(&mut ids)?;
        let start = prev_start.wrapping_add(times.varint()?);
        prev_start = start;
        let end = start.wrapping_add(times.varint()?);
        let name = dict.get(&mut meta)?;
        let ks = meta.u8()?;
        let res = get_u32(&mut meta)?;
        let scope = get_u32(&mut meta)?;
        let flags = get_u32(&mut meta)?;
        let trace_state = dict.get(&mut meta)?;
        let status_message = dict.get(&mut meta)?;
        let dropped_attributes_count = get_u32(&mut meta)?;
        let dropped_events_count = get_u32(&mut meta)?;
        let dropped_links_count = get_u32(&mut meta)?;
        let attributes = get_attrs(&mut attrs, &dict)?;
        let ne = events.usize()?;
        let mut evs = Vec::with_capacity(ne.min(1024));
        for _ in 0..ne {
            evs.push(SpanEvent {
                time: start.wrapping_add(events.varint()?),
                name: dict.get(&mut events)?,
                attributes: get_attrs(&mut events, &dict)?,
                dropped_attributes_count: get_u32(&mut events)?,
            });
        }
        let nl = links.usize()?;
        let mut lks = Vec::with_capacity(nl.min(1024));
        for _ in 0..nl {
            lks.push(SpanLink {
                trace_id: get_trace_id(&mut links)?,
                span_id: get_span_id(&mut links)?,
                trace_state: dict.get(&mut links)?,
                attributes: get_attrs(&mut links, &dict)?,
                dropped_attributes_count: get_u32(&mut links)?,
                flags: get_u32(&mut links)?,
            });
        }
        out.push(Row {
            res,
            scope,
            span: Span {
                trace_id: trace,
                span_id,
                trace_state,
                parent_span_id,
                flags,
                name,
                kind: SpanKind::from_i32(i32::from(ks & 0x0f)),
                start,
                end,
                attributes,
                dropped_attributes_count,
                events: evs,
                dropped_events_count,
                links: lks,
                dropped_links_count,
                status: StatusCode::from_i32(i32::from(ks >> 4)),
                status_message,
            },
        });
    }
    let done = [traces, ids, times, meta, attrs, events, links].iter().all(|c| c.b.is_empty());
    (done && left == 0).then_some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = AttrValue> {
        let leaf = prop_oneof![
            Just(AttrValue::Empty),
            "[a-z]{0,6}".prop_map(AttrValue::Str),
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            (-1e9f64..1e9).prop_map(AttrValue::Double),
            proptest::collection::vec(any::<u8>(), 0..4).prop_map(AttrValue::Bytes),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(AttrValue::Array),
                proptest::collection::vec(("[a-z]{1,3}", inner), 0..3)
                    .prop_map(|v| AttrValue::Map(v.into_iter().map(|(key, value)| KeyValue { key, value }).collect())),
            ]
        })
    }

    fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
        proptest::collection::vec(("[a-z.]{1,8}", value()), 0..4)
            .prop_map(|v| v.into_iter().map(|(key, value)| KeyValue { key, value }).collect())
    }

    pub(crate) fn span() -> impl Strategy<Value = Span> {
        (
            (0u8..3, any::<[u8; 8]>(), any::<[u8; 8]>(), "[a-z /{}]{0,12}", 0i32..6, 0i32..3),
            (any::<i64>(), 0i64..10_000_000_000, attrs(), any::<u32>(), "[a-z]{0,4}"),
            proptest::collection::vec((0i64..1000, "[a-z]{1,5}", attrs()), 0..3),
            proptest::collection::vec((any::<[u8; 16]>(), any::<[u8; 8]>(), attrs(), any::<u32>()), 0..2),
        )
            .prop_map(
                |((t, id, parent, name, kind, status), (start, dur, attributes, flags, msg), evs, lks)| Span {
                    trace_id: TraceId([t; 16]),
                    span_id: SpanId(id),
                    parent_span_id: SpanId(parent),
                    trace_state: String::new(),
                    flags,
                    name,
                    kind: SpanKind::from_i32(kind),
                    start,
                    end: start.wrapping_add(dur),
                    attributes,
                    dropped_attributes_count: flags % 3,
                    events: evs
                        .into_iter()
                        .map(|(dt, name, attributes)| SpanEvent {
                            time: start.wrapping_add(dt),
                            name,
                            attributes,
                            dropped_attributes_count: 0,
                        })
                        .collect(),
                    dropped_events_count: 1,
                    links: lks
                        .into_iter()
                        .map(|(t, s, attributes, flags)| SpanLink {
                            trace_id: TraceId(t),
                            span_id: SpanId(s),
                            trace_state: "k=v".into(),
                            attributes,
                            dropped_attributes_count: 2,
                            flags,
                        })
                        .collect(),
                    dropped_links_count: 0,
                    status: StatusCode::from_i32(status),
                    status_message: msg,
                },
            )
    }

    proptest! {
        #[test]
        fn rows_round_trip(spans in proptest::collection::vec(span(), 0..20)) {
            let rows: Vec<Row> = spans.into_iter().enumerate()
                .map(|(i, span)| Row { res: i as u32 % 3, scope: i as u32 % 2, span }).collect();
            let enc = encode_rows(rows.iter().map(Row::as_ref));
            prop_assert_eq!(decode_rows(&enc), Some(rows));
        }

        #[test]
        fn damaged_blocks_decode_to_none_or_rows(spans in proptest::collection::vec(span(), 1..5), at in any::<proptest::sample::Index>()) {
            let rows: Vec<Row> = spans.into_iter().map(|span| Row { res: 0, scope: 0, span }).collect();
            let enc = encode_rows(rows.iter().map(Row::as_ref));
            let _ = decode_rows(&enc[..at.index(enc.len())]);
        }

        #[test]
        fn resources_and_scopes_round_trip(a in attrs(), b in attrs(), url in "[a-z:/]{0,10}") {
            let r = Resource { attributes: a, dropped_attributes_count: 3, schema_url: url.clone() };
            let s = ScopeInfo { scope: Scope { name: "n".into(), version: "1".into(), attributes: b, dropped_attributes_count: 1 }, schema_url: url };
            let mut buf = Vec::new();
            put_resource(&mut buf, &r);
            put_scope(&mut buf, &s);
            let mut c = Cursor::new(&buf);
            prop_assert_eq!(get_resource(&mut c), Some(r));
            prop_assert_eq!(get_scope(&mut c), Some(s));
            prop_assert!(c.b.is_empty());
        }
    }
}
