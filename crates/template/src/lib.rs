//! Go `text/template` for Telltale: the template language of Prometheus rule annotations
//! (`{{ $labels.instance }}`, `{{ $value | humanize }}`) and Alertmanager notification
//! templates (`{{ range .Alerts.Firing }}`, `{{ .CommonLabels.Remove .GroupLabels.Names }}`),
//! so rule files and receiver templates written for those tools render the same here.
//!
//! Input: template source text (one or more files with `{{ define }}` blocks) and a
//! [`Value`] as the data (`.`). Output: the rendered string, or an [`Error`] naming the
//! template and the line.
//!
//! The one design decision to know: no maintained Rust crate implements Go templates, so
//! this is a small interpreter written here: the full action syntax (pipelines, variables,
//! `if`/`else if`/`range`/`with`/`define`/`template`/`block`, `break`/`continue`, trim
//! markers, comments) over a dynamic [`Value`], with Go's formatting of numbers (`%v`,
//! `printf`), Go's truth rules and Go's time layouts. Go types' methods that templates
//! use (`.SortedPairs`, `.Names`, `.Values`, `.Remove`, `.Firing`, `.Resolved`,
//! `.Format`, `.Unix`) are built in. Missing map keys render as the empty string, as with
//! Prometheus's and Alertmanager's `missingkey=zero`. Differences from Go are listed in
//! `docs/alerting.md`.
#![warn(missing_docs)]

mod exec;
mod fmt;
mod funcs;
mod parse;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use fmt::{go_float, sprintf};
pub use funcs::{humanize, humanize_duration, humanize_percentage};
pub use value::Value;

/// Why a template did not parse or did not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source is not a valid template (Go's `template: NAME:LINE: ...`).
    #[error("template: {name}:{line}: {message}")]
    Parse {
        /// The template's name.
        name: String,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Rendering failed (a function refused its arguments, a query failed, ...).
    #[error("template: {name}: executing: {message}")]
    Exec {
        /// The template being executed.
        name: String,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// The error's category: every template error is the caller's input.
    pub fn kind(&self) -> telltale_model::ErrorKind {
        telltale_model::ErrorKind::InvalidInput
    }
}

/// One sample a `query` function returns: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// The series' labels.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Runs a PromQL query for the template `query` function.
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<QuerySample>, String> + Send + Sync>;

/// What templates can reach beyond their data.
#[derive(Clone, Default)]
pub struct Env {
    /// Backs the `query` function; without one, `query` fails.
    pub query: Option<QueryFn>,
    /// `externalURL` and the base of `graphLink`/`tableLink`.
    pub external_url: String,
    /// Escape every action's output for HTML (Go's `html/template`, simplified: values
    /// are escaped, template text is not; `safeHtml` opts out).
    pub html: bool,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("query", &self.query.is_some())
            .field("external_url", &self.external_url)
            .field("html", &self.html)
            .finish()
    }
}

/// A set of parsed templates: one unnamed body per [`Templates::add`] plus every
/// `{{ define }}`d name.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    defs: HashMap<String, Arc<Vec<parse::Node>>>,
}

impl Templates {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `text` as the template `name`; its `{{ define }}` blocks join the set (a
    /// later definition of a name replaces an earlier one, as in Go's `ParseFiles`).
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let parsed = parse::parse(name, text)?;
        for (n, body) in parsed.defines {
            self.defs.insert(n, Arc::new(body));
        }
        // An empty body does not replace a template of the same name defined elsewhere.
        let blank = parsed.body.iter().all(|n| matches!(n, parse::Node::Text(t) if t.trim().is_empty()));
        if !blank || !self.defs.contains_key(name) {
            self.defs.insert(name.to_string(), Arc::new(parsed.body));
        }
        Ok(())
    }

    /// Whether `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// Renders the template `name` with `data` as dot.
    pub fn render(&self, name: &str, data: &Value, env: &Env) -> Result<String, Error> {
        let body = self
            .defs
            .get(name)
            .ok_or_else(|| Error::Exec { name: name.to_string(), message: format!("no such template {name:?}") })?;
        exec::run(self, name, body, data, env)
    }

    /// Parses `text` as a one-off template (with this set's definitions available to
    /// `{{ template }}`) and renders it.
    pub fn render_str(&self, name: &str, text: &str, data: &Value, env: &Env) -> Result<String, Error> {
        let mut set = self.clone();
        set.add(name, text)?;
        set.render(name, data, env)
    }
}

/// Parses and renders `text` once; the simple entry point.
pub fn render(name: &str, text: &str, data: &Value, env: &Env) -> Result<String, Error> {
    Templates::new().render_str(name, text, data, env)
}

/// Checks that `text` parses (for `check rules`/`check config`).
pub fn check(name: &str, text: &str) -> Result<(), Error> {
    parse::parse(name, text).map(|_| ())
}

#[cfg(test)]
mod tests;
