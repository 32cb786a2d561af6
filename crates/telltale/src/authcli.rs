//! `telltale user ...`, `telltale token ...` and `telltale check web-config`: the auth store and
//! the web config from the command line, for headless setups. They change the store file in the
//! data directory directly (under its lock), so they work whether or not the server runs; a
//! running server sees the change within a second.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use telltale_auth::{AuthStore, Owner, Role, Scope, Scopes, Tenants};

use crate::config::{self, Overrides};

/// Opens the auth store of the data directory the config (and `--data-dir`) name.
fn open(config_path: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<AuthStore> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let c = config::load(config_path, &env, &Overrides { listen: None, data_dir, ..Overrides::default() })?;
    let dir = c.storage.data_dir.join("auth");
    AuthStore::open(&dir, c.auth.policy()).with_context(|| format!("cannot open the auth store in {}", dir.display()))
}

fn now_ms() -> i64 {
    telltale_api::system_now_ms()
}

/// The first line of a file, or of standard input for `-`.
fn read_secret(source: &Path) -> anyhow::Result<String> {
    let text = if source == Path::new("-") {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line
    } else {
        std::fs::read_to_string(source).with_context(|| format!("cannot read {}", source.display()))?
    };
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// `telltale user add NAME --role R --password-file F`.
pub(crate) fn user_add(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    name: &str,
    role: &str,
    password_file: &Path,
) -> anyhow::Result<()> {
    let role = Role::parse(role).with_context(|| format!("--role {role:?}: viewer, editor or admin"))?;
    let password = read_secret(password_file)?;
    let store = open(config, data_dir)?;
    store.add_user(name, Some(&password), role, "local", now_ms())?;
    println!("user {name} added ({})", role.as_str());
    Ok(())
}

/// `telltale user list`.
pub(crate) fn user_list(config: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    for u in open(config, data_dir)?.users() {
        println!("{}\t{}\t{}", u.name, u.role.as_str(), u.origin);
    }
    Ok(())
}

/// What `telltale token create` was asked for.
pub(crate) struct TokenRequest {
    pub(crate) service_account: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) role: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) tenants: Vec<String>,
    pub(crate) name: Option<String>,
    pub(crate) expires_in: Option<String>,
}

/// `telltale token create`: prints the token (and nothing else on standard output, so it can
/// be captured into a file).
pub(crate) fn token_create(config: Option<&Path>, data_dir: Option<PathBuf>, r: TokenRequest) -> anyhow::Result<()> {
    let scopes: Option<Scopes> = match (&r.role, r.scopes.is_empty()) {
        (Some(_), false) => bail!("give --role or --scopes, not both"),
        (Some(role), true) => {
            Some(Role::parse(role).with_context(|| format!("--role {role:?}: viewer, editor or admin"))?.scopes())
        }
        (None, false) => Some(
            r.scopes
                .iter()
                .flat_map(|s| s.split(','))
                .map(|s| match s.trim() {
                    "ingest" => Ok(Scope::Ingest),
                    "read" => Ok(Scope::Read),
                    "edit" => Ok(Scope::Edit),
                    "admin" => Ok(Scope::Admin),
                    other => bail!("--scopes: unknown scope {other:?} (ingest, read, edit, admin)"),
                })
                .collect::<anyhow::Result<Scopes>>()?,
        ),
        (None, true) => None,
    };
    let tenants = if r.tenants.is_empty() { Tenants::Any } else { Tenants::Only(r.tenants.clone()) };
    let store = open(config, data_dir)?;
    let now = now_ms();
    let owner = match (r.service_account, r.user) {
        (Some(sa), None) => {
            if !store.service_accounts().iter().any(|s| s.name == sa) {
                let Some(s) = scopes else {
                    bail!("service account {sa:?} does not exist: give --role or --scopes to create it")
                };
                store.add_service_account(&sa, s, tenants.clone(), now)?;
                eprintln!("service account {sa} created with scopes {s:?}");
            }
            Owner::ServiceAccount(sa)
        }
        (None, Some(u)) => Owner::User(u),
        _ => bail!("give exactly one of --service-account and --user"),
    };
    let expires_at = r
        .expires_in
        .as_deref()
        .map(|d| telltale_model::units::parse_duration(d).map(|d| now + d.as_millis() as i64))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
    let name = r.name.unwrap_or_else(|| "created by telltale token create".into());
    let (token, rec) = store.create_token(owner, &name, scopes, tenants, expires_at, now)?;
    eprintln!("token {} for {} with scopes {:?} (shown once; store it now)", rec.id, rec.owner.describe(), rec.scopes);
    println!("{token}");
    Ok(())
}

/// `telltale token list`.
pub(crate) fn token_list(config: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    for t in open(config, data_dir)?.tokens() {
        println!("{}\t{}\t{:?}\t{}", t.id, t.owner.describe(), t.scopes, t.name);
    }
    Ok(())
}

/// `telltale token revoke ID`.
pub(crate) fn token_revoke(config: Option<&Path>, data_dir: Option<PathBuf>, id: &str) -> anyhow::Result<()> {
    let t = open(config, data_dir)?.revoke_token(id)?;
    println!("token {} ({}) revoked", t.id, t.owner.describe());
    Ok(())
}

/// `telltale check web-config FILE...`, as `promtool check web-config`: true if all are valid.
pub(crate) fn check_web_config(files: &[PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        match telltale_auth::webconfig::validate(f) {
            Ok(_) => println!("{} SUCCESS", f.display()),
            Err(e) => {
                eprintln!("{} FAILED: {e}", f.display());
                ok = false;
            }
        }
    }
    ok
}
