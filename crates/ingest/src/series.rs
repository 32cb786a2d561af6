//! Building one series' [`Labels`] while enforcing the per-series [`Limits`]: the code every
//! decoder shares, so the checks and error texts are the same on every write path.

use telltale_model::{Labels, LabelsBuilder, LabelsError, METRIC_NAME};

use crate::error::{excerpt, Error, Result};
use crate::limits::{over, Limits};

/// A reusable [`LabelsBuilder`] plus a label count. Reuse one across the series of a request
/// (`build` clears it) so each series costs exactly the one allocation of its `Labels`.
#[derive(Default)]
pub(crate) struct SeriesBuilder<'a> {
    b: LabelsBuilder<'a>,
    n: usize,
}

impl<'a> SeriesBuilder<'a> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a label after checking name and value lengths. Empty values mean "no label" in
    /// Prometheus's model: they are dropped by `build` and do not count.
    #[inline]
    pub(crate) fn push(&mut self, name: &'a str, value: &'a str, limits: &Limits) -> Result<()> {
        if over(name.len(), limits.max_label_name_length) {
            return Err(self.limit_error(
                "max_label_name_length",
                limits.max_label_name_length,
                format!("label name {} ({} bytes)", excerpt(name.as_bytes()), name.len()),
            ));
        }
        if over(value.len(), limits.max_label_value_length) {
            return Err(self.limit_error(
                "max_label_value_length",
                limits.max_label_value_length,
                format!("label {name}={} ({} bytes)", excerpt(value.as_bytes()), value.len()),
            ));
        }
        self.n += usize::from(!value.is_empty());
        self.b.push(name, value);
        Ok(())
    }

    /// Whether a label with this name was pushed.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.b.get(name).is_some()
    }

    /// Encodes the labels pushed so far and clears the builder for the next series.
    pub(crate) fn build(&mut self, limits: &Limits) -> Result<Labels> {
        let n = std::mem::take(&mut self.n);
        let built = self.b.build();
        let labels = built.map_err(|e| Error::InvalidSeries {
            series: describe(self.b.get(METRIC_NAME).unwrap_or("")),
            reason: match e {
                LabelsError::Duplicate(n) => format!("duplicate label name {n:?}"),
                LabelsError::EmptyName => "empty label name".to_string(),
                other => other.to_string(),
            },
        });
        self.b.clear();
        let labels = labels?;
        if labels.is_empty() {
            return Err(Error::InvalidSeries { series: "{}".into(), reason: "series has no labels".into() });
        }
        if over(n, limits.max_labels_per_series) {
            return Err(Error::Limit {
                limit: "max_labels_per_series",
                max: limits.max_labels_per_series as u64,
                subject: format!("series {labels} ({n} labels)"),
            });
        }
        Ok(labels)
    }

    fn limit_error(&mut self, limit: &'static str, max: usize, what: String) -> Error {
        let name = self.b.get(METRIC_NAME).unwrap_or("").to_string();
        self.b.clear();
        self.n = 0;
        Error::Limit { limit, max: max as u64, subject: format!("{what} of series {}", describe(&name)) }
    }
}

fn describe(metric_name: &str) -> String {
    if metric_name.is_empty() {
        "without __name__".to_string()
    } else {
        excerpt(metric_name.as_bytes())
    }
}

/// Checks the running series and sample counts of a request.
#[inline]
pub(crate) fn check_request(series: usize, samples: usize, limits: &Limits) -> Result<()> {
    if over(series, limits.max_series_per_request) {
        return Err(Error::Limit {
            limit: "max_series_per_request",
            max: limits.max_series_per_request as u64,
            subject: "the request".into(),
        });
    }
    if over(samples, limits.max_samples_per_request) {
        return Err(Error::Limit {
            limit: "max_samples_per_request",
            max: limits.max_samples_per_request as u64,
            subject: "the request".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::ErrorKind;

    #[test]
    fn limits_name_the_config_key() {
        let limits = Limits { max_labels_per_series: 2, ..Limits::default() };
        let mut b = SeriesBuilder::new();
        for (n, v) in [("__name__", "up"), ("a", "1"), ("b", "2")] {
            b.push(n, v, &limits).unwrap();
        }
        let e = b.build(&limits).unwrap_err();
        assert_eq!(e.to_string(), r#"max_labels_per_series (2) exceeded by series up{a="1", b="2"} (3 labels)"#);
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);

        // Empty values do not count, and the builder is clean after an error.
        for (n, v) in [("__name__", "up"), ("a", "1"), ("b", "")] {
            b.push(n, v, &limits).unwrap();
        }
        assert_eq!(b.build(&limits).unwrap().to_string(), r#"up{a="1"}"#);

        let limits = Limits { max_label_value_length: 3, ..Limits::default() };
        b.push("__name__", "up", &limits).unwrap();
        let e = b.push("job", "node", &limits).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"max_label_value_length (3) exceeded by label job="node" (4 bytes) of series "up""#
        );
    }

    #[test]
    fn invalid_series() {
        let limits = Limits::default();
        let mut b = SeriesBuilder::new();
        b.push("__name__", "x", &limits).unwrap();
        b.push("a", "1", &limits).unwrap();
        b.push("a", "2", &limits).unwrap();
        assert_eq!(b.build(&limits).unwrap_err().to_string(), r#"invalid series "x": duplicate label name "a""#);
        assert_eq!(b.build(&limits).unwrap_err().to_string(), "invalid series {}: series has no labels");
        let e = check_request(3, 1, &Limits { max_series_per_request: 2, ..Limits::default() }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(e.to_string(), "max_series_per_request (2) exceeded by the request");
    }
}
