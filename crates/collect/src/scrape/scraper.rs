//! One scrape: fetch the target over HTTP (Accept negotiation, gzip, auth, timeout, size
//! limit), decode with the exposition decoder, attach the target's labels, apply
//! `metric_relabel_configs` and the limits, and add Prometheus's report series.

use std::io::Read;
use std::time::Duration;

use telltale_ingest::exposition::{self, Format};
use telltale_model::{Labels, LabelsBuilder, Sample, Timestamp, WriteBatch, METRIC_NAME};

use super::config::{authorization_header, GlobalConfig, ScrapeConfig};
use super::relabel::{process, LabelMap, Relabel};
use super::target::Target;
use crate::Staleness;

/// The HTTP side of a scrape pool, shared by its targets.
pub(crate) struct Client {
    /// The agent, or why it could not be built (a TLS file went missing since validation):
    /// then every scrape fails with that reason.
    agent: Result<ureq::Agent, String>,
    cfg: ScrapeConfig,
    timeout: Duration,
    accept: String,
}

impl Client {
    /// The client of job `cfg` (its limits already merged with the global ones).
    pub(crate) fn new(cfg: &ScrapeConfig, global: &GlobalConfig, timeout: Duration) -> Self {
        let accept = cfg.accept(global).unwrap_or_default();
        let agent = cfg.proxy().and_then(|proxy| {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .max_redirects(if cfg.follow_redirects { 10 } else { 0 })
                .max_redirects_will_error(false)
                .proxy(proxy)
                .user_agent(concat!("Telltale/", env!("CARGO_PKG_VERSION")))
                .build();
            crate::tls::agent(&cfg.tls_config, config)
        });
        if let Err(e) = &agent {
            tracing::warn!(job = %cfg.job_name, error = %e, "cannot set up the scrape client");
        }
        Self { agent, cfg: cfg.clone(), timeout, accept }
    }

    fn authorization(&self) -> Result<Option<String>, String> {
        if let Some(h) = authorization_header(self.cfg.basic_auth.as_ref(), self.cfg.authorization.as_ref())? {
            return Ok(Some(h));
        }
        match (&self.cfg.bearer_token, &self.cfg.bearer_token_file) {
            (_, Some(f)) => std::fs::read_to_string(f)
                .map(|t| Some(format!("Bearer {}", t.trim())))
                .map_err(|e| format!("cannot read {}: {e}", f.display())),
            (Some(t), None) => Ok(Some(format!("Bearer {t}"))),
            (None, None) => Ok(None),
        }
    }

    /// GETs `url`; returns the (decompressed) body and its Content-Type.
    pub(crate) fn fetch(&self, url: &str) -> Result<(Vec<u8>, Option<String>), String> {
        let agent = self.agent.as_ref().map_err(|e| format!("Get \"{url}\": {e}"))?;
        let mut req = agent
            .get(url)
            .header("Accept", &self.accept)
            .header("Accept-Encoding", if self.cfg.enable_compression { "gzip" } else { "identity" })
            .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", self.timeout.as_secs_f64()));
        if let Some(auth) = self.authorization()? {
            req = req.header("Authorization", auth);
        }
        let mut res = req.call().map_err(|e| match e {
            ureq::Error::Timeout(_) => format!("Get \"{url}\": context deadline exceeded"),
            // TLS handshake failures arrive as I/O errors; say what happened without "io:".
            ureq::Error::Io(e) => format!("Get \"{url}\": {e}"),
            e => format!("Get \"{url}\": {e}"),
        })?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("server returned HTTP status {}", status_text(status)));
        }
        let ctype = res.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let gzip = res
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let limit = if self.cfg.body_size_limit == 0 { u64::MAX } else { self.cfg.body_size_limit };
        let mut body = Vec::new();
        let reader = res.body_mut().as_reader();
        let over = || format!("body size limit exceeded ({} bytes)", self.cfg.body_size_limit);
        if gzip {
            let mut d = flate2::read::GzDecoder::new(reader).take(limit.saturating_add(1));
            d.read_to_end(&mut body).map_err(|e| format!("cannot read gzip body: {e}"))?;
        } else {
            reader
                .take(limit.saturating_add(1))
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read body: {e}"))?;
        }
        if body.len() as u64 > limit {
            return Err(over());
        }
        Ok((body, ctype))
    }
}

fn status_text(s: ureq::http::StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

pub(crate) fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Counts a scrape reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Report {
    pub(crate) up: bool,
    pub(crate) duration: f64,
    pub(crate) scraped: usize,
    pub(crate) post_relabel: usize,
    pub(crate) added: usize,
}

/// A pool's settings that every scrape of its targets uses.
pub(crate) struct Settings {
    pub(crate) honor_labels: bool,
    pub(crate) honor_timestamps: bool,
    pub(crate) metric_relabel: Vec<Relabel>,
    pub(crate) limits: telltale_ingest::Limits,
    pub(crate) sample_limit: usize,
    /// How a body without a usable Content-Type is parsed (`fallback_scrape_protocol`).
    pub(crate) fallback: Format,
}

/// The format of a body: by its Content-Type when that names a text format, else `fallback`.
fn format_of(ctype: Option<&str>, fallback: Format) -> Format {
    let media = ctype.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/openmetrics-text") | Some("text/plain") => Format::from_content_type(ctype),
        _ => fallback,
    }
}

