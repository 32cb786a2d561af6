//! Runs the LogQL scripts in `testdata/*.test` against the engine, over `MemLogStore` and
//! again over the log store's segments (which name metadata sets per block).
//!
//! Script format (one case per `eval`, blank lines and `#` comments ignored):
//!
//! ```text
//! load
//!   {job="api"} 10 GET /a 200          # stream labels, unix seconds, the line
//!   {job="api"} 20 @{trace_id="t"} x   # @{...} right after the time: structured metadata
//! eval range 0 60 30: QUERY            # start end step (seconds): expect a matrix
//!   {level="info"} 1 _ 3               # one value per step, _ for none
//! eval instant 60: QUERY               # expect a vector (or `scalar 3`)
//!   {level="info"} 2
//! eval logs 0 60 backward 100: QUERY   # start end direction limit: expect streams
//!   {job="api"} 20 x                   # labels, seconds, line (in result order)
//! eval error instant 60: QUERY         # expect an error containing the next line's text
//!   some text
//! ```

use std::path::Path;

use telltale_logql::{Engine, EngineOptions, Query, QueryResult};
use telltale_model::{Labels, LogBatch, LogEntry};
use telltale_storage::{Direction, LogReader, LogWriter, Maintenance, MemLogStore};

fn parse_labels(s: &str) -> (Labels, &str) {
    let end = s.find('}').expect("labels end with }") + 1;
    let inner = &s[1..end - 1];
    let mut pairs = Vec::new();
    for part in split_pairs(inner) {
        let (k, v) = part.split_once('=').expect("name=value");
        let v = v.trim();
        pairs.push((k.trim().to_string(), serde_json::from_str::<String>(v).expect("quoted value")));
    }
    let labels = Labels::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    (labels, s[end..].trim_start())
}

