//! Secrets at rest: credentials entered through the API or the UI (a receiver's webhook URL or
//! SMTP password) are stored sealed, never in the clear.
//!
//! Envelope encryption with AES-256-GCM: each record has its own random 256-bit data key, which
//! seals the value; the data key is sealed by the current key of the key file (the key
//! encryption key). Rotating the key ([`SealedStore::rotate_key`]) re-seals only the data keys.
//! The record's name is bound as associated data, so a sealed value copied under another name
//! does not open. Records live in `sealed.json` in the store's directory; the key file is kept
//! apart from it if the operator says where (`secrets.key_file`), so a copy of the data
//! directory alone does not reveal them.
//!
//! The key file is text: one key per line, `<id> <base64 of 32 bytes>`, `#` comments. The first
//! key seals; the others still open (they are there only while a rotation runs). Every read
//! opens the files afresh, so the server and `telltale secrets rotate-key` can run at once:
//! both change them under the store's lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::jsonfile;
use crate::secret::random_bytes;
use telltale_model::base64;

const FILE: &str = "sealed.json";
const LOCK: &str = "sealed.lock";
const VERSION: u32 = 1;
const KEY_FILE_HEADER: &str = "\
# Telltale's key file: the key that seals the credentials stored in the data directory
# (secrets/sealed.json). Without it they cannot be read: back it up apart from the data.
# One key per line, `<id> <base64>`; the first seals, any others still open.
";

/// One sealed value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// The id of the key that sealed `data_key`.
    key: String,
    /// The record's data key, sealed by that key: base64 of nonce, ciphertext and tag.
    data_key: String,
    /// The value, sealed by the data key: base64 of nonce, ciphertext and tag.
    sealed: String,
    /// When the value was stored (ms since the epoch).
    updated_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    version: u32,
    records: BTreeMap<String, Record>,
}

/// The keys of a key file, the current one first.
struct Keys(Vec<(String, [u8; 32])>);

impl Keys {
    fn parse(path: &Path, text: &str) -> Result<Keys> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| Error::Sealed { message: format!("{}:{}: {why}", path.display(), i + 1) };
            let (id, b64) = line.split_once(' ').ok_or_else(|| bad("expected `<id> <base64 key>`"))?;
            let key = base64::decode(b64.trim())
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or_else(|| bad("the key is not 32 bytes of base64"))?;
            keys.push((id.to_string(), key));
        }
        if keys.is_empty() {
            return Err(Error::Sealed { message: format!("{} holds no key", path.display()) });
        }
        Ok(Keys(keys))
    }

    fn text(&self) -> String {
        let mut s = KEY_FILE_HEADER.to_string();
        for (id, key) in &self.0 {
            s.push_str(&format!("{id} {}\n", base64::encode(key)));
        }
        s
    }

    fn new_key() -> (String, [u8; 32]) {
        let id: String = random_bytes::<4>().iter().map(|b| format!("{b:02x}")).collect();
        (id, random_bytes::<32>())
    }

    fn current(&self) -> &(String, [u8; 32]) {
        &self.0[0]
    }

    fn get(&self, id: &str) -> Option<&[u8; 32]> {
        self.0.iter().find(|(i, _)| i == id).map(|(_, k)| k)
    }
}

fn seal(key: &[u8; 32], aad: &str, plain: &[u8]) -> String {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"));
    let nonce = random_bytes::<NONCE_LEN>();
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), &mut buf)
        .expect("AES-GCM seals any length this store holds");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    base64::encode(&out)
}

fn open(key: &[u8; 32], aad: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = base64::decode(sealed)?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, rest) = bytes.split_at(NONCE_LEN);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut buf = rest.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf).ok()?;
    Some(plain.to_vec())
}

fn data_key_aad(name: &str) -> String {
    format!("telltale/data-key/{name}")
}

fn value_aad(name: &str) -> String {
    format!("telltale/sealed/{name}")
}

/// What [`SealedStore::rotate_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new key's id.
    pub new_key: String,
    /// The ids of the keys it replaced.
    pub old_keys: Vec<String>,
    /// How many records were re-sealed.
    pub records: usize,
}

/// Sealed records in a directory, and the key file that opens them.
#[derive(Debug, Clone)]
pub struct SealedStore {
    dir: PathBuf,
    key_file: PathBuf,
}

