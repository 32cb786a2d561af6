//! What SQL engines read: the live segment files and the unflushed lines as Arrow batches,
//! under one schema (`timestamp`, `line`, then every label and metadata column of any segment
//! or of the head, as nullable strings, by name). A column a file lacks reads as null.
//!
//! Segment files hold lines encoded (`linecodec`): an engine reads them in
//! [`SqlView::segment_schema`], which has the encoded columns next to `line`, and makes
//! `line` with [`LineDecoder::decode`] (DataFusion: a scalar function).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampNanosecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use telltale_model::Labels;

use crate::db::{LogDb, Open};
use crate::error::{Error, Result};
use crate::head::StreamHead;

/// A consistent picture of the store for one SQL query.
#[derive(Debug)]
pub struct SqlView {
    /// Segment files (Parquet), oldest first.
    pub files: Vec<PathBuf>,
    /// The table's schema.
    pub schema: SchemaRef,
    /// The schema to read segment files in: `schema` with `line` nullable and the encoded
    /// line's columns ([`SqlView::ENCODED_LINE_COLUMNS`]) after it.
    pub segment_schema: SchemaRef,
    /// Makes `line` of segment rows.
    pub lines: LineDecoder,
    /// The unflushed lines, in `schema`.
    pub head: Vec<RecordBatch>,
}

/// The column a metadata key gets next to the stream's labels (as in segments).
pub(crate) fn meta_column(key: &str, labels: &Labels) -> String {
    crate::segment::meta_column_name(key, labels.get(key).is_some())
}

impl LogDb {
    /// The files, schema and head batches SQL reads.
    pub fn sql_view(&self) -> Result<SqlView> {
        let (files, mut names, heads) = self.sql_parts();
        for (labels, s) in &heads {
            names.extend(labels.iter().map(|(k, _)| k.to_string()));
            for m in &s.meta {
                names.extend(m.iter().map(|(k, _)| meta_column(k, labels)));
            }
        }
        names.remove("timestamp");
        names.remove("line");
        let ts = Field::new("timestamp", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false);
        let rest: Vec<Field> = names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect();
        let mut fields = vec![ts.clone(), Field::new("line", DataType::Utf8, false)];
        fields.extend(rest.iter().cloned());
        let schema = Arc::new(Schema::new(fields));
        let mut seg_fields = vec![ts, Field::new("line", DataType::Utf8, true)];
        seg_fields.push(Field::new(crate::segment::ENCODED_LINE_COLUMNS[0], DataType::UInt64, true));
        seg_fields
            .extend(crate::segment::ENCODED_LINE_COLUMNS[1..].iter().map(|c| Field::new(*c, DataType::Binary, true)));
        seg_fields.extend(rest);
        let segment_schema = Arc::new(Schema::new(seg_fields));
        let mut head = Vec::new();
        for (labels, s) in &heads {
            let order = s.order();
            let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            cols.push(Arc::new(
                TimestampNanosecondArray::from(order.iter().map(|&i| s.ts[i as usize]).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ));
            cols.push(Arc::new(StringArray::from(
                order.iter().map(|&i| std::str::from_utf8(s.line(i as usize)).unwrap_or("")).collect::<Vec<_>>(),
            )));
            for n in &names {
                let label = labels.get(n);
                let vals: Vec<Option<&str>> = order
                    .iter()
                    .map(|&i| {
                        label.or_else(|| {
                            s.meta[i as usize].iter().find(|(k, _)| meta_column(k, labels) == *n).map(|(_, v)| v)
                        })
                    })
                    .collect();
                cols.push(Arc::new(StringArray::from(vals)));
            }
            let batch = RecordBatch::try_new(schema.clone(), cols)
                .map_err(|e| Error::InvalidOptions(format!("cannot build the head's batch: {e}")))?;
            head.push(batch);
        }
        let lines = LineDecoder { segments: self.open_segments() };
        Ok(SqlView { files, schema, segment_schema, head, lines })
    }
}

impl SqlView {
    /// The columns of a segment file that encode its lines: segment id, template, numbers,
    /// hex ids, dictionary refs.
    pub const ENCODED_LINE_COLUMNS: [&'static str; 5] = crate::segment::ENCODED_LINE_COLUMNS;
}

/// Decodes the lines of segment rows, for SQL.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    segments: HashMap<u64, Arc<Open>>,
}

impl LineDecoder {
    /// The lines of rows given as the columns `segment`, `line`, the template and variables,
    /// and `timestamp` (`ENCODED_LINE_COLUMNS` with `line` after the first, then the
    /// timestamp): `line` where the row has it (a segment of text lines), else the decoded
    /// template.
    pub fn decode(&self, cols: &[ArrayRef]) -> Result<ArrayRef> {
        let bad = |why: &str| Error::InvalidOptions(format!("cannot decode lines: {why}"));
        let [seg, line, t, nums, hexes, refs, ts] = cols else { return Err(bad("expected 7 columns")) };
        let seg = seg.as_primitive_opt::<UInt64Type>().ok_or_else(|| bad("segment is not UInt64"))?;
        let line = line.as_string_opt::<i32>().ok_or_else(|| bad("line is not a string"))?;
        let ts = ts.as_primitive_opt::<TimestampNanosecondType>().ok_or_else(|| bad("timestamp is not ns"))?;
        let enc: Vec<_> = [t, nums, hexes, refs]
            .iter()
            .map(|c| c.as_binary_opt::<i32>())
            .collect::<Option<_>>()
            .ok_or_else(|| bad("encoded columns are not binary"))?;
        let mut dicts: HashMap<u64, Arc<Vec<u8>>> = HashMap::new();
        let mut decoder = crate::linecodec::Decoder::default();
        let mut out = arrow_array::builder::StringBuilder::with_capacity(line.len(), line.len() * 128);
        let mut buf = Vec::new();
        for i in 0..line.len() {
            if line.is_valid(i) {
                out.append_value(line.value(i));
                continue;
            }
            if enc[0].is_null(i) || seg.is_null(i) {
                out.append_null();
                continue;
            }
            let id = seg.value(i);
            let dict = match dicts.get(&id) {
                Some(d) => d.clone(),
                None => {
                    let o = self.segments.get(&id).ok_or_else(|| bad(&format!("segment {id} is gone")))?;
                    let d = o.seg.dict()?;
                    dicts.insert(id, d.clone());
                    d
                }
            };
            buf.clear();
            let [template, nums, hexes, refs] = [0, 1, 2, 3].map(|k| enc[k].value(i));
            decoder
                .decode(&dict, crate::linecodec::RowRef { template, nums, hexes, refs }, ts.value(i), &mut buf)
                .ok_or_else(|| bad(&format!("a malformed row in segment {id}")))?;
            out.append_value(String::from_utf8_lossy(&buf));
        }
        Ok(Arc::new(out.finish()))
    }
}

/// Copies of what `sql_view` needs, taken under the store's locks.
pub(crate) type SqlParts = (Vec<PathBuf>, BTreeSet<String>, Vec<(Labels, StreamHead)>);
