//! netclass: one directory per network device under /sys/class/net, as node_exporter's
//! netclass collector reads it (`node_network_up`, `node_network_info`,
//! `node_network_mtu_bytes`, `node_network_speed_bytes`, `node_network_carrier`, ...).
//!
//! An attribute the kernel refuses to read (`carrier` and `speed` of a device that is down
//! give EINVAL) is left out for that device, as node_exporter (procfs) does.

use std::path::Path;

use regex::Regex;
use telltale_model::MetricType;

use super::read::{join, Reader};
use super::Out;
use crate::error::{Error, Result};

/// `(file under /sys/class/net/DEV, family suffix, counter?)`, in node_exporter's order.
const NUMERIC: [(&str, &str, bool); 16] = [
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("tx_queue_len", "transmit_queue_length", false),
    ("type", "protocol_type", false),
];

/// One device's attributes.
struct Device {
    name: String,
    operstate: String,
    address: String,
    broadcast: String,
    duplex: String,
    ifalias: String,
    numeric: [Option<i64>; NUMERIC.len()],
    /// Mbit/s as the kernel reports it (-1: unknown).
    speed: Option<i64>,
}

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, `0x` hex, leading-`0` octal, optional sign.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// The text of `dir/file`, or `None` if it is missing or the kernel refuses to read it.
fn attr(r: &mut Reader, dir: &Path, file: &str) -> Option<String> {
    r.read_opt(&dir.join(file)).ok().flatten().map(|s| s.trim().to_string())
}

/// `node_network_*` for every device in `sys/class/net` not matching `ignored`; `speed`
/// values below zero (unknown) are reported unless `ignore_invalid_speed`.
pub(crate) fn netclass(
    r: &mut Reader,
    sys: &Path,
    ignored: &Regex,
    ignore_invalid_speed: bool,
    out: &mut Out<'_>,
) -> Result<()> {
    let dir = join(sys, "class/net");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoData(format!("{} does not exist", dir.display())));
        }
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        // Devices are symlinks to directories; `bonding_masters` is a plain file.
        .filter(|e| !e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !ignored.is_match(n))
        .collect();
    names.sort();
    let mut devices = Vec::with_capacity(names.len());
    for name in names {
        let d = dir.join(&name);
        let mut numeric = [None; NUMERIC.len()];
        for (i, (file, _, _)) in NUMERIC.iter().enumerate() {
            numeric[i] = attr(r, &d, file).and_then(|v| parse_int(&v));
        }
        devices.push(Device {
            operstate: attr(r, &d, "operstate").unwrap_or_default(),
            address: attr(r, &d, "address").unwrap_or_default(),
            broadcast: attr(r, &d, "broadcast").unwrap_or_default(),
            duplex: attr(r, &d, "duplex").unwrap_or_default(),
            ifalias: attr(r, &d, "ifalias").unwrap_or_default(),
            speed: attr(r, &d, "speed").and_then(|v| parse_int(&v)),
            numeric,
            name,
        });
    }
    out.family("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", MetricType::Gauge);
    for d in &devices {
        out.put(&[("device", &d.name)], if d.operstate == "up" { 1.0 } else { 0.0 });
    }
    out.family(
        "node_network_info",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        MetricType::Gauge,
    );
    for d in &devices {
        // Empty values (no duplex on a virtual device) are absent labels, as in Prometheus.
        out.put(
            &[
                ("device", &d.name),
                ("address", &d.address),
                ("broadcast", &d.broadcast),
                ("duplex", &d.duplex),
                ("ifalias", &d.ifalias),
                ("operstate", &d.operstate),
            ],
            1.0,
        );
    }
    let mut name = String::with_capacity(48);
    for (i, (_, suffix, counter)) in NUMERIC.iter().enumerate() {
        name.clear();
        name.push_str("node_network_");
        name.push_str(suffix);
        let kind = if *counter { MetricType::Counter } else { MetricType::Gauge };
        out.family(&name, &format!("Network device property: {suffix}"), kind);
        for d in &devices {
            if let Some(v) = d.numeric[i] {
                out.put(&[("device", &d.name)], v as f64);
            }
        }
    }
    out.family("node_network_speed_bytes", "Network device property: speed_bytes", MetricType::Gauge);
    for d in &devices {
        if let Some(mbits) = d.speed.filter(|s| *s >= 0 || !ignore_invalid_speed) {
            out.put(&[("device", &d.name)], (mbits * 1_000_000 / 8) as f64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_as_go_does() {
        assert_eq!(parse_int("0x1003"), Some(4099));
        assert_eq!(parse_int("1500\n"), Some(1500));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("x"), None);
    }

    #[test]
    fn reads_a_sysfs_tree() {
        let sys = tempfile::tempdir().unwrap();
        let dev = sys.path().join("class/net/eth9");
        std::fs::create_dir_all(&dev).unwrap();
        for (f, v) in
            [("operstate", "up"), ("mtu", "9000"), ("speed", "10000"), ("flags", "0x1003"), ("address", "aa:bb")]
        {
            std::fs::write(dev.join(f), format!("{v}\n")).unwrap();
        }
        std::fs::create_dir_all(sys.path().join("class/net/skipme")).unwrap();
        std::fs::write(sys.path().join("class/net/bonding_masters"), "\n").unwrap();
        let mut batch = telltale_model::WriteBatch::new();
        let base = [("job".to_string(), "node".to_string())];
        let mut out = Out::new(&mut batch, &base, 1, false);
        netclass(&mut Reader::default(), sys.path(), &Regex::new("^skip").unwrap(), false, &mut out).unwrap();
        let got: Vec<String> = batch.iter().map(|(l, s)| format!("{l} {}", s[0].v)).collect();
        assert_eq!(
            got,
            [
                r#"node_network_up{device="eth9", job="node"} 1"#,
                r#"node_network_info{address="aa:bb", device="eth9", job="node", operstate="up"} 1"#,
                r#"node_network_flags{device="eth9", job="node"} 4099"#,
                r#"node_network_mtu_bytes{device="eth9", job="node"} 9000"#,
                r#"node_network_speed_bytes{device="eth9", job="node"} 1250000000"#,
            ]
        );
    }
}