impl SealedStore {
    /// Opens the store in `dir` with the keys of `key_file`, and checks that every record
    /// opens: a missing or wrong key is an error that names the records it cannot read. A key
    /// file is made (mode 0600) when there is none and nothing is stored yet.
    pub fn open(dir: &Path, key_file: &Path) -> Result<SealedStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let s = SealedStore { dir: dir.to_path_buf(), key_file: key_file.to_path_buf() };
        let _lock = jsonfile::lock(&s.dir, LOCK)?;
        let data = s.data()?;
        let has_key_file = key_file.try_exists().map_err(|e| Error::io("look at", key_file, e))?;
        if data.records.is_empty() && !has_key_file {
            if let Some(parent) = key_file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            }
            jsonfile::replace(key_file, Keys(vec![Keys::new_key()]).text().as_bytes())?;
            tracing::info!(key_file = %key_file.display(), "made a new key file to seal stored secrets; back it up apart from the data directory");
        }
        s.keys(&data)?;
        s.open_all(&data)?;
        Ok(s)
    }

    /// The names of the records stored in `dir`, without opening them (names are not
    /// secret): for checking a config offline against what is stored. Nothing when the store
    /// cannot be read.
    pub fn names(dir: &Path, prefix: &str) -> Vec<String> {
        let data: Option<Data> = jsonfile::read(&dir.join(FILE)).ok().flatten();
        data.map(|d| d.records.into_keys().filter_map(|n| n.strip_prefix(prefix).map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// The key file's path.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    fn data(&self) -> Result<Data> {
        Ok(jsonfile::read(&self.dir.join(FILE))?.unwrap_or(Data { version: VERSION, ..Data::default() }))
    }

    fn write(&self, data: &mut Data) -> Result<()> {
        data.version = VERSION;
        let path = self.dir.join(FILE);
        let bytes = serde_json::to_vec_pretty(data)
            .map_err(|e| Error::Corrupt { path: path.clone(), message: e.to_string() })?;
        jsonfile::replace(&path, &bytes)
    }

    /// The key file's keys; `data` says what needs them, for the error when it is missing.
    fn keys(&self, data: &Data) -> Result<Keys> {
        match std::fs::read_to_string(&self.key_file) {
            Ok(text) => Keys::parse(&self.key_file, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let names: Vec<&str> = data.records.keys().map(String::as_str).collect();
                Err(Error::Sealed {
                    message: format!(
                        "the key file {} does not exist, and {} stored secret(s) need it ({}): restore the key file, \
                         or point secrets.key_file at it",
                        self.key_file.display(),
                        names.len(),
                        names.join(", ")
                    ),
                })
            }
            Err(e) => Err(Error::io("read", &self.key_file, e)),
        }
    }

    fn open_record(&self, keys: &Keys, name: &str, r: &Record) -> Result<(Vec<u8>, [u8; 32])> {
        let kek = keys.get(&r.key).ok_or_else(|| Error::Sealed {
            message: format!(
                "the key file {} holds no key {:?}, which sealed {name}: it is not the key file these secrets were \
                 stored with",
                self.key_file.display(),
                r.key
            ),
        })?;
        let wrong = || Error::Sealed {
            message: format!(
                "key {:?} of {} does not open {name}: the key was changed, or the stored record was altered",
                r.key,
                self.key_file.display()
            ),
        };
        let data_key =
            open(kek, &data_key_aad(name), &r.data_key).and_then(|k| <[u8; 32]>::try_from(k).ok()).ok_or_else(wrong)?;
        let value = open(&data_key, &value_aad(name), &r.sealed).ok_or_else(wrong)?;
        Ok((value, data_key))
    }

    fn open_all(&self, data: &Data) -> Result<BTreeMap<String, Vec<u8>>> {
        if data.records.is_empty() {
            return Ok(BTreeMap::new());
        }
        let keys = self.keys(data)?;
        data.records.iter().map(|(name, r)| Ok((name.clone(), self.open_record(&keys, name, r)?.0))).collect()
    }

    /// Every record whose name starts with `prefix`, opened.
    pub fn list(&self, prefix: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut data = self.data()?;
        data.records.retain(|name, _| name.starts_with(prefix));
        self.open_all(&data)
    }

    /// Stores `value` as `name`, sealed, replacing what was there.
    pub fn put(&self, name: &str, value: &[u8], now: i64) -> Result<()> {
        let _lock = jsonfile::lock(&self.dir, LOCK)?;
        let mut data = self.data()?;
        let keys = self.keys(&data)?;
        let (key_id, kek) = keys.current();
        let data_key = random_bytes::<32>();
        let record = Record {
            key: key_id.clone(),
            data_key: seal(kek, &data_key_aad(name), &data_key),
            sealed: seal(&data_key, &value_aad(name), value),
            updated_at: now,
        };
        data.records.insert(name.to_string(), record);
        self.write(&mut data)
    }

    /// Removes `name`; false when it was not there.
    pub fn delete(&self, name: &str) -> Result<bool> {
        let _lock = jsonfile::lock(&self.dir, LOCK)?;
        let mut data = self.data()?;
        if data.records.remove(name).is_none() {
            return Ok(false);
        }
        self.write(&mut data)?;
        Ok(true)
    }

    /// Makes a new key and re-seals every record's data key with it, then drops the old keys
    /// from the key file. Each step replaces one file atomically and every state in between
    /// opens (the key file holds the new key and the old ones until the records are re-sealed),
    /// so a crash at any point loses nothing; running it again finishes the job.
    pub fn rotate_key(&self) -> Result<Rotation> {
        let _lock = jsonfile::lock(&self.dir, LOCK)?;
        let mut data = self.data()?;
        let old = self.keys(&data)?;
        let opened: Vec<(String, [u8; 32])> = data
            .records
            .iter()
            .map(|(name, r)| Ok((name.clone(), self.open_record(&old, name, r)?.1)))
            .collect::<Result<_>>()?;
        let new = Keys::new_key();
        let mut both = vec![new.clone()];
        both.extend(old.0.iter().cloned());
        jsonfile::replace(&self.key_file, Keys(both).text().as_bytes())?;
        for (name, data_key) in &opened {
            let r = data.records.get_mut(name).expect("opened from these records");
            r.key = new.0.clone();
            r.data_key = seal(&new.1, &data_key_aad(name), data_key);
        }
        self.write(&mut data)?;
        jsonfile::replace(&self.key_file, Keys(vec![new.clone()]).text().as_bytes())?;
        Ok(Rotation { new_key: new.0, old_keys: old.0.into_iter().map(|(id, _)| id).collect(), records: opened.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> SealedStore {
        SealedStore::open(&dir.join("secrets"), &dir.join("keys/key")).unwrap()
    }

    #[test]
    fn values_round_trip_and_never_sit_in_the_clear() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        s.put("receiver/ops", b"https://hooks.example/T0/B0/s3cr3t", 1).unwrap();
        s.put("receiver/mail", b"smtp-password-42", 2).unwrap();
        let all = s.list("receiver/").unwrap();
        assert_eq!(all["receiver/ops"], b"https://hooks.example/T0/B0/s3cr3t");
        assert_eq!(all["receiver/mail"], b"smtp-password-42");
        let on_disk = std::fs::read_to_string(d.path().join("secrets/sealed.json")).unwrap();
        assert!(!on_disk.contains("s3cr3t") && !on_disk.contains("smtp-password"), "{on_disk}");
        assert!(s.list("other/").unwrap().is_empty());
        assert_eq!(SealedStore::names(&d.path().join("secrets"), "receiver/"), ["mail", "ops"]);
        assert!(s.delete("receiver/ops").unwrap());
        assert!(!s.delete("receiver/ops").unwrap());
        assert_eq!(s.list("").unwrap().len(), 1);
        // A second open uses the key file the first one made.
        assert_eq!(store(d.path()).list("").unwrap().len(), 1);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.path().join("keys/key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_missing_or_wrong_key_names_what_cannot_be_read() {
        let d = tempfile::tempdir().unwrap();
        store(d.path()).put("receiver/ops", b"x", 1).unwrap();
        let key = d.path().join("keys/key");
        let saved = std::fs::read_to_string(&key).unwrap();
        std::fs::remove_file(&key).unwrap();
        let e = SealedStore::open(&d.path().join("secrets"), &key).unwrap_err().to_string();
        assert!(e.contains("does not exist") && e.contains("receiver/ops") && e.contains("keys/key"), "{e}");
        assert!(!key.try_exists().unwrap(), "no new key is made while records need the old one");

        // Another key file: its id is unknown.
        let other = tempfile::tempdir().unwrap();
        store(other.path());
        std::fs::copy(other.path().join("keys/key"), &key).unwrap();
        let e = SealedStore::open(&d.path().join("secrets"), &key).unwrap_err().to_string();
        assert!(e.contains("holds no key") && e.contains("receiver/ops"), "{e}");

        // The right id with other key bytes: it does not open.
        let id = saved.lines().find(|l| !l.starts_with('#')).unwrap().split(' ').next().unwrap();
        std::fs::write(&key, format!("{id} {}\n", base64::encode(&[7u8; 32]))).unwrap();
        let e = SealedStore::open(&d.path().join("secrets"), &key).unwrap_err().to_string();
        assert!(e.contains("does not open receiver/ops"), "{e}");

        std::fs::write(&key, &saved).unwrap();
        assert_eq!(store(d.path()).list("").unwrap()["receiver/ops"], b"x");
    }

    #[test]
    fn a_value_moved_to_another_name_does_not_open() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        s.put("receiver/a", b"secret-a", 1).unwrap();
        let path = d.path().join("secrets/sealed.json");
        let text = std::fs::read_to_string(&path).unwrap().replace("receiver/a", "receiver/b");
        std::fs::write(&path, text).unwrap();
        let e = s.list("").unwrap_err().to_string();
        assert!(e.contains("does not open receiver/b"), "{e}");
    }

    #[test]
    fn rotating_the_key_keeps_every_value_and_drops_the_old_key() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        for i in 0..5 {
            s.put(&format!("receiver/r{i}"), format!("value {i}").as_bytes(), i).unwrap();
        }
        let before = std::fs::read_to_string(s.key_file()).unwrap();
        let sealed_before: Data = jsonfile::read(&d.path().join("secrets/sealed.json")).unwrap().unwrap();
        let r = s.rotate_key().unwrap();
        assert_eq!(r.records, 5);
        assert_eq!(r.old_keys.len(), 1);
        assert_ne!(r.old_keys[0], r.new_key);
        let after = std::fs::read_to_string(s.key_file()).unwrap();
        assert_ne!(before, after);
        assert!(after.contains(&r.new_key) && !after.contains(&r.old_keys[0]), "{after}");
        // Only the data keys were re-sealed.
        let sealed_after: Data = jsonfile::read(&d.path().join("secrets/sealed.json")).unwrap().unwrap();
        for (name, rec) in &sealed_after.records {
            assert_eq!(rec.sealed, sealed_before.records[name].sealed);
            assert_ne!(rec.data_key, sealed_before.records[name].data_key);
        }
        let all = store(d.path()).list("").unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all["receiver/r3"], b"value 3");
        // The old key file no longer opens anything.
        std::fs::write(s.key_file(), &before).unwrap();
        assert!(s.list("").is_err());
    }

    #[test]
    fn a_rotation_cut_off_halfway_still_opens_and_finishes_when_run_again() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        s.put("receiver/a", b"va", 1).unwrap();
        // The state after the first step: the key file holds a new key and the old one.
        let text = std::fs::read_to_string(s.key_file()).unwrap();
        let old = Keys::parse(s.key_file(), &text).unwrap();
        let mut both = vec![Keys::new_key()];
        both.extend(old.0.iter().cloned());
        std::fs::write(s.key_file(), Keys(both).text()).unwrap();
        assert_eq!(s.list("").unwrap()["receiver/a"], b"va");
        s.put("receiver/b", b"vb", 2).unwrap();
        let r = s.rotate_key().unwrap();
        assert_eq!((r.records, r.old_keys.len()), (2, 2));
        let all = s.list("").unwrap();
        assert_eq!((all["receiver/a"].as_slice(), all["receiver/b"].as_slice()), (&b"va"[..], &b"vb"[..]));
    }

    #[test]
    fn a_damaged_key_file_says_which_line() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("key");
        std::fs::write(&key, "# comment\nabc not-base64!\n").unwrap();
        let e = SealedStore::open(&d.path().join("s"), &key).unwrap_err().to_string();
        assert!(e.contains("key:2") && e.contains("not 32 bytes"), "{e}");
        std::fs::write(&key, "# only comments\n").unwrap();
        let e = SealedStore::open(&d.path().join("s"), &key).unwrap_err().to_string();
        assert!(e.contains("holds no key"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn any_value_round_trips(value in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), name in "[a-z/]{1,20}") {
            let d = tempfile::tempdir().unwrap();
            let s = store(d.path());
            s.put(&name, &value, 0).unwrap();
            proptest::prop_assert_eq!(&s.list("").unwrap()[&name], &value);
        }
    }
}
