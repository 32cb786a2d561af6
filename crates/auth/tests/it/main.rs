//! The auth store (tokens, users, sessions, lockout, two processes sharing the file) and the web
//! config (good and bad files under `testdata/web`, each bad one with the error it must give).

mod webconfig;

use std::time::Duration;

use telltale_auth::{AuthStore, Login, Owner, Policy, Role, Scope, Scopes, Tenants, Who};

const MIN: i64 = 60_000;

fn store(dir: &std::path::Path) -> AuthStore {
    AuthStore::open(dir, Policy::default()).unwrap()
}

#[test]
fn tokens_work_until_revoked_or_expired_and_never_exceed_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.add_service_account("shipper", [Scope::Ingest].into_iter().collect(), Tenants::Any, 0).unwrap();
    let (t, rec) = s
        .create_token(Owner::ServiceAccount("shipper".into()), "vector", None, Tenants::Any, Some(10 * MIN), 0)
        .unwrap();
    assert!(t.starts_with("tt_"));
    let p = s.check_token(&t, MIN).expect("valid");
    assert!(p.scopes.contains(Scope::Ingest) && !p.scopes.contains(Scope::Read));
    assert_eq!(p.who, Who::Token { id: rec.id.clone(), owner: "service_account:shipper".into() });
    assert!(s.check_token(&t, 10 * MIN).is_none(), "expired");
    // More than the owner may do is refused.
    let e = s
        .create_token(Owner::ServiceAccount("shipper".into()), "x", Some(Scopes::ALL), Tenants::Any, None, 0)
        .unwrap_err();
    assert!(e.to_string().contains("scopes"), "{e}");
    // A user's token follows the user's role down.
    s.add_user("ann", Some("long enough"), Role::Editor, "local", 0).unwrap();
    let (ut, _) = s.create_token(Owner::User("ann".into()), "cli", None, Tenants::Any, None, 0).unwrap();
    assert!(s.check_token(&ut, 1).unwrap().scopes.contains(Scope::Edit));
    s.update_user("ann", Some(Role::Viewer), None).unwrap();
    let p = s.check_token(&ut, 2).unwrap();
    assert!(p.scopes.contains(Scope::Read) && !p.scopes.contains(Scope::Edit));
    // Revoked, or owner deleted: gone.
    s.revoke_token(&rec.id).unwrap();
    let (t2, _) = s.create_token(Owner::ServiceAccount("shipper".into()), "v2", None, Tenants::Any, None, 0).unwrap();
    assert!(s.check_token(&t, MIN).is_none());
    s.delete_service_account("shipper").unwrap();
    assert!(s.check_token(&t2, MIN).is_none());
    // A typo is refused without a lookup; the file holds no token.
    assert!(s.check_token(&ut.replace('a', "b"), 3).is_none() || !ut.contains('a'));
    let file = std::fs::read_to_string(dir.path().join("store.json")).unwrap();
    assert!(!file.contains(&ut) && !file.contains("long enough"), "no secret in the clear");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("store.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "only the owner reads the store");
}

#[test]
fn token_tenants_are_bound_within_the_owners() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.add_service_account("acme-grafana", [Scope::Read].into_iter().collect(), Tenants::Only(vec!["acme".into()]), 0)
        .unwrap();
    let (t, _) =
        s.create_token(Owner::ServiceAccount("acme-grafana".into()), "g", None, Tenants::Any, None, 0).unwrap();
    let p = s.check_token(&t, 1).unwrap();
    assert_eq!(p.tenant(None, "default"), Some("acme"));
    assert_eq!(p.tenant(Some("beta"), "default"), None);
}

