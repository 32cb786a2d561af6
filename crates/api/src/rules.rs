//! `/api/v1/rules` and `/api/v1/alerts` in Prometheus's shapes, from the rule groups in
//! force (`telltale_alerting::Rules`).

use axum::response::Response;
use telltale_alerting::manager::RulesFilter;

use crate::params::Params;
use crate::read::success;
use crate::tenant::Scoped;
use crate::ApiError;

/// `GET|POST /api/v1/rules?type=alert|record&rule_name[]=&rule_group[]=&file[]=&exclude_alerts=`
pub(crate) async fn rules(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let kind = p.get("type").filter(|t| !t.is_empty()).map(str::to_string);
    if let Some(k) = &kind {
        if k != "alert" && k != "record" {
            return Err(ApiError::bad_input(format!("invalid parameter \"type\": not supported value {k:?}")));
        }
    }
    let exclude_alerts = match p.get("exclude_alerts") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::bad_input(format!("invalid parameter \"exclude_alerts\": {v:?} is not a boolean")))
        }
    };
    let filter = RulesFilter {
        kind,
        names: p.all_owned("rule_name[]"),
        groups: p.all_owned("rule_group[]"),
        files: p.all_owned("file[]"),
        exclude_alerts,
    };
    if !app.is_default() {
        // Rules run in the default tenant only.
        return Ok(success(serde_json::json!({"groups": []})));
    }
    Ok(success(app.rules().rules_json(&filter)))
}

/// `GET|POST /api/v1/alerts`: every pending and firing alert of the rules.
pub(crate) async fn alerts(app: Scoped) -> Response {
    if !app.is_default() {
        return success(serde_json::json!({"alerts": []}));
    }
    success(app.rules().alerts_json())
}
