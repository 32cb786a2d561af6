//! OTLP metric, unit and attribute names to Prometheus names, as Prometheus 3's OTLP receiver
//! does (its `otlptranslator` package), which implements
//! <https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/#metric-metadata-1>.

use std::borrow::Cow;

use super::options::TranslationStrategy;

/// The kind of metric a name is built for: it decides the `_total` and `_ratio` suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// A monotonic sum: gets `_total`.
    Counter,
    /// A gauge or non-monotonic sum: gets `_ratio` when its unit is `1`.
    Gauge,
    /// Histograms, summaries: no type suffix on the family name.
    Other,
}

/// UCUM units (as OpenTelemetry semantic conventions use them) to Prometheus's words.
/// `TiBy` maps to Prometheus's `tibibytes` spelling, kept so names match a Prometheus server's.
fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The denominator of `x/y` units, singular (`By/s` is `bytes_per_second`).
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The main and `per_` parts of a unit, without character cleanup. Parts in braces
/// (`{request}`) are annotations: a count of things is unitless in Prometheus.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit, None),
    };
    let is_plain = |s: &str| !s.is_empty() && !s.contains(['{', '}']);
    let main = main.trim();
    let main = if is_plain(main) { unit_word(main).to_string() } else { String::new() };
    let per = match per {
        Some(p) if !p.is_empty() && is_plain(p.trim()) => {
            let w = per_unit_word(p.trim());
            if w.is_empty() {
                String::new()
            } else {
                format!("per_{w}")
            }
        }
        _ => String::new(),
    };
    (main, per)
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Invalid characters to `_`, runs of `_` to one, no leading `_`.
fn clean_up_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_metric_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_string(),
        None => out,
    }
}

/// The unit as Prometheus metadata shows it (`s` → `seconds`, `By/s` → `bytes_per_second`,
/// `1` and `{request}` → empty).
pub(crate) fn unit_name(unit: &str, strategy: TranslationStrategy) -> String {
    let (mut main, mut per) = unit_suffixes(unit);
    if strategy.escapes() {
        main = clean_up_unit(&main);
        per = clean_up_unit(&per);
    }
    let joined = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    joined.trim_start_matches('_').trim_end_matches('_').to_string()
}

/// The Prometheus metric (family) name for an OTLP metric; `None` when nothing valid is left
/// (a name made only of invalid characters).
pub(crate) fn metric_name(name: &str, unit: &str, kind: NameKind, strategy: TranslationStrategy) -> Option<String> {
    let built = match (strategy.escapes(), strategy.adds_suffixes()) {
        (true, true) => escaped_with_suffixes(name, unit, kind),
        (true, false) => {
            let mut n = name.split(|c| !is_metric_char(c)).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("_");
            if n.starts_with(|c: char| c.is_ascii_digit()) {
                n.insert(0, '_');
            }
            n
        }
        (false, true) => utf8_with_suffixes(name, unit, kind),
        (false, false) => name.to_string(),
    };
    if built.is_empty() || (built != name && built.chars().all(|c| c == '_')) {
        return None;
    }
    Some(built)
}

fn escaped_with_suffixes(name: &str, unit: &str, kind: NameKind) -> String {
    // Splitting on every invalid character (including `_`) and joining with `_` both escapes
    // and collapses runs of underscores, as the spec requires.
    let mut tokens: Vec<String> =
        name.split(|c| !is_metric_char(c)).filter(|t| !t.is_empty()).map(String::from).collect();
    let (main, per) = unit_suffixes(unit);
    let mut main = clean_up_unit(&main);
    let mut per = clean_up_unit(&per);
    if tokens.contains(&main) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if per.ends_with('_') {
            per.pop();
        }
        if tokens.contains(&per) {
            per.clear();
        }
    }
    if !per.is_empty() && main.ends_with('_') {
        main.pop();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    // Prometheus adds `_ratio` to gauges only: some receivers wrongly use unit `1` for counts.
    if unit == "1" && kind == NameKind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Removes `_suffix` (or any one delimiter before `suffix`) when something remains before it.
fn trim_suffix_and_delimiter<'a>(name: &'a str, suffix: &str) -> &'a str {
    if name.ends_with(suffix) && name.len() > suffix.len() + 1 {
        let cut = name.len() - suffix.len() - 1;
        if name.is_char_boundary(cut) {
            return &name[..cut];
        }
    }
    name
}