#[test]
fn passwords_sessions_and_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        session_idle: Duration::from_secs(600),
        session_max_age: Duration::from_secs(3600),
        lockout_attempts: 3,
        lockout_window: Duration::from_secs(60),
        lockout_duration: Duration::from_secs(300),
    };
    let s = AuthStore::open(dir.path(), policy).unwrap();
    assert!(s.add_user("bob", Some("short"), Role::Viewer, "local", 0).is_err(), "8 characters at least");
    s.add_user("bob", Some("a good password"), Role::Viewer, "local", 0).unwrap();
    assert!(matches!(s.check_password("bob", "a good password", 0), Login::Ok(_)));
    assert_eq!(s.check_password("bob", "wrong", 1), Login::Denied);
    assert_eq!(s.check_password("nobody", "wrong", 2), Login::Denied, "unknown users look like wrong passwords");
    assert_eq!(s.check_password("bob", "wrong", 3), Login::Denied);
    assert_eq!(s.check_password("bob", "wrong", 4), Login::LockedOut { until: 300_004, now_locked: true });
    assert_eq!(s.check_password("bob", "a good password", 5), Login::LockedOut { until: 300_004, now_locked: false });
    assert!(matches!(s.check_password("bob", "a good password", 300_005), Login::Ok(_)));

    let (id, csrf) = s.new_session("bob", 0).unwrap();
    let info = s.session(&id, 5 * MIN).unwrap();
    assert_eq!(info.csrf, csrf);
    assert_eq!(info.principal.who, Who::User("bob".into()));
    assert!(s.session(&id, 14 * MIN).is_some(), "used at 5 min, so alive at 14");
    assert!(s.session(&id, 25 * MIN).is_none(), "idle for 11 minutes");
    let (id, _) = s.new_session("bob", 0).unwrap();
    for m in (5..60).step_by(5) {
        assert!(s.session(&id, m * MIN).is_some());
    }
    assert!(s.session(&id, 60 * MIN).is_none(), "an hour after login");
    let (id, _) = s.new_session("bob", 0).unwrap();
    s.update_user("bob", None, Some("another password")).unwrap();
    assert!(s.session(&id, 1).is_none(), "a new password ends other sessions");
    let (id, _) = s.new_session("bob", 0).unwrap();
    s.end_session(&id).unwrap();
    assert!(s.session(&id, 1).is_none());
}

#[test]
fn two_processes_share_the_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = store(dir.path());
    let cli = store(dir.path());
    cli.add_service_account("ci", [Scope::Ingest].into_iter().collect(), Tenants::Any, 0).unwrap();
    let (t, rec) = cli.create_token(Owner::ServiceAccount("ci".into()), "ci", None, Tenants::Any, None, 0).unwrap();
    // The server notices at its next look (at most once a second).
    assert!(server.check_token(&t, 10_000).is_some());
    // Usage is written by the server without losing what the CLI wrote meanwhile.
    cli.add_user("eve", Some("password 123"), Role::Admin, "local", 0).unwrap();
    server.flush_usage(20_000).unwrap();
    let fresh = store(dir.path());
    assert_eq!(fresh.tokens().iter().find(|x| x.id == rec.id).unwrap().last_used_at, Some(10_000));
    assert!(fresh.users().iter().any(|u| u.name == "eve"));
}

#[test]
fn the_bootstrap_admin_is_created_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(s.ensure_user("admin", "first password", Role::Admin, 0).unwrap());
    s.update_user("admin", None, Some("changed in the ui")).unwrap();
    assert!(!s.ensure_user("admin", "first password", Role::Admin, 1).unwrap());
    assert!(matches!(s.check_password("admin", "changed in the ui", 2), Login::Ok(_)));
}

#[test]
fn names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for bad in ["", "has space", "a/b", &"x".repeat(65)] {
        assert!(s.add_user(bad, Some("password 123"), Role::Viewer, "local", 0).is_err(), "{bad:?}");
    }
    assert!(s.add_user("ann.lee@example.com", Some("password 123"), Role::Viewer, "local", 0).is_ok());
    assert!(s.add_user("ann.lee@example.com", Some("password 123"), Role::Viewer, "local", 0).is_err(), "twice");
}
