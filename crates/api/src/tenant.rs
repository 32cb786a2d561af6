//! Tenants, as Loki, Mimir and Tempo keep them: each tenant's metrics, logs, SQL and dashboards
//! in stores of their own, chosen by `X-Scope-OrgID`.
//!
//! Handlers reach data only through [`Scoped`], the state as one request sees it: its tenant (the
//! authorization middleware decided it from the header and the credential's binding) and that
//! tenant's stores. `AppState` itself has no data accessor a handler could call by mistake, so
//! a query in one tenant cannot read another's series or lines. The default tenant keeps the
//! data directory's own stores; the binary opens any other tenant's under
//! `DATA_DIR/tenants/<id>/` the first time a request names it (at most [`MAX_TENANTS`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use parking_lot::{Mutex, RwLock};
use telltale_model::ErrorKind;
use telltale_storage::{LogStore, MetricStore};

use crate::authn::Tenant;
use crate::sql::SqlService;
use crate::{ApiError, AppState};

/// Tenants a server opens stores for, besides the default one.
pub const MAX_TENANTS: usize = 100;

/// The name of the tenant holding the audit log, readable by admins only.
pub const AUDIT_TENANT: &str = "_audit";

/// One tenant's stores.
#[derive(Clone)]
pub struct TenantStores {
    /// Metrics.
    pub metrics: Arc<dyn MetricStore>,
    /// Logs.
    pub logs: Arc<dyn LogStore>,
    /// SQL over the logs, where the binary has it.
    pub sql: Option<Arc<dyn SqlService>>,
    /// Dashboards.
    pub dashboards: Option<Arc<telltale_dashboards::Store>>,
    /// Its traces, when the server keeps traces per tenant.
    pub traces: Option<Arc<crate::TraceService>>,
}

/// Opens a tenant's stores (the binary: under `DATA_DIR/tenants/<id>/`, with their upkeep).
/// Called on the blocking pool, once per tenant.
pub type TenantOpener = Arc<dyn Fn(&str) -> Result<TenantStores, String> + Send + Sync>;

/// Tenant ids as Loki accepts them, minus what a directory name cannot be: 1-64 of
/// `A-Z a-z 0-9 - _ .`, not `.` or `..`. Names starting with `_` are reserved.
pub fn check_tenant(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_input(format!("X-Scope-OrgID {id:?} is not a tenant id (1-64 of A-Z a-z 0-9 - _ .)")))
    }
}

/// The tenants opened so far.
#[derive(Default)]
pub(crate) struct Tenants {
    open: RwLock<HashMap<String, TenantStores>>,
    opening: Mutex<()>,
    opener: std::sync::OnceLock<TenantOpener>,
}

impl Tenants {
    pub(crate) fn set_opener(&self, opener: TenantOpener) {
        let _ = self.opener.set(opener);
    }

    /// `id`'s stores, opening them the first time. Blocking: call it on the blocking pool.
    fn get(&self, id: &str) -> Result<TenantStores, ApiError> {
        if let Some(s) = self.open.read().get(id) {
            return Ok(s.clone());
        }
        let _one_at_a_time = self.opening.lock();
        if let Some(s) = self.open.read().get(id) {
            return Ok(s.clone());
        }
        check_tenant(id)?;
        let opener = self.opener.get().ok_or_else(|| {
            ApiError::new(ErrorKind::NotFound, format!("tenant {id:?}: this server keeps only its default tenant"))
        })?;
        if self.open.read().len() >= MAX_TENANTS {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!("tenant {id:?}: this server keeps at most {MAX_TENANTS} tenants besides the default one"),
            ));
        }
        let stores = opener(id).map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("tenant {id:?}: {e}")))?;
        tracing::info!(tenant = id, "tenant stores opened");
        self.open.write().insert(id.to_string(), stores.clone());
        Ok(stores)
    }

    /// Every tenant opened so far (for shutdown and self-metrics).
    pub(crate) fn all(&self) -> Vec<(String, TenantStores)> {
        self.open.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The state as one request sees it: [`AppState`] (by `Deref`) and the request's tenant, whose
/// stores it gives out.
#[derive(Clone)]
pub struct Scoped {
    app: AppState,
    tenant: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Scoped
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = <AppState as axum::extract::FromRef<S>>::from_ref(state);
        let tenant = parts.extensions.get::<Tenant>().map_or_else(|| app.default_tenant(), |t| t.0.clone());
        Ok(Scoped { app, tenant })
    }
}

impl Deref for Scoped {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}

impl Scoped {
    /// The default tenant's view, for writes that do not come over HTTP (syslog, files).
    pub fn default_tenant(app: &AppState) -> Scoped {
        Scoped { app: app.clone(), tenant: app.default_tenant() }
    }

    /// `tenant`'s view, for the server's own writes (the audit log).
    pub(crate) fn for_tenant(app: &AppState, tenant: &str) -> Scoped {
        Scoped { app: app.clone(), tenant: tenant.to_string() }
    }

    /// The request's tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Whether the request acts in the default tenant.
    pub fn is_default(&self) -> bool {
        self.tenant == self.app.default_tenant()
    }

    /// Another tenant's stores; `None` for the default tenant. Blocking the first time a tenant
    /// is named: call it on the blocking pool.
    fn other(&self) -> Result<Option<TenantStores>, ApiError> {
        if self.is_default() {
            return Ok(None);
        }
        self.app.tenants().get(&self.tenant).map(Some)
    }

    /// The tenant's metric store (blocking, see [`Scoped::other`]).
    pub(crate) fn metrics_store(&self) -> Result<Arc<dyn MetricStore>, ApiError> {
        match self.other()? {
            Some(s) => Ok(s.metrics),
            None => self.app.default_store(),
        }
    }

    /// The tenant's log store (blocking).
    pub(crate) fn log_store(&self) -> Result<Arc<dyn LogStore>, ApiError> {
        match self.other()? {
            Some(s) => Ok(s.logs),
            None => self.app.default_log_store(),
        }
    }

    /// Another tenant's trace service (blocking); `None` for the default tenant.
    pub(crate) fn tenant_traces(&self) -> Result<Option<Arc<crate::TraceService>>, ApiError> {
        match self.other()? {
            Some(s) => s.traces.map(Some).ok_or_else(|| ApiError::internal("this tenant has no trace store")),
            None => Ok(None),
        }
    }

    /// The tenant's SQL service, if it has one (blocking).
    pub(crate) fn sql(&self) -> Result<Option<Arc<dyn SqlService>>, ApiError> {
        Ok(match self.other()? {
            Some(s) => s.sql,
            None => self.app.default_sql(),
        })
    }

    /// The tenant's dashboards, if it has them (blocking).
    pub(crate) fn dashboards(&self) -> Result<Option<Arc<telltale_dashboards::Store>>, ApiError> {
        Ok(match self.other()? {
            Some(s) => s.dashboards,
            None => self.app.default_dashboards(),
        })
    }

    /// Runs `f` with this view on the blocking pool (where a tenant's stores may be opened).
    pub(crate) async fn on_blocking_pool<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Scoped) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| ApiError::internal(format!("storage task failed: {e}")))?
    }

    /// Runs `f` with the tenant's metric store on the blocking pool.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn MetricStore) -> Result<T, ApiError> + Send + 'static,
    {
        self.on_blocking_pool(move |me| f(me.metrics_store()?.as_ref())).await
    }

    /// Runs `f` with the tenant's log store on the blocking pool.
    pub async fn blocking_logs<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn LogStore) -> Result<T, ApiError> + Send + 'static,
    {
        self.on_blocking_pool(move |me| f(me.log_store()?.as_ref())).await
    }
}
