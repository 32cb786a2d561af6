//! The read path before PromQL: `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values` (Prometheus JSON shapes,
//! <https://prometheus.io/docs/prometheus/latest/querying/api/#querying-metadata>) and
//! `/api/v1/export` (VictoriaMetrics JSON lines,
//! <https://docs.victoriametrics.com/#how-to-export-data-in-json-line-format>).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use telltale_model::{Labels, Matcher};
use telltale_storage::{MetricStore, Series};

use crate::params::Params;
use crate::tenant::Scoped;
use crate::ApiError;

/// Serializes [`Labels`] as a JSON object without copying.
pub(crate) struct LabelsJson<'a>(pub(crate) &'a Labels);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

pub(crate) fn success<T: Serialize>(data: T) -> Response {
    #[derive(serde::Serialize)]
    struct Ok<T> {
        status: &'static str,
        data: T,
    }
    match serde_json::to_vec(&Ok { status: "success", data }) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::internal(format!("cannot encode response: {e}")).into_response(),
    }
}

fn truncate<T>(mut v: Vec<T>, limit: usize) -> Vec<T> {
    if limit > 0 {
        v.truncate(limit);
    }
    v
}

/// Union over selectors of `f(store, matchers)`, sorted and deduplicated.
fn union<T: Ord>(
    store: &dyn MetricStore,
    selectors: &[Vec<Matcher>],
    f: impl Fn(&dyn MetricStore, &[Matcher]) -> telltale_storage::Result<Vec<T>>,
) -> Result<Vec<T>, ApiError> {
    if selectors.is_empty() {
        return Ok(f(store, &[])?);
    }
    let mut out = BTreeSet::new();
    for m in selectors {
        out.extend(f(store, m)?);
    }
    Ok(out.into_iter().collect())
}

/// `GET|POST /api/v1/series`
pub(crate) async fn series(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let (range, selectors, limit) = (p.range()?, p.selectors()?, p.limit()?);
    if selectors.is_empty() {
        return Err(ApiError::bad_input("no match[] parameter provided"));
    }
    let found = app.blocking(move |s| union(s, &selectors, |s, m| s.series(range, m))).await?;
    let found = truncate(found, limit);
    Ok(success(found.iter().map(LabelsJson).collect::<Vec<_>>()))
}

/// `GET|POST /api/v1/labels`
pub(crate) async fn labels(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let (range, selectors, limit) = (p.range()?, p.selectors()?, p.limit()?);
    let names = app.blocking(move |s| union(s, &selectors, |s, m| s.label_names(range, m))).await?;
    Ok(success(truncate(names, limit)))
}

/// `GET|POST /api/v1/label/<name>/values`
pub(crate) async fn label_values(app: Scoped, Path(name): Path<String>, p: Params) -> Result<Response, ApiError> {
    let (range, selectors, limit) = (p.range()?, p.selectors()?, p.limit()?);
    let values = app.blocking(move |s| union(s, &selectors, |s, m| s.label_values(&name, range, m))).await?;
    Ok(success(truncate(values, limit)))
}

/// `GET|POST /api/v1/export`: one JSON object per series and line, streamed as it is
/// encoded (the store hands over the selected series at once; encoding is what streams).
pub(crate) async fn export(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let (range, selectors) = (p.range()?, p.selectors()?);
    if selectors.is_empty() {
        return Err(ApiError::bad_input("no match[] parameter provided"));
    }
    let found = app
        .blocking(move |s| {
            let mut all: Vec<Series> = Vec::new();
            for m in &selectors {
                all.extend(s.select(range, m)?);
            }
            // Several selectors may select the same series: keep one.
            all.sort_by(|a, b| a.labels.cmp(&b.labels));
            all.dedup_by(|a, b| a.labels == b.labels);
            Ok(all)
        })
        .await?;
    // Encode in groups so a large export is never held twice in memory.
    let chunks: Vec<Vec<Series>> = chunked(found, 256);
    let stream = futures_util::stream::iter(chunks.into_iter().map(|group| {
        let mut buf = Vec::new();
        for s in &group {
            export_line(&mut buf, s);
        }
        Ok::<_, std::convert::Infallible>(buf)
    }));
    Ok(([(header::CONTENT_TYPE, "application/stream+json")], Body::from_stream(stream)).into_response())
}

fn chunked<T>(v: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(v.len().div_ceil(n));
    let mut it = v.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(n).collect());
    }
    out
}

/// `{"metric":{...},"values":[...],"timestamps":[...]}\n`. JSON has no NaN or infinity, so,
/// as VictoriaMetrics does, NaN (including stale markers) is `null` and the infinities are
/// the strings `"Infinity"` and `"-Infinity"`.
pub(crate) fn export_line(buf: &mut Vec<u8>, s: &Series) {
    buf.extend_from_slice(b"{\"metric\":");
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &LabelsJson(&s.labels));
    buf.extend_from_slice(b",\"values\":[");
    for (i, x) in s.samples.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        if x.v.is_nan() {
            buf.extend_from_slice(b"null");
        } else if x.v.is_infinite() {
            buf.extend_from_slice(if x.v > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
        } else {
            let _ = serde_json::to_writer(&mut *buf, &x.v);
        }
    }
    buf.extend_from_slice(b"],\"timestamps\":[");
    for (i, x) in s.samples.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(x.t.to_string().as_bytes());
    }
    buf.extend_from_slice(b"]}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::Sample;

    #[test]
    fn export_lines() {
        let s = Series {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]).unwrap(),
            samples: vec![
                Sample::new(1000, 1.0),
                Sample::new(2000, 0.5),
                Sample::new(3000, f64::NAN),
                Sample::new(4000, f64::NEG_INFINITY),
                Sample::new(5000, 1e-300),
            ],
        };
        let mut buf = Vec::new();
        export_line(&mut buf, &s);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\\\"b\"},\"values\":[1.0,0.5,null,\"-Infinity\",1e-300],\
             \"timestamps\":[1000,2000,3000,4000,5000]}\n"
        );
    }

    #[test]
    fn chunks() {
        assert_eq!(chunked((0..5).collect(), 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(chunked(Vec::<u8>::new(), 2).is_empty());
    }
}
