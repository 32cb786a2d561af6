//! Alertmanager API v2 (`/api/v2/alerts`, `/alerts/groups`, `/silences`, `/silence/{id}`,
//! `/status`, `/receivers`) in Alertmanager's shapes, so `amtool`, Grafana and a
//! Prometheus `alerting.alertmanagers` entry work against Telltale.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use telltale_alerting::am::AlertQuery;
use telltale_model::MetricType;

use crate::metrics::Family;
use crate::params::Params;
use crate::{ApiError, AppState};

impl From<telltale_alerting::Error> for ApiError {
    fn from(e: telltale_alerting::Error) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

use crate::json;

fn flag(p: &Params, name: &str) -> Result<bool, ApiError> {
    match p.get(name) {
        None | Some("") | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(ApiError::bad_input(format!("{name} in query must be of type boolean: {v:?}"))),
    }
}

fn query(p: &Params) -> Result<AlertQuery, ApiError> {
    Ok(AlertQuery {
        filter: p.all_owned("filter"),
        silenced: flag(p, "silenced")?,
        inhibited: flag(p, "inhibited")?,
        active: flag(p, "active")?,
        receiver: p.get("receiver").filter(|r| !r.is_empty()).map(str::to_string),
    })
}

/// `GET /api/v2/alerts`
pub(crate) async fn get_alerts(State(app): State<AppState>, p: Params) -> Result<Response, ApiError> {
    Ok(json(app.alertmanager().alerts(&query(&p)?, app.now_ms())?))
}

/// `POST /api/v2/alerts`: alerts from Prometheus servers (or anyone).
pub(crate) async fn post_alerts(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    app.alertmanager().post_alerts(&body, app.now_ms())?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /api/v2/alerts/groups`
pub(crate) async fn groups(State(app): State<AppState>, p: Params) -> Result<Response, ApiError> {
    Ok(json(app.alertmanager().groups(&query(&p)?, app.now_ms())?))
}

/// `GET /api/v2/silences`
pub(crate) async fn get_silences(State(app): State<AppState>, p: Params) -> Result<Response, ApiError> {
    Ok(json(app.alertmanager().silences(&p.all_owned("filter"), app.now_ms())?))
}

/// `POST /api/v2/silences`: create or update; answers `{"silenceID": ...}`.
pub(crate) async fn post_silence(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    Ok(json(app.alertmanager().post_silence(&body, app.now_ms())?))
}

/// `GET /api/v2/silence/{id}`
pub(crate) async fn get_silence(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(json(app.alertmanager().silence(&id, app.now_ms())?))
}

/// `DELETE /api/v2/silence/{id}`: expires it.
pub(crate) async fn delete_silence(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    app.alertmanager().expire_silence(&id, app.now_ms())?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /api/v2/status`
pub(crate) async fn status(State(app): State<AppState>) -> Response {
    json(app.alertmanager().status(app.runtime().start_time_ms))
}

/// `GET /api/v2/receivers`
pub(crate) async fn receivers(State(app): State<AppState>) -> Response {
    json(app.alertmanager().receivers())
}

/// `GET /api/v1/notifications`: Telltale's notification log (per group, receiver and
/// integration: when last notified, the last attempt, its error).
pub(crate) async fn notifications(State(app): State<AppState>) -> Response {
    crate::read::success(app.alertmanager().log_json())
}

/// The pipeline's counters as metric families.
pub(crate) fn families(app: &AppState) -> Vec<Family> {
    let s = app.alertmanager().stats();
    let counter = |name: &str, help: &str, points: Vec<(Vec<(&'static str, String)>, f64)>| Family {
        name: name.into(),
        help: help.into(),
        kind: MetricType::Counter,
        points: points.into_iter().map(|(l, v)| ("", l, v)).collect(),
    };
    let groups = app.rules().groups();
    let per_group = |f: &dyn Fn(&telltale_alerting::rules::Group) -> f64| -> Vec<(Vec<(&'static str, String)>, f64)> {
        groups.iter().map(|g| (vec![("rule_group", format!("{};{}", g.file, g.name))], f(g))).collect()
    };
    vec![
        counter("telltale_rule_evaluations_total", "Rule evaluations, by group.", per_group(&|g| g.evaluations as f64)),
        counter(
            "telltale_rule_evaluation_failures_total",
            "Rule evaluations that failed, by group.",
            per_group(&|g| g.failures as f64),
        ),
        Family {
            name: "telltale_rule_group_last_duration_seconds".into(),
            help: "How long the group's last evaluation took.".into(),
            kind: MetricType::Gauge,
            points: per_group(&|g| g.evaluation_time.as_secs_f64()).into_iter().map(|(l, v)| ("", l, v)).collect(),
        },
        counter(
            "telltale_alerts_received_total",
            "Alerts received by the notification pipeline, by status.",
            vec![
                (vec![("status", "firing".into())], s.received_firing as f64),
                (vec![("status", "resolved".into())], s.received_resolved as f64),
            ],
        ),
        counter(
            "telltale_notifications_total",
            "Notifications delivered, by integration.",
            s.notifications.iter().map(|(k, v)| (vec![("integration", k.clone())], *v as f64)).collect(),
        ),
        counter(
            "telltale_notifications_failed_total",
            "Notifications that failed after their retries, by integration.",
            s.failed.iter().map(|(k, v)| (vec![("integration", k.clone())], *v as f64)).collect(),
        ),
    ]
}