fn utf8_with_suffixes(name: &str, unit: &str, kind: NameKind) -> String {
    let ratio = unit == "1" && kind == NameKind::Gauge;
    let total = kind == NameKind::Counter;
    let (main, per) = unit_suffixes(unit);
    let mut n = name;
    if ratio {
        n = trim_suffix_and_delimiter(n, "ratio");
    }
    if total {
        n = trim_suffix_and_delimiter(n, "total");
    }
    if !per.is_empty() {
        n = trim_suffix_and_delimiter(n, &per);
    }
    let mut out = n.to_string();
    if !main.is_empty() && !out.ends_with(&main) {
        out.push('_');
        out.push_str(&main);
    }
    if !per.is_empty() {
        out.push('_');
        out.push_str(&per);
    }
    if total {
        out.push_str("_total");
    }
    if ratio {
        out.push_str("_ratio");
    }
    out
}

/// The Prometheus label name for an attribute key; `None` when it cannot be one (empty, or
/// only underscores after escaping, which would be a reserved `__` name).
pub(crate) fn label_name(key: &str, strategy: TranslationStrategy) -> Option<Cow<'_, str>> {
    if key.is_empty() {
        return None;
    }
    let valid_start =
        |k: &str| !k.starts_with(|c: char| c.is_ascii_digit()) && (!k.starts_with('_') || k.starts_with("__"));
    if !strategy.escapes() || (key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && valid_start(key)) {
        // Most keys after the first few (`queue`, `state`, `http_route`) need no work: borrow them.
        return Some(Cow::Borrowed(key));
    }
    // Each invalid character becomes `_`; unlike metric names, Prometheus does not collapse runs.
    let mut out: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out.chars().all(|c| c == '_') {
        return None;
    }
    Some(Cow::Owned(out))
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`, which Prometheus uses for `le` and `quantile`:
/// shortest round-trip digits, never an exponent. Rust's `Display` for `f64` does the same,
/// except for the infinities.
pub(crate) fn format_float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TranslationStrategy::*;

    fn esc(name: &str, unit: &str, kind: NameKind) -> String {
        metric_name(name, unit, kind, UnderscoreEscapingWithSuffixes).unwrap()
    }

    // Cases from Prometheus's otlptranslator tests and the compatibility spec's examples.
    #[test]
    fn escaping_with_suffixes() {
        assert_eq!(esc("http.server.duration", "s", NameKind::Other), "http_server_duration_seconds");
        assert_eq!(esc("system.filesystem.usage", "By", NameKind::Gauge), "system_filesystem_usage_bytes");
        assert_eq!(esc("system.network.dropped", "{packets}", NameKind::Counter), "system_network_dropped_total");
        assert_eq!(esc("system.network.dropped", "packets", NameKind::Gauge), "system_network_dropped_packets");
        assert_eq!(esc("system.memory.utilization", "1", NameKind::Gauge), "system_memory_utilization_ratio");
        assert_eq!(esc("requests.count", "1", NameKind::Counter), "requests_count_total");
        assert_eq!(esc("net.io", "By/s", NameKind::Gauge), "net_io_bytes_per_second");
        assert_eq!(esc("speed", "m/h", NameKind::Gauge), "speed_meters_per_hour");
        assert_eq!(esc("x", "{req}/s", NameKind::Gauge), "x_per_second");
        assert_eq!(esc("x", "foo/{bar}", NameKind::Gauge), "x_foo");
        assert_eq!(esc("temp", "Cel", NameKind::Gauge), "temp_celsius");
        assert_eq!(esc("cpu", "%", NameKind::Gauge), "cpu_percent");
        // Already carries its unit or type suffix: not added twice, `_total` moved last.
        assert_eq!(esc("duration_seconds", "s", NameKind::Other), "duration_seconds");
        assert_eq!(esc("requests_total", "", NameKind::Counter), "requests_total");
        assert_eq!(esc("total.requests", "", NameKind::Counter), "requests_total");
        assert_eq!(esc("ratio_thing", "1", NameKind::Gauge), "thing_ratio");
        // Invalid characters, runs of underscores, leading digits.
        assert_eq!(esc("a..b__c", "", NameKind::Gauge), "a_b_c");
        assert_eq!(esc("odd.name-with/slash", "ms", NameKind::Counter), "odd_name_with_slash_milliseconds_total");
        assert_eq!(esc("1st.name", "", NameKind::Gauge), "_1st_name");
        assert_eq!(esc("ünïcode", "", NameKind::Gauge), "n_code");
        assert_eq!(esc("a:b", "", NameKind::Gauge), "a:b");
        assert_eq!(metric_name("...", "", NameKind::Gauge, UnderscoreEscapingWithSuffixes), None);
        assert_eq!(metric_name("", "s", NameKind::Gauge, UnderscoreEscapingWithSuffixes).as_deref(), Some("seconds"));
    }

    #[test]
    fn other_strategies() {
        let no_suffix = |n: &str, u: &str, k| metric_name(n, u, k, UnderscoreEscapingWithoutSuffixes).unwrap();
        assert_eq!(no_suffix("http.server.duration", "s", NameKind::Counter), "http_server_duration");
        assert_eq!(no_suffix("9lives", "", NameKind::Gauge), "_9lives");
        let utf8 = |n: &str, u: &str, k| metric_name(n, u, k, NoUtf8EscapingWithSuffixes).unwrap();
        assert_eq!(utf8("http.server.duration", "s", NameKind::Other), "http.server.duration_seconds");
        assert_eq!(utf8("http.requests", "{request}", NameKind::Counter), "http.requests_total");
        assert_eq!(utf8("http.requests.total", "", NameKind::Counter), "http.requests_total");
        assert_eq!(utf8("mem.utilization", "1", NameKind::Gauge), "mem.utilization_ratio");
        assert_eq!(utf8("io.rate", "By/s", NameKind::Gauge), "io.rate_bytes_per_second");
        assert_eq!(utf8("io.rate_per_second", "By/s", NameKind::Gauge), "io.rate_bytes_per_second");
        assert_eq!(metric_name("a.b", "s", NameKind::Counter, NoTranslation).as_deref(), Some("a.b"));
    }

    #[test]
    fn unit_names() {
        assert_eq!(unit_name("s", UnderscoreEscapingWithSuffixes), "seconds");
        assert_eq!(unit_name("By/s", UnderscoreEscapingWithSuffixes), "bytes_per_second");
        assert_eq!(unit_name("1", UnderscoreEscapingWithSuffixes), "");
        assert_eq!(unit_name("{request}", UnderscoreEscapingWithSuffixes), "");
        assert_eq!(unit_name("{request}/s", UnderscoreEscapingWithSuffixes), "per_second");
        assert_eq!(unit_name("", UnderscoreEscapingWithSuffixes), "");
    }

    #[test]
    fn label_names() {
        let l = |k: &str| label_name(k, UnderscoreEscapingWithSuffixes).map(|c| c.into_owned());
        assert_eq!(l("http.method").as_deref(), Some("http_method"));
        assert_eq!(l("0key").as_deref(), Some("key_0key"));
        assert_eq!(l("_private").as_deref(), Some("key_private"));
        assert_eq!(l("__reserved__").as_deref(), Some("__reserved__"));
        assert_eq!(l("a..b").as_deref(), Some("a__b"));
        assert_eq!(l("..").as_deref(), None);
        assert_eq!(l("_").as_deref(), Some("key_"));
        assert_eq!(l("").as_deref(), None);
        assert_eq!(label_name("http.method", NoTranslation).as_deref(), Some("http.method"));
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(2.5e-7), "0.00000025");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
    }
}
