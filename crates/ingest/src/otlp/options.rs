use serde::{Deserialize, Serialize};

/// How OTLP metrics become Prometheus series. The defaults match Prometheus 3's own OTLP receiver
/// (`otlp:` section of prometheus.yml, whose key names these reuse so that section can be pasted),
/// except `promote_scope_metadata`, which follows the OpenTelemetry compatibility spec.
/// See `docs/otlp.md` for every decision and its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpOptions {
    /// How metric and label names are translated; Prometheus's names and default
    /// (`UnderscoreEscapingWithSuffixes`: `http.server.duration` with unit `s` becomes
    /// `http_server_duration_seconds`).
    pub translation_strategy: TranslationStrategy,
    /// Resource attributes copied as labels onto every series of that resource (after name
    /// translation), besides `job` and `instance`. A data point attribute of the same name wins.
    pub promote_resource_attributes: Vec<String>,
    /// Copy every resource attribute as a label, except those in `ignore_resource_attributes`.
    /// Cannot be combined with a non-empty `promote_resource_attributes`.
    pub promote_all_resource_attributes: bool,
    /// With `promote_all_resource_attributes`, the resource attributes not to copy.
    pub ignore_resource_attributes: Vec<String>,
    /// Also keep `service.name`, `service.namespace` and `service.instance.id` as labels of the
    /// `target_info` series (they always become `job` and `instance`).
    pub keep_identifying_resource_attributes: bool,
    /// Add the instrumentation scope as `otel_scope_name`, `otel_scope_version`,
    /// `otel_scope_schema_url` and `otel_scope_<attribute>` labels to every series. The
    /// compatibility spec requires this by default; Prometheus 3 defaults to `false`.
    pub promote_scope_metadata: bool,
    /// Write one `target_info` series per resource holding its other attributes (value 1), so
    /// they can be joined in PromQL instead of being copied onto every series.
    pub target_info: bool,
    /// What to do with sums and histograms that use delta aggregation temporality.
    pub delta_temporality: DeltaTemporality,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        Self {
            translation_strategy: TranslationStrategy::default(),
            promote_resource_attributes: Vec::new(),
            promote_all_resource_attributes: false,
            ignore_resource_attributes: Vec::new(),
            keep_identifying_resource_attributes: false,
            promote_scope_metadata: true,
            target_info: true,
            delta_temporality: DeltaTemporality::default(),
        }
    }
}

impl OtlpOptions {
    /// Checks what serde cannot: `promote_all_resource_attributes` excludes a promotion list,
    /// and `ignore_resource_attributes` only means something with it (Prometheus refuses both).
    pub fn validate(&self) -> super::Result<()> {
        if self.promote_all_resource_attributes && !self.promote_resource_attributes.is_empty() {
            return Err(super::Error::InvalidOptions(
                "promote_all_resource_attributes and promote_resource_attributes are mutually exclusive",
            ));
        }
        if !self.promote_all_resource_attributes && !self.ignore_resource_attributes.is_empty() {
            return Err(super::Error::InvalidOptions(
                "ignore_resource_attributes needs promote_all_resource_attributes: true",
            ));
        }
        Ok(())
    }
}

/// Prometheus 3's `otlp.translation_strategy` values, spelled as Prometheus spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TranslationStrategy {
    /// Invalid characters become `_`, unit and type suffixes (`_seconds`, `_total`, `_ratio`) are added.
    #[default]
    UnderscoreEscapingWithSuffixes,
    /// Invalid characters become `_`, no suffixes.
    UnderscoreEscapingWithoutSuffixes,
    /// Names are kept as UTF-8 (`http.server.duration_seconds`), suffixes are added.
    #[serde(rename = "NoUTF8EscapingWithSuffixes")]
    NoUtf8EscapingWithSuffixes,
    /// Names are kept exactly as sent.
    NoTranslation,
}

impl TranslationStrategy {
    pub(crate) fn escapes(self) -> bool {
        matches!(self, Self::UnderscoreEscapingWithSuffixes | Self::UnderscoreEscapingWithoutSuffixes)
    }

    pub(crate) fn adds_suffixes(self) -> bool {
        matches!(self, Self::UnderscoreEscapingWithSuffixes | Self::NoUtf8EscapingWithSuffixes)
    }
}

/// Handling of delta aggregation temporality (sums and histograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaTemporality {
    /// Drop the points and count them in [`super::Dropped::delta_points`], as Prometheus 3 does by
    /// default. Turning deltas into cumulative counters needs state across requests, which a pure
    /// decoder does not keep; configure the SDK for cumulative temporality instead.
    #[default]
    Drop,
    /// Store each delta point as it is (like Prometheus's `otlp-native-delta-ingestion` feature),
    /// under the same name, with metadata type `unknown`; query with `sum_over_time`, not `rate`.
    Ingest,
}

/// Per-request limits; breaking one refuses the whole request with [`super::Error::LimitExceeded`].
/// Zero means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpLimits {
    /// Most samples one request may produce (a histogram point gives one per bucket, plus 2).
    pub max_samples_per_request: usize,
    /// Most labels one series may carry, `__name__` included.
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes.
    pub max_label_name_length: usize,
    /// Longest label value, in bytes.
    pub max_label_value_length: usize,
}

impl Default for OtlpLimits {
    fn default() -> Self {
        Self {
            max_samples_per_request: 1_000_000,
            max_labels_per_series: 64,
            max_label_name_length: 1024,
            max_label_value_length: 16 * 1024,
        }
    }
}

impl OtlpLimits {
    /// No limit at all (tests, trusted local agents).
    pub fn unlimited() -> Self {
        Self {
            max_samples_per_request: 0,
            max_labels_per_series: 0,
            max_label_name_length: 0,
            max_label_value_length: 0,
        }
    }
}
