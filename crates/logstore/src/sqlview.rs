//! What SQL engines read: the live segment files and the unflushed lines as Arrow batches,
//! under one schema (`timestamp`, `line`, then every label and metadata column of any segment
//! or of the head, as nullable strings, by name). A column a file lacks reads as null.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use telltale_model::Labels;

use crate::db::LogDb;
use crate::error::{Error, Result};
use crate::head::StreamHead;

/// A consistent picture of the store for one SQL query.
#[derive(Debug)]
pub struct SqlView {
    /// Segment files (Parquet), oldest first.
    pub files: Vec<PathBuf>,
    /// The table's schema.
    pub schema: SchemaRef,
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
        let mut fields = vec![
            Field::new("timestamp", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false),
            Field::new("line", DataType::Utf8, false),
        ];
        fields.extend(names.iter().map(|n| Field::new(n, DataType::Utf8, true)));
        let schema = Arc::new(Schema::new(fields));
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
        Ok(SqlView { files, schema, head })
    }
}

/// Copies of what `sql_view` needs, taken under the store's locks.
pub(crate) type SqlParts = (Vec<PathBuf>, BTreeSet<String>, Vec<(Labels, StreamHead)>);
