//! SQL over the logs: Apache DataFusion reading the log store's Parquet segments directly,
//! plus its unflushed lines, as one table `logs` (`timestamp`, `line`, then one column per
//! stream label and kept field).
//!
//! Input: a SQL text; output: column names and rows as JSON values (numbers as numbers,
//! strings as strings, timestamps as RFC 3339). Only queries run: DDL, DML and statements
//! (`SET`, `COPY`, ...) are refused, and a memory limit bounds what one query may hold.
//!
//! The one design decision to know: DataFusion lives in this crate and the binary only, so the
//! crates most changes touch never compile it; the HTTP layer reaches it through
//! `telltale_api::SqlService`.
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::TimeUnit;
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use serde_json::Value;
use telltale_logstore::{LineDecoder, LogDb, SqlView};
use telltale_model::ErrorKind;

/// Limits of SQL queries.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlOptions {
    /// Most rows returned; the rest is cut and the answer says `truncated`.
    pub max_rows: usize,
    /// Memory one query may hold in DataFusion's operators, in bytes.
    pub memory_limit: usize,
    /// Longest a query may run.
    pub timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        Self { max_rows: 10_000, memory_limit: 256 << 20, timeout: Duration::from_secs(120) }
    }
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlOutput {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each one value per column.
    pub rows: Vec<Vec<Value>>,
    /// Whether rows past `max_rows` were left out.
    pub truncated: bool,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQL does not parse or plan (unknown column, bad syntax, a statement that is not a query).
    #[error("{0}")]
    Invalid(String),
    /// It ran out of time.
    #[error("sql query timed out after {0:?}")]
    Timeout(Duration),
    /// Execution failed (memory limit, unreadable file).
    #[error("{0}")]
    Execution(String),
}

impl Error {
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::InvalidInput,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Execution(_) => ErrorKind::Internal,
        }
    }
}

fn df(e: datafusion::error::DataFusionError) -> Error {
    use datafusion::error::DataFusionError as D;
    let message = e.to_string();
    match e.find_root() {
        D::SQL(..) | D::Plan(_) | D::SchemaError(..) | D::NotImplemented(_) => Error::Invalid(message),
        D::ResourcesExhausted(_) => Error::Execution(format!("{message} (the limit is logs.sql.memory_limit)")),
        _ => Error::Execution(message),
    }
}

/// Runs SQL against a log store.
pub struct SqlEngine {
    logs: Arc<LogDb>,
    opts: SqlOptions,
}

impl SqlEngine {
    /// An engine over `logs`.
    pub fn new(logs: Arc<LogDb>, opts: SqlOptions) -> Self {
        Self { logs, opts }
    }

    /// Runs one query.
    pub async fn query(&self, sql: &str) -> Result<SqlOutput, Error> {
        match tokio::time::timeout(self.opts.timeout, self.run(sql)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(self.opts.timeout)),
        }
    }

    async fn run(&self, sql: &str) -> Result<SqlOutput, Error> {
        let view = self.logs.sql_view().map_err(|e| Error::Execution(e.to_string()))?;
        let runtime =
            RuntimeEnvBuilder::new().with_memory_limit(self.opts.memory_limit, 1.0).build_arc().map_err(df)?;
        let config = SessionConfig::new().with_target_partitions(2).with_information_schema(true);
        let state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        let ctx = SessionContext::new_with_state(state);
        let schema = view.schema.clone();
        let mut parts: Vec<String> = Vec::new();
        if !view.files.is_empty() {
            let urls = view
                .files
                .iter()
                .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(df)?;
            let opts = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(opts)
                .with_schema(view.segment_schema.clone());
            ctx.register_table("segments", Arc::new(ListingTable::try_new(config).map_err(df)?)).map_err(df)?;
            ctx.register_udf(ScalarUDF::from(LineUdf::new(view.lines)));
            let enc = SqlView::ENCODED_LINE_COLUMNS.map(quote);
            let mut cols = vec![
                "timestamp".to_string(),
                format!("{LINE_FN}({}, line, {}, timestamp) AS line", enc[0], enc[1..].join(", ")),
            ];
            cols.extend(schema.fields().iter().skip(2).map(|f| quote(f.name())));
            parts.push(format!("SELECT {} FROM segments", cols.join(", ")));
        }
        if !view.head.is_empty() || parts.is_empty() {
            let mem = MemTable::try_new(schema.clone(), vec![view.head]).map_err(df)?;
            ctx.register_table("head", Arc::new(mem)).map_err(df)?;
            parts.push("SELECT * FROM head".into());
        }
        ctx.sql(&format!("CREATE VIEW logs AS {}", parts.join(" UNION ALL "))).await.map_err(df)?;
        let only_queries = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let frame = ctx.sql_with_options(sql, only_queries).await.map_err(df)?;
        let columns: Vec<String> = frame.schema().fields().iter().map(|f| f.name().clone()).collect();
        let batches = frame.limit(0, Some(self.opts.max_rows + 1)).map_err(df)?.collect().await.map_err(df)?;
        let mut rows = Vec::new();
        for b in &batches {
            append_rows(b, &mut rows).map_err(|e| Error::Execution(e.to_string()))?;
        }
        let truncated = rows.len() > self.opts.max_rows;
        rows.truncate(self.opts.max_rows);
        Ok(SqlOutput { columns, rows, truncated })
    }
}