/// Turns a fetched body into the series to store (without report series): target labels
/// attached (`exported_` renames unless `honor_labels`), timestamps (unless
/// `honor_timestamps`), metric relabeling, sample limit; then staleness markers for the
/// series of the previous scrape that are gone. Returns the batch, the samples scraped
/// and kept, and the series added.
pub(crate) fn samples(
    body: &[u8],
    ctype: Option<&str>,
    target: &Target,
    s: &Settings,
    t: Timestamp,
    cache: &mut Staleness,
) -> Result<(WriteBatch, usize, usize, usize), String> {
    let format = format_of(ctype, s.fallback);
    let decoded = exposition::decode_format(body, format, t, &s.limits).map_err(|e| e.to_string())?;
    let scraped = decoded.sample_count();
    let mut out = WriteBatch::new();
    out.metadata = decoded.metadata.clone();
    let tl: Vec<(&str, &str)> = target.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for (labels, samples) in decoded.iter() {
        let Some(l) = merge(labels, &tl, s.honor_labels, &s.metric_relabel) else { continue };
        let at = |smp: &Sample| Sample::new(if s.honor_timestamps { smp.t } else { t }, smp.v);
        if let [one] = samples {
            out.push_sample(l, at(one));
        } else {
            let all: Vec<Sample> = samples.iter().map(at).collect();
            out.push(l, &all);
        }
    }
    let kept = out.sample_count();
    if s.sample_limit > 0 && kept > s.sample_limit {
        return Err(format!("sample limit exceeded: {kept} samples, sample_limit is {}", s.sample_limit));
    }
    let added = cache.update(&mut out, t);
    Ok((out, scraped, kept, added))
}

/// The scraped series' labels with the target's, as Prometheus's `mutateSampleLabels`.
fn merge(scraped: &Labels, target: &[(&str, &str)], honor: bool, relabel: &[Relabel]) -> Option<Labels> {
    let mut b = LabelsBuilder::new();
    let mut renamed: Vec<(String, &str)> = Vec::new();
    for (k, v) in scraped.iter() {
        b.push(k, v);
    }
    for (k, v) in target {
        match scraped.get(k) {
            Some(_) if honor => {}
            Some(existing) => {
                let mut name = format!("exported_{k}");
                while scraped.get(&name).is_some()
                    || target.iter().any(|(t, _)| *t == name)
                    || renamed.iter().any(|(r, _)| *r == name)
                {
                    name.insert_str(0, "exported_");
                }
                renamed.push((name, existing));
                b.set(k, v);
            }
            None => {
                b.set(k, v);
            }
        }
    }
    for (k, v) in &renamed {
        b.set(k, v);
    }
    if relabel.is_empty() {
        return b.build().ok();
    }
    let l = b.build().ok()?;
    let mut map: LabelMap = l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if !process(&mut map, relabel) || !map.contains_key(METRIC_NAME) {
        return None;
    }
    Labels::from_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str()))).ok()
}

/// Prometheus's report series for one scrape, with the target's labels.
pub(crate) fn report(target: &Target, t: Timestamp, r: &Report, cache: &mut Staleness) -> WriteBatch {
    let mut b = WriteBatch::new();
    let series: [(&str, f64); 5] = [
        ("up", if r.up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", r.duration),
        ("scrape_samples_scraped", r.scraped as f64),
        ("scrape_samples_post_metric_relabeling", r.post_relabel as f64),
        ("scrape_series_added", r.added as f64),
    ];
    for (name, v) in series {
        let mut lb = LabelsBuilder::new();
        for (k, v) in &target.labels {
            lb.push(k, v);
        }
        lb.set(METRIC_NAME, name);
        if let Ok(l) = lb.build() {
            b.push_sample(l, Sample::new(t, v));
        }
    }
    cache.update(&mut b, t);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_encodes_like_rfc4648() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn conflicting_labels_are_exported_unless_honored() {
        let scraped = Labels::from_pairs([("__name__", "m"), ("job", "app"), ("exported_job", "z")]).unwrap();
        let target = [("job", "node"), ("instance", "h:1")];
        let l = merge(&scraped, &target, false, &[]).unwrap();
        assert_eq!(l.to_string(), r#"m{exported_exported_job="app", exported_job="z", instance="h:1", job="node"}"#);
        let l = merge(&scraped, &target, true, &[]).unwrap();
        assert_eq!(l.to_string(), r#"m{exported_job="z", instance="h:1", job="app"}"#);
    }
}