fn split_pairs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == '"' {
            in_str = !in_str;
        } else if c == ',' && !in_str {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn secs_ns(s: &str) -> i64 {
    (s.parse::<f64>().unwrap_or_else(|_| panic!("bad time {s:?}")) * 1e9).round() as i64
}

fn fmt_result(r: &QueryResult, steps: &[i64]) -> Vec<String> {
    match r {
        QueryResult::Scalar(_, v) => vec![format!("scalar {}", telltale_logql::fmt_num(*v))],
        QueryResult::Vector(v) => {
            v.iter().map(|s| format!("{} {}", s.labels, telltale_logql::fmt_num(s.points[0].1))).collect()
        }
        QueryResult::Matrix(m) => m
            .iter()
            .map(|s| {
                let vals: Vec<String> = steps
                    .iter()
                    .map(|t| {
                        s.points.iter().find(|p| p.0 == *t).map_or("_".to_string(), |p| telltale_logql::fmt_num(p.1))
                    })
                    .collect();
                format!("{} {}", s.labels, vals.join(" "))
            })
            .collect(),
        QueryResult::Streams(st) => st
            .iter()
            .flat_map(|s| {
                s.entries
                    .iter()
                    .map(move |e| format!("{} {} {}", s.labels, telltale_logql::fmt_num(e.ts as f64 / 1e9), e.line))
            })
            .collect(),
    }
}

/// Where a script's lines are loaded.
#[derive(Clone, Copy, Debug)]
enum Store {
    Memory,
    /// `LogDb` segments of 16-line blocks: each load is flushed.
    Segments,
}

/// A store and its directory (removed when dropped).
struct Loaded {
    store: Box<dyn LogReadWrite>,
    _dir: Option<tempfile::TempDir>,
}

trait LogReadWrite: LogReader + LogWriter {
    fn write_and_persist(&self, batch: &LogBatch);
}

impl LogReadWrite for MemLogStore {
    fn write_and_persist(&self, batch: &LogBatch) {
        self.write_logs(batch).unwrap();
    }
}

impl LogReadWrite for telltale_logstore::LogDb {
    fn write_and_persist(&self, batch: &LogBatch) {
        self.write_logs(batch).unwrap();
        self.flush().unwrap();
    }
}

impl Store {
    fn open(self) -> Loaded {
        match self {
            Store::Memory => Loaded { store: Box::new(MemLogStore::new()), _dir: None },
            Store::Segments => {
                let dir = tempfile::tempdir().unwrap();
                let opts = telltale_logstore::Options {
                    block_lines: 16,
                    compaction_target: 0,
                    retention_time: std::time::Duration::ZERO,
                    ..Default::default()
                };
                let store = Box::new(telltale_logstore::LogDb::open(dir.path(), &opts).unwrap());
                Loaded { store, _dir: Some(dir) }
            }
        }
    }
}

fn run_file(path: &Path, kind: Store) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let mut store = kind.open();
    let engine = Engine::new(EngineOptions::default());
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut cases = 0;
    let mut failures = Vec::new();
    while i < lines.len() {
        let line = lines[i].trim_end();
        i += 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let body = |i: &mut usize| {
            let mut out = Vec::new();
            while *i < lines.len() && lines[*i].starts_with("  ") {
                let l = lines[*i].trim();
                if !l.is_empty() && !l.starts_with('#') {
                    out.push(l.to_string());
                }
                *i += 1;
            }
            out
        };
        if line == "clear" {
            store = kind.open();
            continue;
        }
        if line == "load" {
            let mut batch = LogBatch::new();
            for l in body(&mut i) {
                let (labels, rest) = parse_labels(&l);
                let (ts, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                let (metadata, line) = if let Some(r) = rest.strip_prefix('@') {
                    let (m, r) = parse_labels(r);
                    (m, r)
                } else {
                    (Labels::empty(), rest)
                };
                batch.push_entry(&labels, LogEntry { ts: secs_ns(ts), line: line.to_string(), metadata });
            }
            store.store.write_and_persist(&batch);
            continue;
        }
        let Some(rest) = line.strip_prefix("eval ") else {
            panic!("{}:{i}: unknown directive {line:?}", path.display())
        };
        let (head, query) =
            rest.split_once(": ").unwrap_or_else(|| panic!("{}:{i}: eval needs ': QUERY'", path.display()));
        let words: Vec<&str> = head.split_whitespace().collect();
        let (want_error, words) = if words[0] == "error" { (true, &words[1..]) } else { (false, &words[..]) };
        let mut q = Query {
            text: query,
            start: 0,
            end: 0,
            step: 1,
            limit: 100,
            direction: Direction::Backward,
            categorize: false,
            instant: false,
        };
        let mut steps = Vec::new();
        match words[0] {
            "range" => {
                q.start = secs_ns(words[1]);
                q.end = secs_ns(words[2]);
                q.step = secs_ns(words[3]);
                let mut t = q.start;
                while q.step > 0 && t <= q.end {
                    steps.push(t);
                    t += q.step;
                }
            }
            "instant" => {
                q.instant = true;
                q.start = secs_ns(words[1]);
                q.end = q.start;
            }
            "logs" => {
                q.start = secs_ns(words[1]);
                q.end = secs_ns(words[2]);
                q.direction = if words[3] == "forward" { Direction::Forward } else { Direction::Backward };
                q.limit = words[4].parse().unwrap();
            }
            w => panic!("{}:{i}: unknown eval kind {w}", path.display()),
        }
        let want = body(&mut i);
        cases += 1;
        if std::env::var("LOGQL_TRACE").is_ok() {
            eprintln!("case {query}");
        }
        let at = format!("{}:{} ({kind:?}) {query}", path.display(), i);
        match (engine.query(&*store.store, &q), want_error) {
            (Ok(r), false) => {
                let got = fmt_result(&r, &steps);
                if got != want {
                    failures.push(format!("{at}\n  want: {want:#?}\n  got:  {got:#?}"));
                }
            }
            (Err(e), true) => {
                if !e.to_string().contains(&want.join(" ")) {
                    failures.push(format!("{at}\n  want error containing {:?}\n  got: {e}", want.join(" ")));
                }
            }
            (Ok(r), true) => failures.push(format!("{at}\n  want an error, got {:?}", fmt_result(&r, &steps))),
            (Err(e), false) => failures.push(format!("{at}\n  unexpected error: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
    cases
}

#[test]
fn testdata_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let mut total = 0;
    for f in &files {
        for kind in [Store::Memory, Store::Segments] {
            total += run_file(f, kind);
        }
    }
    assert!(total > 40, "only {total} cases ran");
}

#[test]
fn alert_rules_evaluate_logql_into_instant_vectors() {
    let store = MemLogStore::new();
    let mut b = LogBatch::new();
    for (app, n) in [("api", 12), ("db", 3)] {
        let l = Labels::from_pairs([("app", app)]).unwrap();
        b.push(l, (0..n).map(|i| LogEntry::new(1_000_000_000_000 + i * 1_000_000_000, format!("level=error n={i}"))));
    }
    store.write_logs(&b).unwrap();
    let engine = Engine::new(EngineOptions::default());
    let eval = telltale_logql::rule_query(&engine, &store);
    // A Loki ruler rule: more than 10 errors in 5 minutes.
    let at_ms = 1_000_000 + 60_000; // a minute after the first line (at 1000 s)
    let v = eval(r#"sum by (app) (count_over_time({app=~".+"} |= "level=error" [5m])) > 10"#, at_ms).unwrap();
    assert_eq!(v, vec![(Labels::from_pairs([("app", "api")]).unwrap(), 12.0)]);
    assert!(eval(r#"{app="api"}"#, at_ms).is_err(), "a log query is not an alert expression");
}
