//! Silences with Alertmanager's semantics: pending, active and expired states, updates
//! that keep or replace the id, expiry, and Alertmanager API v2's JSON shapes.

use serde::{Deserialize, Serialize};
use telltale_model::{MatchOp, Matcher, Timestamp};

use crate::{Error, LabelSet, Result};

/// One matcher of a silence, as the API carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    /// Label name.
    pub name: String,
    /// Value or regular expression.
    pub value: String,
    /// Regex match.
    pub is_regex: bool,
    /// `=`/`=~` (true, the default) or `!=`/`!~`.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    fn compile(&self) -> Result<Matcher> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        Matcher::new(op, &self.name, &self.value)
            .map_err(|e| Error::Invalid(format!("invalid label matcher {}: {e}", self.name)))
    }
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// UUID.
    pub id: String,
    /// What it silences.
    pub matchers: Vec<SilenceMatcher>,
    /// From (ms).
    pub starts_at: Timestamp,
    /// Until (ms).
    pub ends_at: Timestamp,
    /// Last change (ms).
    pub updated_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// `pending`, `active`, `expired` at `now`.
pub fn state(s: &Silence, now: Timestamp) -> &'static str {
    if s.ends_at <= now {
        "expired"
    } else if s.starts_at > now {
        "pending"
    } else {
        "active"
    }
}

/// A silence as posted (`postableSilence`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    /// Set to update an existing silence.
    #[serde(default)]
    pub id: Option<String>,
    /// Matchers.
    pub matchers: Vec<SilenceMatcher>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
}

/// Every silence, with the operations of the API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Silences {
    /// By id.
    pub all: std::collections::BTreeMap<String, Silence>,
}

/// How long expired silences are kept (Alertmanager's `--data.retention` default, 120h).
pub const RETENTION_MS: i64 = 120 * 3600 * 1000;

pub(crate) fn parse_time(field: &str, s: &str) -> Result<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| Error::Invalid(format!("{field} in body must be of type date-time: {s:?} ({e})")))
}

fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let a = h.finish();
    let mut h2 = std::collections::hash_map::RandomState::new().build_hasher();
    h2.write_u64(a);
    let b = h2.finish();
    let x = (a as u128) << 64 | b as u128;
    let x = (x & !(0xf << 76)) | (0x4 << 76); // version 4
    let x = (x & !(0x3 << 62)) | (0x2 << 62); // variant
    let s = format!("{x:032x}");
    format!("{}-{}-{}-{}-{}", &s[..8], &s[8..12], &s[12..16], &s[16..20], &s[20..])
}

impl Silences {
    /// Whether `labels` is silenced at `now`; the ids of the silences that do it.
    pub fn silencing(&self, labels: &LabelSet, now: Timestamp) -> Vec<String> {
        self.all
            .values()
            .filter(|s| state(s, now) == "active")
            .filter(|s| {
                s.matchers.iter().all(|m| {
                    m.compile().is_ok_and(|c| c.matches(labels.get(&m.name).map(String::as_str).unwrap_or("")))
                })
            })
            .map(|s| s.id.clone())
            .collect()
    }

