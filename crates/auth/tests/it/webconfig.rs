//! Every file under `testdata/web`: good ones load, bad ones fail with their stated error.

use std::path::{Path, PathBuf};

use telltale_auth::webconfig::{validate, WebConfigFile};
use telltale_testkit::pki::Pki;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/web")
}

/// A test CA with `server.crt`/`server.key` for 127.0.0.1.
pub(crate) fn pki() -> Pki {
    let p = Pki::new();
    p.server("server", &["IP:127.0.0.1", "DNS:localhost"]);
    p
}

/// The fixture with `{pki}` filled in, written beside the CA's files.
pub(crate) fn instantiate(fixture: &Path, pki: &Pki) -> PathBuf {
    let text = std::fs::read_to_string(fixture)
        .unwrap()
        .replace("{pki}", pki.path("").display().to_string().trim_end_matches('/'));
    let out = pki.path(fixture.file_name().unwrap().to_str().unwrap());
    std::fs::write(&out, text).unwrap();
    out
}

#[test]
fn fixtures_load_or_fail_as_stated() {
    let pki = pki();
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    let (mut good, mut bad) = (0, 0);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let path = instantiate(f, &pki);
        let result = validate(&path);
        if name.ends_with(".good.yml") {
            good += 1;
            assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
        } else {
            bad += 1;
            let text = std::fs::read_to_string(f).unwrap();
            let want = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# error: "))
                .unwrap_or_else(|| panic!("{name}: no '# error:' line"));
            let e = result.err().unwrap_or_else(|| panic!("{name} loaded but must fail with {want:?}")).to_string();
            assert!(e.contains(want), "{name}: {e:?} does not contain {want:?}");
            assert!(!e.contains('\n'), "{name}: one-line error: {e:?}");
        }
    }
    assert!(good >= 9 && bad >= 18, "{good} good, {bad} bad");
}

#[test]
fn a_changed_file_is_read_again_and_a_broken_one_leaves_the_last_good_in_force() {
    let pki = pki();
    let path = instantiate(&testdata().join("users.good.yml"), &pki);
    let web = WebConfigFile::open(&path).unwrap();
    assert_eq!(web.current().config.users().unwrap().len(), 3);
    std::fs::write(&path, "basic_auth_users:\n  dave: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n")
        .unwrap();
    let users: Vec<String> = web.current().config.users().unwrap().keys().cloned().collect();
    assert_eq!(users, ["dave"]);
    std::fs::write(&path, "basic_auth_users: [this is not right\n").unwrap();
    let users: Vec<String> = web.current().config.users().unwrap().keys().cloned().collect();
    assert_eq!(users, ["dave"], "the last good version stays");
}

#[test]
fn basic_users_are_checked_with_bcrypt_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&path, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let web = WebConfigFile::open(&path).unwrap();
    let l = web.current();
    assert_eq!(web.cached_basic(&l, "alice", "s3cret"), None);
    assert!(web.verify_basic(&l, "alice", "s3cret"));
    assert_eq!(web.cached_basic(&l, "alice", "s3cret"), Some(true));
    assert!(!web.verify_basic(&l, "alice", "wrong"));
    assert_eq!(web.cached_basic(&l, "alice", "wrong"), Some(false));
    // An unknown user is checked against the fixed hash, and refused even with its password.
    assert!(!web.verify_basic(&l, "mallory", "fakepassword"));
}

/// The names `client_allowed_sans` compares, read from certificates openssl made: each kind, as
/// the exporter-toolkit prints it.
#[test]
fn subject_alt_names_of_real_certificates() {
    let pki = telltale_testkit::pki::Pki::new();
    pki.client(
        "many",
        &["DNS:alice.test", "email:alice@example.test", "IP:10.0.0.7", "IP:2001:db8::1", "URI:spiffe://t/ns/a/sa/b"],
    );
    let der = |name: &str| {
        let pem = std::fs::read_to_string(pki.path(&format!("{name}.crt"))).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        telltale_auth::base64::decode(&b64).unwrap()
    };
    assert_eq!(
        telltale_auth::san::subject_alt_names(&der("many")).unwrap(),
        ["alice.test", "alice@example.test", "10.0.0.7", "2001:db8::1", "spiffe://t/ns/a/sa/b"]
    );
    assert!(telltale_auth::san::subject_alt_names(&der("client")).unwrap().is_empty());
    assert!(telltale_auth::san::subject_alt_names(&der("ca")).unwrap().is_empty());
}
