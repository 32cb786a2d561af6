//! cpu, stat, loadavg, meminfo, vmstat, filefd and pressure: one /proc file each.

use std::path::Path;

use regex::Regex;
use telltale_model::MetricType;

use super::read::{join, num, Reader};
use super::Out;
use crate::error::{Error, Result};

/// The kernel's USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture.
const USER_HZ: f64 = 100.0;
/// node_exporter resets a CPU's counters when idle jumps back this far (a CPU hotplug).
const JUMP_BACK_SECONDS: f64 = 3.0;
const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

/// Last values per CPU: node_exporter never lets a counter go backwards (iowait can).
#[derive(Default)]
pub(crate) struct CpuState {
    cpus: Vec<[f64; 10]>,
}

/// `node_cpu_seconds_total{cpu,mode}`, `node_cpu_guest_seconds_total{cpu,mode}` from /proc/stat.
pub(crate) fn cpu(r: &mut Reader, proc: &Path, state: &mut CpuState, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "stat");
    let text = r.read(&path)?;
    let mut seen = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else { continue };
        let Some((id, fields)) = rest.split_once(' ') else { continue };
        if id.is_empty() {
            continue; // the "cpu" total line
        }
        let id: usize = id.parse().map_err(|_| Error::parse(&path, format!("bad cpu line {line:?}")))?;
        let mut v = [0.0f64; 10];
        for (i, f) in fields.split_ascii_whitespace().take(10).enumerate() {
            v[i] = num(&path, f)? / USER_HZ;
        }
        if state.cpus.len() <= id {
            state.cpus.resize(id + 1, [0.0; 10]);
        }
        let old = &mut state.cpus[id];
        if old[3] - v[3] >= JUMP_BACK_SECONDS {
            *old = [0.0; 10];
        }
        for i in 0..10 {
            if v[i] >= old[i] {
                old[i] = v[i];
            }
        }
        seen = seen.max(id + 1);
    }
    if seen == 0 {
        return Err(Error::parse(&path, "no per-cpu lines"));
    }
    out.family("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", MetricType::Counter);
    let mut id = String::new();
    for (n, v) in state.cpus.iter().enumerate().take(seen) {
        id.clear();
        id.push_str(&n.to_string());
        for (m, mode) in MODES.iter().enumerate() {
            out.put(&[("cpu", &id), ("mode", mode)], v[m]);
        }
    }
    out.family(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
        MetricType::Counter,
    );
    for (n, v) in state.cpus.iter().enumerate().take(seen) {
        id.clear();
        id.push_str(&n.to_string());
        out.put(&[("cpu", &id), ("mode", "user")], v[8]);
        out.put(&[("cpu", &id), ("mode", "nice")], v[9]);
    }
    Ok(())
}

/// `node_intr_total`, `node_context_switches_total`, `node_forks_total`,
/// `node_boot_time_seconds`, `node_procs_running`, `node_procs_blocked` from /proc/stat.
pub(crate) fn stat(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "stat");
    let text = r.read(&path)?;
    let mut vals = [None::<f64>; 6];
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(key), Some(first)) = (f.next(), f.next()) else { continue };
        let i = match key {
            "intr" => 0,
            "ctxt" => 1,
            "processes" => 2,
            "btime" => 3,
            "procs_running" => 4,
            "procs_blocked" => 5,
            _ => continue,
        };
        vals[i] = Some(num(&path, first)?);
    }
    let names: [(&str, &str, MetricType); 6] = [
        ("node_intr_total", "Total number of interrupts serviced.", MetricType::Counter),
        ("node_context_switches_total", "Total number of context switches.", MetricType::Counter),
        ("node_forks_total", "Total number of forks.", MetricType::Counter),
        ("node_boot_time_seconds", "Node boot time, in unixtime.", MetricType::Gauge),
        ("node_procs_running", "Number of processes in runnable state.", MetricType::Gauge),
        ("node_procs_blocked", "Number of processes blocked waiting for I/O to complete.", MetricType::Gauge),
    ];
    for (v, (name, help, kind)) in vals.iter().zip(names) {
        if let Some(v) = v {
            out.family(name, help, kind);
            out.put(&[], *v);
        }
    }
    Ok(())
}

/// `node_load1`, `node_load5`, `node_load15` from /proc/loadavg.
pub(crate) fn loadavg(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "loadavg");
    let text = r.read(&path)?;
    let mut f = text.split_ascii_whitespace();
    let mut v = [0.0; 3];
    for x in &mut v {
        *x = num(&path, f.next().ok_or_else(|| Error::parse(&path, "fewer than 3 fields"))?)?;
    }
    out.gauge("node_load1", "1m load average.", v[0]);
    out.gauge("node_load5", "5m load average.", v[1]);
    out.gauge("node_load15", "15m load average.", v[2]);
    Ok(())
}

