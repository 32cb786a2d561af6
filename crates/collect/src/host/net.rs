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

/// `node_arp_entries{device}`: the entries of /proc/net/arp per device.
pub(crate) fn arp(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "net/arp");
    let text = r.read(&path)?;
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 6 {
            return Err(Error::parse(&path, format!("expected 6 columns in {line:?}")));
        }
        *counts.entry(f[5].to_string()).or_default() += 1;
    }
    out.family("node_arp_entries", "ARP entries by device", MetricType::Gauge);
    for (dev, n) in &counts {
        out.put(&[("device", dev)], *n as f64);
    }
    Ok(())
}

fn hex(path: &Path, s: &str) -> Result<u64> {
    u64::from_str_radix(s, 16).map_err(|_| Error::parse(path, format!("{s:?} is not a hex number")))
}

/// `node_softnet_{processed,dropped,times_squeezed}_total{cpu}` from /proc/net/softnet_stat
/// (hex columns, one line per CPU).
pub(crate) fn softnet(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "net/softnet_stat");
    let text = r.read(&path)?.to_string();
    let mut rows: Vec<[u64; 3]> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 3 {
            return Err(Error::parse(&path, format!("expected at least 3 columns in {line:?}")));
        }
        rows.push([hex(&path, f[0])?, hex(&path, f[1])?, hex(&path, f[2])?]);
    }
    let families = [
        ("node_softnet_processed_total", "Number of processed packets"),
        ("node_softnet_dropped_total", "Number of dropped packets"),
        ("node_softnet_times_squeezed_total", "Number of times processing packets ran out of quota"),
    ];
    let mut cpu = String::new();
    for (i, (name, help)) in families.iter().enumerate() {
        out.family(name, help, MetricType::Counter);
        for (n, row) in rows.iter().enumerate() {
            cpu.clear();
            cpu.push_str(&n.to_string());
            out.put(&[("cpu", &cpu)], row[i] as f64);
        }
    }
    Ok(())
}

/// `node_udp_queues{ip,queue}`: the bytes waiting in every UDP socket's transmit and receive
/// queues, from /proc/net/udp and udp6 (`tx_queue:rx_queue`, hex).
pub(crate) fn udp_queues(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let mut sums: Vec<(&str, u64, u64)> = Vec::new();
    for (file, ip) in [("net/udp", "v4"), ("net/udp6", "v6")] {
        let path = join(proc, file);
        let Some(text) = r.read_opt(&path)? else {
            if ip == "v4" {
                return Err(Error::NoData(format!("{} does not exist", path.display())));
            }
            continue;
        };
        let (mut tx, mut rx) = (0u64, 0u64);
        for line in text.lines().skip(1) {
            let Some(queues) = line.split_ascii_whitespace().nth(4) else {
                return Err(Error::parse(&path, format!("too few columns in {line:?}")));
            };
            let (t, x) = queues
                .split_once(':')
                .ok_or_else(|| Error::parse(&path, format!("bad tx_queue:rx_queue {queues:?}")))?;
            tx += hex(&path, t)?;
            rx += hex(&path, x)?;
        }
        sums.push((ip, tx, rx));
    }
    out.family(
        "node_udp_queues",
        "Number of allocated memory in the kernel for UDP datagrams in bytes.",
        MetricType::Gauge,
    );
    for (ip, tx, rx) in sums {
        out.put(&[("ip", ip), ("queue", "tx")], tx as f64);
        out.put(&[("ip", ip), ("queue", "rx")], rx as f64);
    }
    Ok(())
}

/// `(column in /proc/net/stat/nf_conntrack, name)`: the positions procfs reads (the header's
/// names changed between kernels, the positions did not).
const CONNTRACK_STATS: [(usize, &str); 8] = [
    (2, "found"),
    (4, "invalid"),
    (5, "ignore"),
    (8, "insert"),
    (9, "insert_failed"),
    (10, "drop"),
    (11, "early_drop"),
    (16, "search_restart"),
];

/// `node_nf_conntrack_entries`, `node_nf_conntrack_entries_limit` and
/// `node_nf_conntrack_stat_*` (summed over CPUs); no data without the conntrack module.
pub(crate) fn conntrack(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let mut vals = [0.0f64; 2];
    for (i, file) in ["sys/net/netfilter/nf_conntrack_count", "sys/net/netfilter/nf_conntrack_max"].iter().enumerate() {
        let path = join(proc, file);
        let Some(text) = r.read_opt(&path)? else {
            return Err(Error::NoData(format!("{} does not exist (no nf_conntrack module)", path.display())));
        };
        vals[i] = num(&path, text.trim())?;
    }
    let path = join(proc, "net/stat/nf_conntrack");
    let Some(text) = r.read_opt(&path)? else {
        return Err(Error::NoData(format!("{} does not exist", path.display())));
    };
    let mut sums = [0u64; 8];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 17 {
            return Err(Error::parse(&path, format!("expected 17 columns in {line:?}")));
        }
        for (j, (col, _)) in CONNTRACK_STATS.iter().enumerate() {
            sums[j] += hex(&path, f[*col])?;
        }
    }
    out.gauge(
        "node_nf_conntrack_entries",
        "Number of currently allocated flow entries for connection tracking.",
        vals[0],
    );
    out.gauge("node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.", vals[1]);
    let mut name = String::with_capacity(48);
    for (j, (_, stat)) in CONNTRACK_STATS.iter().enumerate() {
        name.clear();
        name.push_str("node_nf_conntrack_stat_");
        name.push_str(stat);
        out.gauge(&name, "Conntrack statistic (summed over CPUs).", sums[j] as f64);
    }
    Ok(())
}
