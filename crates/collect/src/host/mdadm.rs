//! mdadm: software RAID state from /proc/mdstat, parsed as node_exporter's procfs does
//! (`node_md_state`, `node_md_disks{state}`, `node_md_disks_required`, `node_md_blocks`,
//! `node_md_blocks_synced`), for the RAID alerts (`NodeRAIDDegraded`: `node_md_disks_required
//! - node_md_disks{state="active"} > 0`, `NodeRAIDDiskFailure`: `node_md_disks{state="failed"} > 0`).

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use telltale_model::MetricType;

use super::read::{join, Reader};
use super::Out;
use crate::error::{Error, Result};

/// One array.
#[derive(Debug, Clone, PartialEq)]
struct Md {
    name: String,
    state: String,
    active: i64,
    total: i64,
    failed: i64,
    spare: i64,
    blocks: i64,
    synced: i64,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a valid regex"))
}

/// `(active, total, size)` from the device line and the status line after it.
fn status(device: &str, line: &str) -> std::result::Result<(i64, i64, i64), String> {
    static STATUS: OnceLock<Regex> = OnceLock::new();
    let size: i64 = line
        .split_ascii_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("unexpected status line {line:?}"))?;
    if device.contains("raid0") || device.contains("linear") {
        let disks = device.matches('[').count() as i64;
        return Ok((disks, disks, size));
    }
    if device.contains("inactive") {
        return Ok((0, 0, size));
    }
    let c = re(&STATUS, r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]")
        .captures(line)
        .ok_or_else(|| format!("no [total/active] [UU_] in status line {line:?}"))?;
    let n = |i: usize| c[i].parse::<i64>().map_err(|_| format!("bad number in {line:?}"));
    Ok((n(3)?, n(2)?, size))
}

fn parse(text: &str) -> std::result::Result<Vec<Md>, String> {
    static BLOCKS: OnceLock<Regex> = OnceLock::new();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 3 {
            return Err(format!("not enough fields in md line {line:?}"));
        }
        let (name, mut state) = (fields[0].to_string(), fields[2].to_string());
        if lines.len() <= i + 3 {
            return Err(format!("too few lines for md device {name}"));
        }
        let failed = line.matches("(F)").count() as i64;
        let spare = line.matches("(S)").count() as i64;
        let (active, total, blocks) = status(line, lines[i + 1])?;
        let sync = if lines[i + 2].contains("bitmap") { lines[i + 3] } else { lines[i + 2] };
        let mut synced = blocks;
        let (recovering, resyncing, checking) =
            (sync.contains("recovery"), sync.contains("resync"), sync.contains("check"));
        if recovering || resyncing || checking {
            state = if recovering {
                "recovering"
            } else if checking {
                "checking"
            } else {
                "resyncing"
            }
            .to_string();
            if sync.contains("PENDING") || sync.contains("DELAYED") {
                synced = 0;
            } else {
                let c = re(&BLOCKS, r"\((\d+)/\d+\)")
                    .captures(sync)
                    .ok_or_else(|| format!("unexpected recovery line {sync:?}"))?;
                synced = c[1].parse().map_err(|_| format!("bad number in {sync:?}"))?;
            }
        }
        out.push(Md { name, state, active, total, failed, spare, blocks, synced });
    }
    Ok(out)
}

pub(crate) fn mdadm(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "mdstat");
    let Some(text) = r.read_opt(&path)? else {
        return Err(Error::NoData(format!("{} does not exist", path.display())));
    };
    let mds = parse(text).map_err(|why| Error::parse(&path, why))?;
    out.family("node_md_state", "Indicates the state of md-device.", MetricType::Gauge);
    for m in &mds {
        for (label, state) in [
            ("active", "active"),
            ("inactive", "inactive"),
            ("recovering", "recovering"),
            ("resync", "resyncing"),
            ("check", "checking"),
        ] {
            out.put(&[("device", &m.name), ("state", label)], if m.state == state { 1.0 } else { 0.0 });
        }
    }
    out.family("node_md_disks_required", "Total number of disks of device.", MetricType::Gauge);
    for m in &mds {
        out.put(&[("device", &m.name)], m.total as f64);
    }
    out.family("node_md_disks", "Number of active/failed/spare disks of device.", MetricType::Gauge);
    for m in &mds {
        out.put(&[("device", &m.name), ("state", "active")], m.active as f64);
        out.put(&[("device", &m.name), ("state", "failed")], m.failed as f64);
        out.put(&[("device", &m.name), ("state", "spare")], m.spare as f64);
    }
    out.family("node_md_blocks", "Total number of blocks on device.", MetricType::Gauge);
    for m in &mds {
        out.put(&[("device", &m.name)], m.blocks as f64);
    }
    out.family("node_md_blocks_synced", "Number of blocks synced on device.", MetricType::Gauge);
    for m in &mds {
        out.put(&[("device", &m.name)], m.synced as f64);
    }
    Ok(())
}
