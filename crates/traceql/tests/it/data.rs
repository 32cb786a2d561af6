//! The fixed data set the query table runs over: 10 traces, 4 services (frontend, api, db,
//! worker). Trace `tN` starts at (N-1)*5s after the epoch; times below are milliseconds from
//! that start. Span `x` of trace `tN` is named `tN.x` in expectations.
//!
//! ```text
//! t1  frontend a "GET /home" server 0-100 {http.method=GET, http.status_code=200}
//!       frontend b "fetch users" client 10-90 (parent a)
//!         api c "GET /users" server 15-85 (parent b) {http.method=GET, http.status_code=200}
//!           db d "SELECT users" client 20-50 (parent c) {db.system=postgres}
//! t2  frontend a "GET /checkout" server 0-300 ERROR {http.method=POST, http.status_code=500}
//!       frontend b "call api" client 10-290 ERROR (parent a)
//!         api c "POST /orders" server 20-280 ERROR "db timeout" (parent b) {http.status_code=500}
//!           db d "INSERT orders" client 30-270 ERROR (parent c) {db.system=postgres}
//!              event "exception" at +100ms {exception.message=timeout}
//! t3  worker a "process job" consumer 0-2000 {job.id=42, retry=true}
//!       worker b "load data" internal 100-600 (parent a) {rows=1500}
//!       worker c "save data" internal 700-1900 (parent a) {ratio=0.75}
//!         db d "UPDATE jobs" client 800-1800 (parent c) {db.system=mysql}
//! t4  frontend a "GET /home" server 0-5 OK {http.method=GET, http.status_code=304}
//! t5  api a "GET /items" server 0-50
//!       api b "cache get" internal 1-3 (parent a) {cache.hit=false}
//!       db c "SELECT items" client 5-45 (parent a) {db.system=postgres}
//!       api d "render" internal 46-49 (parent a)
//! t6  worker(staging) a "enqueue" producer 0-10
//!       worker(staging) b "dequeue" consumer 20-40 (parent a), link to t1.a {link.kind=follows}
//! t7  api a "GET /search" server 0-1500 ERROR "upstream failed" {tags=[beta,search], http.status_code=503}
//!       api b "query index" client 10-1400 ERROR (parent a)
//! t8  db a "SELECT stats" client 0-30, parent id not in the trace (no root)
//! t9  frontend a "GET /about" server 0-20 {"user agent"=curl}, scope otel.http 1.2 {lib.lang=go}
//!       frontend b "render about" internal 2-18 (parent a), scope otel.render
//! t10 api a "GET /health" server 0-1 {deployment.environment=canary}
//! ```
//! Every resource has `deployment.environment=prod` except t6's (staging).

use telltale_model::*;

pub(crate) struct S {
    id: char,
    service: &'static str,
    name: &'static str,
    kind: SpanKind,
    start: i64,
    end: i64,
    parent: Option<char>,
    status: StatusCode,
    attrs: Vec<KeyValue>,
}

fn kv(k: &str, v: AttrValue) -> KeyValue {
    KeyValue { key: k.into(), value: v }
}
fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.into())
}

fn sp(
    id: char,
    service: &'static str,
    name: &'static str,
    kind: SpanKind,
    start: i64,
    end: i64,
    parent: Option<char>,
) -> S {
    S { id, service, name, kind, start, end, parent, status: StatusCode::Unset, attrs: vec![] }
}

impl S {
    fn err(mut self) -> S {
        self.status = StatusCode::Error;
        self
    }
    fn ok(mut self) -> S {
        self.status = StatusCode::Ok;
        self
    }
    fn attr(mut self, k: &str, v: AttrValue) -> S {
        self.attrs.push(kv(k, v));
        self
    }
}

pub(crate) fn trace_id(n: u8) -> TraceId {
    TraceId([n; 16])
}

pub(crate) fn span_id(n: u8, c: char) -> SpanId {
    let mut b = [0u8; 8];
    b[0] = n;
    b[7] = c as u8;
    SpanId(b)
}

const MS: i64 = 1_000_000;