/// `node_memory_<Field>_bytes` (or without `_bytes` for counts) for every /proc/meminfo line;
/// `Active(anon)` becomes `Active_anon`.
pub(crate) fn meminfo(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "meminfo");
    let text = r.read(&path)?;
    let mut name = String::with_capacity(64);
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(key) = f.next() else { continue };
        let value = f.next().ok_or_else(|| Error::parse(&path, format!("no value in {line:?}")))?;
        let mut v = num(&path, value)?;
        let unit = f.next();
        if f.next().is_some() {
            return Err(Error::parse(&path, format!("invalid line {line:?}")));
        }
        let key = key.strip_suffix(':').unwrap_or(key);
        name.clear();
        name.push_str("node_memory_");
        for c in key.chars() {
            match c {
                '(' => name.push('_'),
                ')' => {}
                c => name.push(c),
            }
        }
        if unit.is_some() {
            v *= 1024.0;
            name.push_str("_bytes");
        }
        out.gauge(&name, "Memory information field from /proc/meminfo.", v);
    }
    Ok(())
}

/// `node_vmstat_<field>` for the /proc/vmstat fields matching `fields`.
pub(crate) fn vmstat(r: &mut Reader, proc: &Path, fields: &Regex, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "vmstat");
    let text = r.read(&path)?;
    let mut name = String::with_capacity(64);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else { continue };
        if !fields.is_match(key) {
            continue;
        }
        let v = num(&path, value.trim())?;
        name.clear();
        name.push_str("node_vmstat_");
        name.push_str(key);
        out.untyped(&name, "/proc/vmstat information field.", v);
    }
    Ok(())
}

/// `node_filefd_allocated`, `node_filefd_maximum` from /proc/sys/fs/file-nr.
pub(crate) fn filefd(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "sys/fs/file-nr");
    let text = r.read(&path)?;
    let f: Vec<&str> = text.split_ascii_whitespace().collect();
    if f.len() != 3 {
        return Err(Error::parse(&path, format!("expected 3 fields, got {:?}", text.trim())));
    }
    let (allocated, maximum) = (num(&path, f[0])?, num(&path, f[2])?);
    out.gauge("node_filefd_allocated", "File descriptor statistics: allocated.", allocated);
    out.gauge("node_filefd_maximum", "File descriptor statistics: maximum.", maximum);
    Ok(())
}

/// `node_pressure_{cpu,io,memory}_{waiting,stalled}_seconds_total` from /proc/pressure (PSI),
/// as node_exporter: cpu "some" only; no data when the kernel has no PSI.
pub(crate) fn pressure(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    for resource in ["cpu", "io", "memory"] {
        let path = join(proc, &format!("pressure/{resource}"));
        let Some(text) = r.read_opt(&path)? else {
            return Err(Error::NoData(format!("{} does not exist (kernel without PSI)", path.display())));
        };
        let (mut some, mut full) = (None, None);
        for line in text.lines() {
            let mut f = line.split_ascii_whitespace();
            let kind = f.next();
            let total = f.find_map(|kv| kv.strip_prefix("total="));
            let Some(total) = total else { continue };
            let secs = num(&path, total)? / 1e6;
            match kind {
                Some("some") => some = Some(secs),
                Some("full") => full = Some(secs),
                _ => {}
            }
        }
        let some = some.ok_or_else(|| Error::parse(&path, "no \"some\" line"))?;
        match resource {
            "cpu" => out.counter(
                "node_pressure_cpu_waiting_seconds_total",
                "Total time in seconds that processes have waited for CPU time.",
                some,
            ),
            _ => {
                let w = format!("node_pressure_{resource}_waiting_seconds_total");
                out.counter(&w, "Total time in seconds that processes have waited for this resource.", some);
                let s = format!("node_pressure_{resource}_stalled_seconds_total");
                let full = full.ok_or_else(|| Error::parse(&path, "no \"full\" line"))?;
                out.counter(&s, "Total time in seconds no process could make progress on this resource.", full);
            }
        }
    }
    Ok(())
}

/// `node_schedstat_{running,waiting}_seconds_total{cpu}` and `node_schedstat_timeslices_total{cpu}`
/// from /proc/schedstat (fields 7-9 of each `cpuN` line; no data on kernels without it).
pub(crate) fn schedstat(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "schedstat");
    let Some(text) = r.read_opt(&path)? else {
        return Err(Error::NoData(format!("{} does not exist", path.display())));
    };
    let mut rows: Vec<(String, [f64; 3])> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(cpu) = f.next().and_then(|c| c.strip_prefix("cpu")) else { continue };
        let v: Vec<&str> = f.collect();
        if v.len() < 9 {
            return Err(Error::parse(&path, format!("expected 9 fields in {line:?}")));
        }
        rows.push((cpu.to_string(), [num(&path, v[6])? / 1e9, num(&path, v[7])? / 1e9, num(&path, v[8])?]));
    }
    let families = [
        ("node_schedstat_running_seconds_total", "Number of seconds CPU spent running a process."),
        ("node_schedstat_waiting_seconds_total", "Number of seconds spent by processing waiting for this CPU."),
        ("node_schedstat_timeslices_total", "Number of timeslices executed by CPU."),
    ];
    for (i, (name, help)) in families.iter().enumerate() {
        out.family(name, help, MetricType::Counter);
        for (cpu, v) in &rows {
            out.put(&[("cpu", cpu)], v[i]);
        }
    }
    Ok(())
}