/// A SQL identifier, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The scalar function that makes `line` of segment rows (they hold it encoded).
const LINE_FN: &str = "telltale_line";

#[derive(Debug)]
struct LineUdf {
    decoder: LineDecoder,
    signature: Signature,
}

impl LineUdf {
    fn new(decoder: LineDecoder) -> Self {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let args = [DataType::UInt64, DataType::Utf8]
            .into_iter()
            .chain(std::iter::repeat_n(DataType::Binary, 4))
            .chain([ts])
            .collect();
        Self { decoder, signature: Signature::exact(args, Volatility::Immutable) }
    }
}

impl PartialEq for LineUdf {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for LineUdf {}

impl std::hash::Hash for LineUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        LINE_FN.hash(state);
    }
}

impl ScalarUDFImpl for LineUdf {
    fn name(&self) -> &str {
        LINE_FN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let cols = ColumnarValue::values_to_arrays(&args.args)?;
        let lines = self.decoder.decode(&cols).map_err(|e| DataFusionError::Execution(e.to_string()))?;
        Ok(ColumnarValue::Array(lines))
    }
}

fn append_rows(b: &RecordBatch, rows: &mut Vec<Vec<Value>>) -> Result<(), datafusion::arrow::error::ArrowError> {
    let start = rows.len();
    rows.extend((0..b.num_rows()).map(|_| Vec::with_capacity(b.num_columns())));
    let fmt = FormatOptions::default().with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%S%.9fZ"));
    for col in b.columns() {
        let f = ArrayFormatter::try_new(col.as_ref(), &fmt)?;
        for i in 0..b.num_rows() {
            let v = if col.is_null(i) {
                Value::Null
            } else {
                match col.data_type() {
                    DataType::Boolean => Value::Bool(col.as_boolean().value(i)),
                    DataType::Int8 => Value::from(col.as_primitive::<Int8Type>().value(i)),
                    DataType::Int16 => Value::from(col.as_primitive::<Int16Type>().value(i)),
                    DataType::Int32 => Value::from(col.as_primitive::<Int32Type>().value(i)),
                    DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(i)),
                    DataType::UInt8 => Value::from(col.as_primitive::<UInt8Type>().value(i)),
                    DataType::UInt16 => Value::from(col.as_primitive::<UInt16Type>().value(i)),
                    DataType::UInt32 => Value::from(col.as_primitive::<UInt32Type>().value(i)),
                    DataType::UInt64 => Value::from(col.as_primitive::<UInt64Type>().value(i)),
                    DataType::Float32 => float(f64::from(col.as_primitive::<Float32Type>().value(i))),
                    DataType::Float64 => float(col.as_primitive::<Float64Type>().value(i)),
                    _ => Value::String(f.value(i).to_string()),
                }
            };
            rows[start + i].push(v);
        }
    }
    Ok(())
}

fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(|| Value::String(format!("{v}")), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::{Labels, LogBatch, LogEntry};
    use telltale_storage::{LogWriter, Maintenance};

    fn db(dir: &std::path::Path) -> Arc<LogDb> {
        Arc::new(LogDb::open(dir, &telltale_logstore::Options::default()).unwrap())
    }

    type Line<'a> = (i64, &'a str, &'a [(&'a str, &'a str)]);

    fn write(db: &LogDb, job: &str, lines: &[Line<'_>]) {
        let mut b = LogBatch::new();
        let entries = lines.iter().map(|(t, l, m)| LogEntry {
            ts: *t,
            line: l.to_string(),
            metadata: Labels::from_pairs(m.iter().copied()).unwrap(),
        });
        b.push(Labels::from_pairs([("job", job)]).unwrap(), entries.collect::<Vec<_>>());
        db.write_logs(&b).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_and_head_are_one_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        write(
            &db,
            "api",
            &[(1_000_000_000, "GET /a", &[("status", "200")]), (2_000_000_000, "GET /b", &[("status", "500")])],
        );
        db.flush().unwrap();
        write(&db, "worker", &[(3_000_000_000, "job done", &[])]);
        let e = SqlEngine::new(db.clone(), SqlOptions::default());
        let out = e.query("SELECT count(*) AS n FROM logs").await.unwrap();
        assert_eq!((out.columns.clone(), out.rows.clone()), (vec!["n".to_string()], vec![vec![Value::from(3)]]));
        let out = e.query("SELECT timestamp, job, line, status FROM logs ORDER BY timestamp").await.unwrap();
        assert_eq!(
            out.rows,
            vec![
                vec![Value::from("1970-01-01T00:00:01.000000000Z"), "api".into(), "GET /a".into(), "200".into()],
                vec![Value::from("1970-01-01T00:00:02.000000000Z"), "api".into(), "GET /b".into(), "500".into()],
                vec![Value::from("1970-01-01T00:00:03.000000000Z"), "worker".into(), "job done".into(), Value::Null],
            ]
        );
        let out = e.query("SELECT job, count(*) AS c FROM logs WHERE line LIKE 'GET%' GROUP BY job").await.unwrap();
        assert_eq!(out.rows, vec![vec![Value::from("api"), Value::from(2)]]);
        let err = e.query("SELECT nope FROM logs").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = e.query("DROP VIEW logs").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let e = SqlEngine::new(db, SqlOptions { max_rows: 2, ..SqlOptions::default() });
        let out = e.query("SELECT line FROM logs").await.unwrap();
        assert_eq!((out.rows.len(), out.truncated), (2, true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_come_back_exactly_from_encoded_and_text_segments() {
        let dir = tempfile::tempdir().unwrap();
        let ts = 1_796_579_784_000_625_000; // 2026-12-06T17:56:24.000625Z
        let trace = "5a1e518fcfcf0d64aa76dd0138337051";
        let lines = [
            format!(
                r#"{{"ts":"2026-12-06T17:56:24.000625Z","trace_id":"{trace}","rid":"821e014c47ab84ed","ms":13.0}}"#
            ),
            format!("ts=2026-12-06T17:56:24.000Z trace_id={trace} user_id=4321 n=007 v=1.2.3"),
            "10.1.2.3 - - [06/Dec/2026:17:56:24 +0000] \"GET /a?x=1 HTTP/1.1\" 200 2888 rt=0.078".to_string(),
        ];
        {
            let opts = telltale_logstore::Options { plain_lines: true, ..Default::default() };
            let db = LogDb::open(dir.path(), &opts).unwrap();
            write(&db, "text", &[(ts, &lines[0], &[])]);
            db.flush().unwrap();
        }
        // Without compaction flushes encode lines.
        let opts = telltale_logstore::Options { compaction_target: 0, ..Default::default() };
        let db = Arc::new(LogDb::open(dir.path(), &opts).unwrap());
        for (k, l) in lines.iter().enumerate() {
            write(&db, "enc", &[(ts + k as i64, l, &[])]);
        }
        db.flush().unwrap();
        let e = SqlEngine::new(db, SqlOptions::default());
        let out = e.query("SELECT job, line FROM logs ORDER BY job, timestamp").await.unwrap();
        let want: Vec<Vec<Value>> = [("enc", 0), ("enc", 1), ("enc", 2), ("text", 0)]
            .iter()
            .map(|(j, k)| vec![Value::from(*j), Value::from(lines[*k].as_str())])
            .collect();
        assert_eq!(out.rows, want);
        let out = e.query(&format!("SELECT count(*) FROM logs WHERE line LIKE '%{trace}%'")).await.unwrap();
        assert_eq!(out.rows, vec![vec![Value::from(3)]]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_store_has_an_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        let e = SqlEngine::new(db(dir.path()), SqlOptions::default());
        let out = e.query("SELECT count(*) FROM logs").await.unwrap();
        assert_eq!(out.rows, vec![vec![Value::from(0)]]);
    }
}
