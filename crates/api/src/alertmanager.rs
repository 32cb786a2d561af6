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
use crate::tenant::Scoped;

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

/// Alerting (rules, alerts, silences, notifications) runs in the default tenant; another
/// tenant sees none of it and cannot change it.
fn default_tenant_only(app: &Scoped) -> Result<(), ApiError> {
    if app.is_default() {
        Ok(())
    } else {
        Err(ApiError::bad_input(format!("alerting runs in the default tenant only, not in {:?}", app.tenant())))
    }
}

/// `GET /api/v2/alerts`
pub(crate) async fn get_alerts(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let q = query(&p)?;
    if !app.is_default() {
        return Ok(json(serde_json::json!([])));
    }
    Ok(json(app.alertmanager().alerts(&q, app.now_ms())?))
}

/// `POST /api/v2/alerts`: alerts from Prometheus servers (or anyone).
pub(crate) async fn post_alerts(app: Scoped, body: Bytes) -> Result<Response, ApiError> {
    default_tenant_only(&app)?;
    app.alertmanager().post_alerts(&body, app.now_ms())?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /api/v2/alerts/groups`
pub(crate) async fn groups(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let q = query(&p)?;
    if !app.is_default() {
        return Ok(json(serde_json::json!([])));
    }
    Ok(json(app.alertmanager().groups(&q, app.now_ms())?))
}

/// `GET /api/v2/silences`
pub(crate) async fn get_silences(app: Scoped, p: Params) -> Result<Response, ApiError> {
    if !app.is_default() {
        return Ok(json(serde_json::json!([])));
    }
    Ok(json(app.alertmanager().silences(&p.all_owned("filter"), app.now_ms())?))
}

/// `POST /api/v2/silences`: create or update; answers `{"silenceID": ...}`.
pub(crate) async fn post_silence(
    app: Scoped,
    axum::Extension(p): axum::Extension<telltale_auth::Principal>,
    body: Bytes,
) -> Result<Response, ApiError> {
    default_tenant_only(&app)?;
    let out = app.alertmanager().post_silence(&body, app.now_ms())?;
    app.audit("silence_saved", &p.describe(), serde_json::json!({"silence": out["silenceID"]}));
    Ok(json(out))
}

/// `GET /api/v2/silence/{id}`
pub(crate) async fn get_silence(app: Scoped, Path(id): Path<String>) -> Result<Response, ApiError> {
    if !app.is_default() {
        return Err(ApiError::new(telltale_model::ErrorKind::NotFound, format!("silence {id} not found")));
    }
    Ok(json(app.alertmanager().silence(&id, app.now_ms())?))
}

/// `DELETE /api/v2/silence/{id}`: expires it.
pub(crate) async fn delete_silence(
    app: Scoped,
    axum::Extension(p): axum::Extension<telltale_auth::Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    default_tenant_only(&app)?;
    app.alertmanager().expire_silence(&id, app.now_ms())?;
    app.audit("silence_expired", &p.describe(), serde_json::json!({"silence": id}));
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
pub(crate) async fn notifications(app: Scoped) -> Response {
    if !app.is_default() {
        return crate::read::success(serde_json::json!([]));
    }
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
