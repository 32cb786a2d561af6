//! cpufreq: each CPU's frequency and scaling limits from
//! /sys/devices/system/cpu/cpuN/cpufreq (kHz in the kernel, Hz here), as node_exporter's
//! cpufreq collector ("CPU frequency scaling" panels). A file the driver does not offer is
//! left out for that CPU; CPUs without cpufreq (most VMs) give nothing.

use std::path::Path;

use telltale_model::MetricType;

use super::read::{join, num, Reader};
use super::Out;
use crate::error::{Error, Result};

/// `(file, family)`, in node_exporter's order.
const FILES: [(&str, &str); 6] = [
    ("cpuinfo_cur_freq", "node_cpu_frequency_hertz"),
    ("cpuinfo_max_freq", "node_cpu_frequency_max_hertz"),
    ("cpuinfo_min_freq", "node_cpu_frequency_min_hertz"),
    ("scaling_cur_freq", "node_cpu_scaling_frequency_hertz"),
    ("scaling_max_freq", "node_cpu_scaling_frequency_max_hertz"),
    ("scaling_min_freq", "node_cpu_scaling_frequency_min_hertz"),
];

pub(crate) fn cpufreq(r: &mut Reader, sys: &Path, out: &mut Out<'_>) -> Result<()> {
    let dir = join(sys, "devices/system/cpu");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
    let mut cpus: Vec<(u64, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().strip_prefix("cpu")?.parse::<u64>().ok()?;
            Some((n, e.path().join("cpufreq")))
        })
        .filter(|(_, p)| p.is_dir())
        .collect();
    cpus.sort();
    let mut values: Vec<(String, [Option<f64>; 6])> = Vec::with_capacity(cpus.len());
    for (n, path) in cpus {
        let mut v = [None; 6];
        for (i, (file, _)) in FILES.iter().enumerate() {
            let p = path.join(file);
            // cpuinfo_cur_freq is readable by root only; a missing or unreadable file is left out.
            if let Ok(Some(text)) = r.read_opt(&p) {
                v[i] = Some(num(&p, text.trim())? * 1000.0);
            }
        }
        values.push((n.to_string(), v));
    }
    for (i, (_, family)) in FILES.iter().enumerate() {
        if values.iter().all(|(_, v)| v[i].is_none()) {
            continue;
        }
        out.family(family, "CPU frequency in hertz from /sys/devices/system/cpu/cpuN/cpufreq.", MetricType::Gauge);
        for (cpu, v) in &values {
            if let Some(x) = v[i] {
                out.put(&[("cpu", cpu)], x);
            }
        }
    }
    Ok(())
}