fn build(n: u8, spans: Vec<S>) -> SpanBatch {
    let base = (n as i64 - 1) * 5_000 * MS;
    let mut batch = SpanBatch::default();
    for s in spans {
        let env = if n == 6 { "staging" } else { "prod" };
        let scope_name = match (n, s.id) {
            (9, 'a') => "otel.http",
            (9, _) => "otel.render",
            _ => "manual",
        };
        let mut span = Span {
            trace_id: trace_id(n),
            span_id: span_id(n, s.id),
            parent_span_id: s.parent.map_or(SpanId::default(), |p| span_id(n, p)),
            name: s.name.into(),
            kind: s.kind,
            start: base + s.start * MS,
            end: base + s.end * MS,
            attributes: s.attrs,
            status: s.status,
            ..Span::default()
        };
        if n == 2 && s.id == 'c' {
            span.status_message = "db timeout".into();
        }
        if n == 7 && s.id == 'a' {
            span.status_message = "upstream failed".into();
        }
        if n == 2 && s.id == 'd' {
            span.events.push(SpanEvent {
                time: span.start + 100 * MS,
                name: "exception".into(),
                attributes: vec![KeyValue::str("exception.message", "timeout")],
                ..SpanEvent::default()
            });
        }
        if n == 6 && s.id == 'b' {
            span.links.push(SpanLink {
                trace_id: trace_id(1),
                span_id: span_id(1, 'a'),
                attributes: vec![KeyValue::str("kind", "follows")],
                ..SpanLink::default()
            });
        }
        if n == 8 {
            span.parent_span_id = span_id(8, 'z');
        }
        let res = match batch.resources.iter().position(|r| r.service_name() == s.service) {
            Some(i) => i,
            None => {
                batch.resources.push(ResourceSpans {
                    resource: vec![
                        KeyValue::str("service.name", s.service),
                        KeyValue::str("deployment.environment", env),
                    ],
                    ..ResourceSpans::default()
                });
                batch.resources.len() - 1
            }
        };
        let r = &mut batch.resources[res];
        let sc = match r.scopes.iter().position(|x| x.scope.name == scope_name) {
            Some(i) => i,
            None => {
                let mut scope = Scope { name: scope_name.into(), ..Scope::default() };
                if scope_name == "otel.http" {
                    scope.version = "1.2".into();
                    scope.attributes.push(KeyValue::str("lib.lang", "go"));
                }
                r.scopes.push(ScopeSpans { scope, ..ScopeSpans::default() });
                r.scopes.len() - 1
            }
        };
        r.scopes[sc].spans.push(span);
    }
    batch
}

/// The ten traces, `t1` first.
pub(crate) fn traces() -> Vec<SpanBatch> {
    use SpanKind::*;
    let get = || s("GET");
    vec![
        build(
            1,
            vec![
                sp('a', "frontend", "GET /home", Server, 0, 100, None)
                    .attr("http.method", get())
                    .attr("http.status_code", AttrValue::Int(200)),
                sp('b', "frontend", "fetch users", Client, 10, 90, Some('a')),
                sp('c', "api", "GET /users", Server, 15, 85, Some('b'))
                    .attr("http.method", get())
                    .attr("http.status_code", AttrValue::Int(200)),
                sp('d', "db", "SELECT users", Client, 20, 50, Some('c')).attr("db.system", s("postgres")),
            ],
        ),
        build(
            2,
            vec![
                sp('a', "frontend", "GET /checkout", Server, 0, 300, None)
                    .err()
                    .attr("http.method", s("POST"))
                    .attr("http.status_code", AttrValue::Int(500)),
                sp('b', "frontend", "call api", Client, 10, 290, Some('a')).err(),
                sp('c', "api", "POST /orders", Server, 20, 280, Some('b'))
                    .err()
                    .attr("http.status_code", AttrValue::Int(500)),
                sp('d', "db", "INSERT orders", Client, 30, 270, Some('c')).err().attr("db.system", s("postgres")),
            ],
        ),
        build(
            3,
            vec![
                sp('a', "worker", "process job", Consumer, 0, 2000, None)
                    .attr("job.id", AttrValue::Int(42))
                    .attr("retry", AttrValue::Bool(true)),
                sp('b', "worker", "load data", Internal, 100, 600, Some('a')).attr("rows", AttrValue::Int(1500)),
                sp('c', "worker", "save data", Internal, 700, 1900, Some('a')).attr("ratio", AttrValue::Double(0.75)),
                sp('d', "db", "UPDATE jobs", Client, 800, 1800, Some('c')).attr("db.system", s("mysql")),
            ],
        ),
        build(
            4,
            vec![sp('a', "frontend", "GET /home", Server, 0, 5, None)
                .ok()
                .attr("http.method", get())
                .attr("http.status_code", AttrValue::Int(304))],
        ),
        build(
            5,
            vec![
                sp('a', "api", "GET /items", Server, 0, 50, None),
                sp('b', "api", "cache get", Internal, 1, 3, Some('a')).attr("cache.hit", AttrValue::Bool(false)),
                sp('c', "db", "SELECT items", Client, 5, 45, Some('a')).attr("db.system", s("postgres")),
                sp('d', "api", "render", Internal, 46, 49, Some('a')),
            ],
        ),
        build(
            6,
            vec![
                sp('a', "worker", "enqueue", Producer, 0, 10, None),
                sp('b', "worker", "dequeue", Consumer, 20, 40, Some('a')),
            ],
        ),
        build(
            7,
            vec![
                sp('a', "api", "GET /search", Server, 0, 1500, None)
                    .err()
                    .attr("tags", AttrValue::Array(vec![s("beta"), s("search")]))
                    .attr("http.status_code", AttrValue::Int(503)),
                sp('b', "api", "query index", Client, 10, 1400, Some('a')).err(),
            ],
        ),
        build(8, vec![sp('a', "db", "SELECT stats", Client, 0, 30, None)]),
        build(
            9,
            vec![
                sp('a', "frontend", "GET /about", Server, 0, 20, None).attr("user agent", s("curl")),
                sp('b', "frontend", "render about", Internal, 2, 18, Some('a')),
            ],
        ),
        build(10, vec![sp('a', "api", "GET /health", Server, 0, 1, None).attr("deployment.environment", s("canary"))]),
    ]
}
