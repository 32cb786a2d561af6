use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use telltale_model::units::{format_duration, parse_duration};

use crate::error::{Error, Result};

/// How the engine stores metrics: retention, out-of-order tolerance, block size, WAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Blocks whose newest sample is older than this, counted back from the newest sample
    /// stored, are deleted (`"15d"`). `"0s"` keeps data forever.
    #[serde(with = "telltale_model::units::duration")]
    pub retention_time: Duration,
    /// When blocks and WAL together exceed this many bytes, the oldest blocks are deleted
    /// (`"50GiB"`). 0 means no size limit.
    #[serde(with = "telltale_model::units::size")]
    pub retention_size: u64,
    /// How far behind a series' newest sample a new sample may be and still be stored
    /// (`"1h"`). Prometheus defaults to 0 (refuse); we default to one hour so that retried
    /// or merged streams are not lost, at no cost when samples arrive in order.
    #[serde(with = "telltale_model::units::duration")]
    pub out_of_order_window: Duration,
    /// Time span of a block cut from the head (`"2h"`), and the unit of compaction levels.
    #[serde(with = "telltale_model::units::duration")]
    pub block_duration: Duration,
    /// Memory for decompressed block pages that readers share (`"32MiB"`), so repeated
    /// queries skip reading and decompressing; 0 turns the cache off.
    #[serde(with = "telltale_model::units::size")]
    pub page_cache_size: u64,
    /// Write-ahead log settings.
    pub wal: WalOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retention_time: Duration::from_secs(15 * 86_400),
            retention_size: 0,
            out_of_order_window: Duration::from_secs(3600),
            block_duration: Duration::from_secs(2 * 3600),
            page_cache_size: 32 << 20,
            wal: WalOptions::default(),
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.block_duration < Duration::from_millis(1) {
            return Err(Error::InvalidOptions("block_duration must be at least 1ms".into()));
        }
        if self.wal.segment_size < 64 << 10 {
            return Err(Error::InvalidOptions("wal.segment_size must be at least 64KiB".into()));
        }
        Ok(())
    }

    pub(crate) fn block_ms(&self) -> i64 {
        ms(self.block_duration)
    }
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Write-ahead log settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalOptions {
    /// A segment file is closed and a new one started past this size (`"64MiB"`).
    #[serde(with = "telltale_model::units::size")]
    pub segment_size: u64,
    /// When written records are forced to disk: `"always"` (every write, slowest),
    /// `"never"` (leave it to the OS), or an interval such as `"1s"` (the default: at most
    /// that much acknowledged data is lost on power failure; none on a process crash).
    pub fsync: Fsync,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_size: 64 << 20, fsync: Fsync::Interval(Duration::from_secs(1)) }
    }
}

/// The WAL's fsync policy; see [`WalOptions::fsync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fsync before acknowledging each write.
    Always,
    /// Never fsync explicitly.
    Never,
    /// The server calls [`crate::Tsdb::sync_wal`] this often.
    Interval(Duration),
}

impl Fsync {
    /// The interval at which the server should call [`crate::Tsdb::sync_wal`], if any.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Fsync::Interval(d) => Some(*d),
            Fsync::Always | Fsync::Never => None,
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fsync::Always => f.write_str("always"),
            Fsync::Never => f.write_str("never"),
            Fsync::Interval(d) => f.write_str(&format_duration(*d)),
        }
    }
}

impl Serialize for Fsync {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fsync {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            other => match parse_duration(other) {
                Ok(d) if !d.is_zero() => Ok(Fsync::Interval(d)),
                _ => Err(serde::de::Error::custom(format!(
                    "invalid fsync {other:?}: use \"always\", \"never\" or an interval like \"1s\""
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let o: Options = serde_json::from_str(
            r#"{"retention_time":"30d","retention_size":"10GiB","wal":{"fsync":"always"},"block_duration":"1h"}"#,
        )
        .unwrap();
        assert_eq!(o.retention_time, Duration::from_secs(30 * 86400));
        assert_eq!(o.retention_size, 10 << 30);
        assert_eq!(o.wal.fsync, Fsync::Always);
        assert_eq!(o.out_of_order_window, Duration::from_secs(3600));
        assert!(serde_json::from_str::<Options>(r#"{"retension_time":"1d"}"#).is_err());
        assert!(serde_json::from_str::<Options>(r#"{"wal":{"fsync":"sometimes"}}"#).is_err());
        let back: Options = serde_json::from_str(&serde_json::to_string(&Options::default()).unwrap()).unwrap();
        assert_eq!(back, Options::default());
    }
}
