//! thermal_zone: temperatures of /sys/class/thermal/thermal_zone* and the states of its
//! cooling devices, as node_exporter's thermal_zone collector (for temperature panels and
//! "too hot" alerts on hosts with ACPI thermal zones).

use std::path::Path;

use telltale_model::MetricType;

use super::read::{join, num, Reader};
use super::Out;
use crate::error::{Error, Result};

/// Entries of `dir` named `prefix<N>`, as `(N, path)`, sorted by N.
fn numbered(dir: &Path, prefix: &str) -> Result<Vec<(String, std::path::PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut out: Vec<(String, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(prefix)?.to_string();
            n.parse::<u64>().ok().map(|_| (n, e.path()))
        })
        .collect();
    out.sort_by_key(|(n, _)| n.parse::<u64>().unwrap_or(u64::MAX));
    Ok(out)
}

/// `node_thermal_zone_temp{zone,type}` (°C), `node_cooling_device_{cur,max}_state{name,type}`.
pub(crate) fn thermal_zone(r: &mut Reader, sys: &Path, out: &mut Out<'_>) -> Result<()> {
    let dir = join(sys, "class/thermal");
    let mut zones = Vec::new();
    for (n, path) in numbered(&dir, "thermal_zone")? {
        let kind = r.read(&path.join("type"))?.trim().to_string();
        let temp_path = path.join("temp");
        let temp = num(&temp_path, r.read(&temp_path)?.trim())? / 1000.0;
        zones.push((n, kind, temp));
    }
    let mut devices = Vec::new();
    for (n, path) in numbered(&dir, "cooling_device")? {
        let kind = r.read(&path.join("type"))?.trim().to_string();
        let mut states = [0.0; 2];
        for (i, f) in ["cur_state", "max_state"].iter().enumerate() {
            let p = path.join(f);
            states[i] = num(&p, r.read(&p)?.trim())?;
        }
        devices.push((n, kind, states));
    }
    if !zones.is_empty() {
        out.family("node_thermal_zone_temp", "Zone temperature in Celsius", MetricType::Gauge);
        for (zone, kind, t) in &zones {
            out.put(&[("zone", zone), ("type", kind)], *t);
        }
    }
    if !devices.is_empty() {
        for (i, (name, help)) in [
            ("node_cooling_device_cur_state", "Current throttle state of the cooling device"),
            ("node_cooling_device_max_state", "Maximum throttle state of the cooling device"),
        ]
        .iter()
        .enumerate()
        {
            out.family(name, help, MetricType::Gauge);
            for (n, kind, states) in &devices {
                out.put(&[("name", n), ("type", kind)], states[i]);
            }
        }
    }
    Ok(())
}
