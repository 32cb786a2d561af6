//! Durations and sizes as users write them in config files: Prometheus's durations
//! (`15d`, `1h30m`, `500ms`) and sizes with SI or IEC units (`512MiB`, `1GB`).
//!
//! Use the serde helpers on `Options` fields: `#[serde(with = "telltale_model::units::duration")]`
//! for a [`Duration`], `#[serde(with = "telltale_model::units::size")]` for bytes as `u64`.

use std::time::Duration;

/// Parses a Prometheus duration: one or more `<number><unit>` with units `y w d h m s ms`
/// in that order, e.g. `1h30m`, `15d`, `250ms`. `0` alone is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?}: use a number with a unit, like \"15s\", \"1h30m\" or \"15d\"");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_rank = usize::MAX;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let (rank, (unit, ms)) = UNITS.iter().enumerate().find(|(_, (u, _))| rest.starts_with(u)).ok_or_else(err)?;
        // Units must go from largest to smallest, each at most once; "ms" sorts after "s".
        let order = [0, 1, 2, 3, 6, 4, 5][rank];
        if last_rank != usize::MAX && order <= last_rank {
            return Err(err());
        }
        last_rank = order;
        rest = &rest[unit.len()..];
        total = n.checked_mul(*ms).and_then(|v| total.checked_add(v)).ok_or_else(err)?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `15d`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out += &format!("{}{unit}", ms / size);
            ms %= size;
        }
    }
    out
}

/// Parses a size: a number (decimals allowed) with an optional unit `B`, `KB`/`MB`/`GB`/`TB`
/// (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024); a bare number is bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let err = || format!("invalid size {s:?}: use a number with a unit, like \"512MiB\" or \"10GB\"");
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| err())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err(err()),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// Formats bytes with the largest IEC unit that keeps an integer (`512MiB`, `1500B`).
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Serde helper for a [`Duration`] written as a duration string.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration as a string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    /// Reads a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde helper for a byte count written as a size string (or a bare integer).
pub mod size {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }

    /// Writes the size as a string.
    pub fn serialize<S: Serializer>(b: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_size(*b))
    }

    /// Reads a size string or an integer number of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(n),
            Raw::Text(s) => super::parse_size(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15d").unwrap(), Duration::from_secs(15 * 86400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1m500ms").unwrap(), Duration::from_millis(60_500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "15", "d", "1m1h", "1s1s", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in ["2w1d", "1h30m", "2w", "1m500ms", "0s"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size(1500), "1500B");
    }
}
