//! What authentication adds to every request once warm: a token check (checksum, SHA-256,
//! lookup among 100 tokens) and a remembered bcrypt outcome of a web config user.
//! Run: `cargo bench -p telltale-auth`.

use criterion::{criterion_group, criterion_main, Criterion};
use telltale_auth::{AuthStore, Owner, Policy, Scope, Tenants, WebConfigFile};

fn token_check(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = AuthStore::open(dir.path(), Policy::default()).unwrap();
    store.add_service_account("shipper", [Scope::Ingest].into_iter().collect(), Tenants::Any, 0).unwrap();
    let mut last = String::new();
    for i in 0..100 {
        last = store
            .create_token(Owner::ServiceAccount("shipper".into()), &format!("t{i}"), None, Tenants::Any, None, 0)
            .unwrap()
            .0;
    }
    c.bench_function("check_token_of_100", |b| b.iter(|| store.check_token(&last, 1).expect("valid")));
}

fn cached_bcrypt(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    let hash = bcrypt::hash("s3cret", 10).unwrap();
    std::fs::write(&path, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let web = WebConfigFile::open(&path).unwrap();
    let loaded = web.current();
    assert!(web.verify_basic(&loaded, "alice", "s3cret"));
    c.bench_function("cached_bcrypt_basic", |b| {
        b.iter(|| {
            let l = web.current();
            web.cached_basic(&l, "alice", "s3cret").expect("cached")
        })
    });
}

criterion_group!(benches, token_check, cached_bcrypt);
criterion_main!(benches);
