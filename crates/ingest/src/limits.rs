//! Per-request limits every decoder enforces while it decodes, so a hostile or broken client
//! costs bounded memory and gets a 4xx naming the breached limit by its config key.
//!
//! Defaults (and where they come from):
//!
//! | key | default | precedent |
//! |---|---|---|
//! | `max_labels_per_series` | 30 | VictoriaMetrics `-maxLabelsPerTimeseries`, Mimir `max_label_names_per_series` |
//! | `max_label_name_length` | 1024 bytes | Mimir `max_label_name_length` |
//! | `max_label_value_length` | 4096 bytes | VictoriaMetrics `-maxLabelValueLen` (4 KiB) |
//! | `max_series_per_request` | 100,000 | 10x a large remote write shard (`max_samples_per_send` 2,000-10,000) |
//! | `max_samples_per_request` | 1,000,000 | 16 MB of decoded samples |
//! | `max_decompressed_bytes` | `"32MiB"` | Prometheus's own remote write receiver (`decodeReadLimit`) |
//!
//! A value of 0 disables that limit. Unlike VictoriaMetrics, which silently drops extra labels
//! or truncates values, a breach rejects the request: silent rewriting would merge series.

use serde::{Deserialize, Deserializer};

/// Limits applied inside the decoders. Part of the server config (YAML) via serde.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most labels (including `__name__`) one series may have; more rejects the request.
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes.
    pub max_label_name_length: usize,
    /// Longest label value (including the metric name), in bytes.
    pub max_label_value_length: usize,
    /// Most series one request may carry (a series repeated in a request counts each time).
    pub max_series_per_request: usize,
    /// Most samples one request may carry.
    pub max_samples_per_request: usize,
    /// Largest decompressed size of a snappy body, as a byte count or a size string
    /// (`"32MiB"`, `"512KiB"`, `"1GB"`). Checked against the size the block header announces,
    /// before any memory is allocated.
    #[serde(deserialize_with = "deserialize_size")]
    pub max_decompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_labels_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
            max_series_per_request: 100_000,
            max_samples_per_request: 1_000_000,
            max_decompressed_bytes: 32 << 20,
        }
    }
}

impl Limits {
    /// No limit at all (every field 0). For tests and fuzzing.
    pub fn unlimited() -> Self {
        Limits {
            max_labels_per_series: 0,
            max_label_name_length: 0,
            max_label_value_length: 0,
            max_series_per_request: 0,
            max_samples_per_request: 0,
            max_decompressed_bytes: 0,
        }
    }
}

/// Whether a limit key is about the request's overall size (so an error is `TooLarge`,
/// 413) rather than about one series (`LimitExceeded`).
pub(crate) fn is_request_size_limit(key: &str) -> bool {
    matches!(
        key,
        "max_series_per_request" | "max_samples_per_request" | "max_decompressed_bytes" | "max_entries_per_request"
    )
}

/// `n > max`, where a `max` of 0 means "no limit".
#[inline]
pub(crate) fn over(n: usize, max: usize) -> bool {
    max != 0 && n > max
}

/// Parses `1234`, `"1234"`, `"64KiB"`, `"32MiB"`, `"1GiB"`, `"10MB"` (decimal), `"5B"`.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    num.checked_mul(mult)
}

fn deserialize_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Int(u64),
        Str(String),
    }
    match Size::deserialize(d)? {
        Size::Int(n) => Ok(n),
        Size::Str(s) => parse_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {s:?}: want a byte count or a number with B, KiB, MiB, GiB, KB, MB or GB"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_config() {
        let l: Limits =
            serde_json::from_str(r#"{"max_labels_per_series": 40, "max_decompressed_bytes": "1MiB"}"#).unwrap();
        assert_eq!(l.max_labels_per_series, 40);
        assert_eq!(l.max_decompressed_bytes, 1 << 20);
        assert_eq!(l.max_series_per_request, Limits::default().max_series_per_request);
        let l: Limits = serde_json::from_str(r#"{"max_decompressed_bytes": 123}"#).unwrap();
        assert_eq!(l.max_decompressed_bytes, 123);
    }

    #[test]
    fn unknown_keys_and_bad_sizes_are_errors() {
        let e = serde_json::from_str::<Limits>(r#"{"max_lables_per_series": 40}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_lables_per_series`"), "{e}");
        let e = serde_json::from_str::<Limits>(r#"{"max_decompressed_bytes": "12 parsecs"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid size"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("32MiB"), Some(32 << 20));
        assert_eq!(parse_size("10 MB"), Some(10_000_000));
        assert_eq!(parse_size("7"), Some(7));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("99999999999999GiB"), None);
    }

    #[test]
    fn zero_disables() {
        assert!(!over(1_000_000, 0));
        assert!(over(31, 30));
        assert!(!over(30, 30));
    }
}
