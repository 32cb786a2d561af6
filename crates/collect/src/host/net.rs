//! netdev (/proc/net/dev), netstat (/proc/net/{netstat,snmp,snmp6}), sockstat
//! (/proc/net/sockstat{,6}).

use std::path::Path;

use regex::Regex;
use telltale_model::MetricType;

use super::read::{join, num, Reader};
use super::Out;
use crate::error::{Error, Result};

const RECEIVE: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"];
const TRANSMIT: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"];

/// `node_network_{receive,transmit}_*_total{device}` from /proc/net/dev.
pub(crate) fn netdev(
    r: &mut Reader,
    proc: &Path,
    include: Option<&Regex>,
    exclude: Option<&Regex>,
    out: &mut Out<'_>,
) -> Result<()> {
    let path = join(proc, "net/dev");
    let text = r.read(&path)?.to_string();
    let mut devs: Vec<(&str, [f64; 16])> = Vec::new();
    for line in text.lines().skip(2) {
        let Some((dev, rest)) = line.split_once(':') else { continue };
        let dev = dev.trim();
        if include.is_some_and(|re| !re.is_match(dev)) || exclude.is_some_and(|re| re.is_match(dev)) {
            continue;
        }
        let mut v = [0.0; 16];
        let mut n = 0;
        for (i, f) in rest.split_ascii_whitespace().take(16).enumerate() {
            v[i] = num(&path, f)?;
            n += 1;
        }
        if n != 16 {
            return Err(Error::parse(&path, format!("expected 16 counters for {dev}, got {n}")));
        }
        devs.push((dev, v));
    }
    let mut name = String::with_capacity(64);
    for (dir, fields, off) in [("receive", RECEIVE, 0), ("transmit", TRANSMIT, 8)] {
        for (i, field) in fields.iter().enumerate() {
            name.clear();
            name.push_str("node_network_");
            name.push_str(dir);
            name.push('_');
            name.push_str(field);
            name.push_str("_total");
            out.family(&name, "Network device statistic from /proc/net/dev.", MetricType::Counter);
            for (dev, v) in &devs {
                out.put(&[("device", dev)], v[off + i]);
            }
        }
    }
    Ok(())
}

/// `node_netstat_<Protocol>_<Field>` for the fields matching `fields`.
pub(crate) fn netstat(r: &mut Reader, proc: &Path, fields: &Regex, out: &mut Out<'_>) -> Result<()> {
    let mut name = String::with_capacity(64);
    for file in ["net/netstat", "net/snmp"] {
        let path = join(proc, file);
        let text = r.read(&path)?.to_string();
        let mut lines = text.lines();
        while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
            let (Some((proto, names)), Some((proto2, values))) = (names.split_once(':'), values.split_once(':')) else {
                return Err(Error::parse(&path, format!("malformed line {names:?}")));
            };
            if proto != proto2 {
                return Err(Error::parse(&path, format!("mismatched protocol lines {proto:?} and {proto2:?}")));
            }
            for (k, v) in names.split_ascii_whitespace().zip(values.split_ascii_whitespace()) {
                put_netstat(&path, proto, k, v, fields, &mut name, out)?;
            }
        }
    }
    // IPv6 may be off: then there is no snmp6, and node_exporter reports the rest.
    let path = join(proc, "net/snmp6");
    if let Some(text) = r.read_opt(&path)? {
        let text = text.to_string();
        for line in text.lines() {
            let mut f = line.split_ascii_whitespace();
            let (Some(key), Some(v)) = (f.next(), f.next()) else { continue };
            let Some(six) = key.find('6') else { continue };
            let (proto, k) = key.split_at(six + 1);
            put_netstat(&path, proto, k, v, fields, &mut name, out)?;
        }
    }
    Ok(())
}

fn put_netstat(
    path: &Path,
    proto: &str,
    key: &str,
    value: &str,
    fields: &Regex,
    name: &mut String,
    out: &mut Out<'_>,
) -> Result<()> {
    name.clear();
    name.push_str(proto);
    name.push('_');
    name.push_str(key);
    if !fields.is_match(name) {
        return Ok(());
    }
    let v = num(path, value)?;
    name.insert_str(0, "node_netstat_");
    out.untyped(name, "Statistic from /proc/net/netstat, snmp or snmp6.", v);
    Ok(())
}

/// `node_sockstat_sockets_used` and `node_sockstat_<PROTO>_<field>` (plus `_mem_bytes` for
/// page counts) from /proc/net/sockstat and sockstat6.
pub(crate) fn sockstat(r: &mut Reader, proc: &Path, page_size: u64, out: &mut Out<'_>) -> Result<()> {
    let mut name = String::with_capacity(64);
    for (file, required) in [("net/sockstat", true), ("net/sockstat6", false)] {
        let path = join(proc, file);
        let text = match r.read_opt(&path)? {
            Some(t) => t.to_string(),
            None if required => return Err(Error::NoData(format!("{} does not exist", path.display()))),
            None => continue,
        };
        for line in text.lines() {
            let Some((proto, rest)) = line.split_once(':') else { continue };
            let f: Vec<&str> = rest.split_ascii_whitespace().collect();
            if !f.len().is_multiple_of(2) {
                return Err(Error::parse(&path, format!("odd number of fields in {line:?}")));
            }
            for kv in f.chunks(2) {
                let v = num(&path, kv[1])?;
                name.clear();
                name.push_str("node_sockstat_");
                if proto == "sockets" {
                    name.push_str("sockets_");
                } else {
                    name.push_str(proto);
                    name.push('_');
                }
                name.push_str(kv[0]);
                out.gauge(&name, "Statistic from /proc/net/sockstat.", v);
                if kv[0] == "mem" {
                    name.push_str("_bytes");
                    out.gauge(&name, "Statistic from /proc/net/sockstat, in bytes.", v * page_size as f64);
                }
            }
        }
    }
    Ok(())
}
