//! The sealed store of credentials entered through the API or UI (`DATA_DIR/secrets/`), and
//! `telltale secrets rotate-key`. The store and its key file are opened before the server
//! listens, so a missing or wrong key stops startup with the names of what it cannot read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use telltale_auth::SealedStore;

use crate::config::{self, Config, Overrides};

/// Opens the sealed store of `c`'s data directory with `c`'s key file.
pub(crate) fn open(c: &Config) -> anyhow::Result<SealedStore> {
    let dir = c.storage.data_dir.join("secrets");
    SealedStore::open(&dir, &c.key_file())
        .with_context(|| format!("cannot open the stored secrets in {}", dir.display()))
}

/// `telltale secrets rotate-key`.
pub(crate) fn rotate_key(config_path: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let c = config::load(config_path, &env, &Overrides { data_dir, ..Overrides::default() })?;
    let store = open(&c)?;
    let r = store.rotate_key()?;
    println!(
        "key {} replaces {} in {}; {} stored secret(s) re-sealed. Back up the new key file: the old key no longer opens them.",
        r.new_key,
        r.old_keys.join(", "),
        store.key_file().display(),
        r.records
    );
    Ok(())
}
