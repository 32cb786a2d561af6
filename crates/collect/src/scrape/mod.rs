//! Prometheus-style scraping: `scrape_configs` in Prometheus's schema, static and file
//! discovery, relabeling, the scrape loop with its report series and staleness markers,
//! and the targets view behind `GET /api/v1/targets`.
//!
//! The pieces: [`config`] (the schema and its checks), [`relabel`] (Prometheus's relabel
//! semantics), [`target`] (discovery and target labels), `scraper` (one HTTP scrape and its
//! samples), [`Manager`] (pools, loops, reload). Samples are decoded by
//! `telltale_ingest::exposition`, the same decoder as `POST /api/v1/import/prometheus`.

pub mod config;
pub mod http_sd;
mod manager;
pub mod relabel;
mod scraper;
pub mod target;

pub use config::{GlobalConfig, ScrapeConfig};
pub use manager::{global_url, Clock, Manager, Targets};