    /// Creates or updates a silence (Alertmanager's `Silences.Set`): an active silence keeps
    /// its id only if its matchers and start do not change; otherwise it is expired and a
    /// new one takes its place. Returns the id.
    pub fn set(&mut self, p: PostableSilence, now: Timestamp) -> Result<String> {
        let starts_at = parse_time("startsAt", &p.starts_at)?;
        let ends_at = parse_time("endsAt", &p.ends_at)?;
        if p.matchers.is_empty() {
            return Err(Error::Invalid("silence invalid: at least one matcher required".into()));
        }
        let mut all_match_empty = true;
        for m in &p.matchers {
            if m.name.is_empty() {
                return Err(Error::Invalid("silence invalid: invalid label matcher: invalid label name \"\"".into()));
            }
            all_match_empty &= m.compile()?.matches_empty();
        }
        if all_match_empty {
            return Err(Error::Invalid("silence invalid: at least one matcher must not match the empty string".into()));
        }
        if ends_at < starts_at {
            return Err(Error::Invalid("silence invalid: end time must not be before start time".into()));
        }
        if ends_at <= now {
            return Err(Error::Invalid("silence invalid: end time can't be in the past".into()));
        }
        let mut sil = Silence {
            id: String::new(),
            matchers: p.matchers,
            starts_at: starts_at.max(now.min(starts_at.max(now))),
            ends_at,
            updated_at: now,
            created_by: p.created_by,
            comment: p.comment,
        };
        if sil.starts_at < now {
            sil.starts_at = now;
        }
        if let Some(id) = p.id.filter(|i| !i.is_empty()) {
            let prev = self.all.get(&id).cloned().ok_or_else(|| Error::NotFound(format!("silence {id} not found")))?;
            let can_update = match state(&prev, now) {
                "pending" => true,
                "active" => prev.matchers == sil.matchers && prev.starts_at <= now,
                _ => false,
            };
            if can_update {
                if state(&prev, now) == "active" {
                    sil.starts_at = prev.starts_at;
                }
                sil.id = id.clone();
                self.all.insert(id.clone(), sil);
                return Ok(id);
            }
            if state(&prev, now) != "expired" {
                self.expire(&id, now)?;
            }
        }
        sil.id = new_id();
        let id = sil.id.clone();
        self.all.insert(id.clone(), sil);
        Ok(id)
    }

    /// Expires a silence now.
    pub fn expire(&mut self, id: &str, now: Timestamp) -> Result<()> {
        let s = self.all.get_mut(id).ok_or_else(|| Error::NotFound(format!("silence {id} not found")))?;
        match state(s, now) {
            "expired" => return Err(Error::Invalid(format!("silence {id} already expired"))),
            "pending" => {
                s.starts_at = now;
                s.ends_at = now;
            }
            _ => s.ends_at = now,
        }
        s.updated_at = now;
        Ok(())
    }

    /// Drops silences expired longer ago than the retention.
    pub fn gc(&mut self, now: Timestamp) {
        self.all.retain(|_, s| s.ends_at + RETENTION_MS > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: Option<&str>, value: &str, start: &str, end: &str) -> PostableSilence {
        PostableSilence {
            id: id.map(String::from),
            matchers: vec![SilenceMatcher {
                name: "alertname".into(),
                value: value.into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: start.into(),
            ends_at: end.into(),
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn lifecycle() {
        let now = parse_time("t", "2024-01-01T00:00:00Z").unwrap();
        let mut s = Silences::default();
        let id = s.set(post(None, "A", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"), now).unwrap();
        assert_eq!(id.len(), 36);
        let l: LabelSet = [("alertname".to_string(), "A".to_string())].into();
        assert_eq!(s.silencing(&l, now + 1), vec![id.clone()]);
        // Extending an active silence keeps its id; changing its matchers replaces it.
        assert_eq!(s.set(post(Some(&id), "A", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z"), now + 10).unwrap(), id);
        let id2 = s.set(post(Some(&id), "B", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z"), now + 20).unwrap();
        assert_ne!(id2, id);
        assert_eq!(state(&s.all[&id], now + 20), "expired");
        s.expire(&id2, now + 30).unwrap();
        assert!(s.expire(&id2, now + 40).unwrap_err().to_string().contains("already expired"));
        assert!(s.silencing(&l, now + 40).is_empty());
        let bad = |p: PostableSilence| s.clone().set(p, now).unwrap_err().to_string();
        assert!(bad(post(None, "", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"))
            .contains("must not match the empty string"));
        assert!(bad(post(None, "A", "2024-01-01T00:00:00Z", "2023-01-01T01:00:00Z"))
            .contains("end time must not be before start time"));
        assert!(bad(post(None, "A", "yesterday", "2024-01-01T01:00:00Z"))
            .contains("startsAt in body must be of type date-time"));
    }
}
