//! time, timex, uname, os and entropy: facts about the host rather than counters.

use std::path::Path;

use telltale_model::{MetricType, Timestamp};

use super::ffi;
use super::read::{join, num, Reader};
use super::Out;
use crate::error::{Error, Result};

/// `node_time_seconds` (the collection time, so uptime is `node_time_seconds -
/// node_boot_time_seconds`), `node_time_zone_offset_seconds{time_zone}`, and the clock
/// sources of /sys/devices/system/clocksource (`node_time_clocksource_{available,current}_info`).
pub(crate) fn time(r: &mut Reader, sys: &Path, now: Timestamp, out: &mut Out<'_>) -> Result<()> {
    out.gauge("node_time_seconds", "System time in seconds since epoch (1970).", now as f64 / 1000.0);
    if let Some((zone, offset)) = ffi::local_zone(now.div_euclid(1000)) {
        out.family("node_time_zone_offset_seconds", "System time zone offset in seconds.", MetricType::Gauge);
        out.put(&[("time_zone", &zone)], offset as f64);
    }
    let dir = join(sys, "devices/system/clocksource");
    let mut devices: Vec<(String, Vec<String>, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix("clocksource") else { continue };
            let available = r.read_opt(&e.path().join("available_clocksource"))?.unwrap_or_default();
            let available: Vec<String> = available.split_ascii_whitespace().map(str::to_string).collect();
            let current = r.read_opt(&e.path().join("current_clocksource"))?.unwrap_or_default().trim().to_string();
            devices.push((id.to_string(), available, current));
        }
    }
    devices.sort();
    if !devices.is_empty() {
        out.family(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            MetricType::Gauge,
        );
        for (id, available, _) in &devices {
            for a in available {
                out.put(&[("device", id), ("clocksource", a)], 1.0);
            }
        }
        out.family(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            MetricType::Gauge,
        );
        for (id, _, current) in &devices {
            out.put(&[("device", id), ("clocksource", current)], 1.0);
        }
    }
    Ok(())
}

/// adjtimex's clock state for `TIME_ERROR` (not synchronised).
const TIME_ERROR: i32 = 5;
/// `status` bit: `offset` and `jitter` are in nanoseconds, not microseconds.
const STA_NANO: i32 = 0x2000;
/// adjtimex's 16.16 fixed-point parts per million, as a ratio.
const PPM16FRAC: f64 = 1_000_000.0 * 65536.0;

/// `node_timex_*`: the kernel's clock discipline from adjtimex(2), as node_exporter's timex
/// collector (for clock-skew alerts: `node_timex_offset_seconds`, `node_timex_sync_status`,
/// `node_timex_maxerror_seconds`).
pub(crate) fn timex(out: &mut Out<'_>) -> Result<()> {
    let t = ffi::adjtimex().map_err(|e| Error::io("call adjtimex", "adjtimex(2)", e))?;
    let divisor = if t.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let gauges: [(&str, &str, f64); 13] = [
        (
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if t.state == TIME_ERROR { 0.0 } else { 1.0 },
        ),
        (
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            t.offset as f64 / divisor,
        ),
        ("node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.", 1.0 + t.freq as f64 / PPM16FRAC),
        ("node_timex_maxerror_seconds", "Maximum error in seconds.", t.maxerror as f64 / 1e6),
        ("node_timex_estimated_error_seconds", "Estimated error in seconds.", t.esterror as f64 / 1e6),
        ("node_timex_status", "Value of the status array bits.", f64::from(t.status)),
        ("node_timex_loop_time_constant", "Phase-locked loop time constant.", t.constant as f64),
        ("node_timex_tick_seconds", "Seconds between clock ticks.", t.tick as f64 / 1e6),
        ("node_timex_pps_frequency_hertz", "Pulse per second frequency.", t.ppsfreq as f64 / PPM16FRAC),
        ("node_timex_pps_jitter_seconds", "Pulse per second jitter.", t.jitter as f64 / divisor),
        ("node_timex_pps_shift_seconds", "Pulse per second interval duration.", f64::from(t.shift)),
        (
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            t.stabil as f64 / PPM16FRAC,
        ),
        ("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", f64::from(t.tai)),
    ];
    for (name, help, v) in gauges {
        out.gauge(name, help, v);
    }
    let counters: [(&str, &str, libc::c_long); 4] = [
        ("node_timex_pps_jitter_total", "Pulse per second count of jitter limit exceeded events.", t.jitcnt),
        ("node_timex_pps_calibration_total", "Pulse per second count of calibration intervals.", t.calcnt),
        ("node_timex_pps_error_total", "Pulse per second count of calibration errors.", t.errcnt),
        (
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            t.stbcnt,
        ),
    ];
    for (name, help, v) in counters {
        out.counter(name, help, v as f64);
    }
    Ok(())
}

/// `node_entropy_available_bits`, `node_entropy_pool_size_bits` from /proc/sys/kernel/random.
pub(crate) fn entropy(r: &mut Reader, proc: &Path, out: &mut Out<'_>) -> Result<()> {
    for (file, name, help) in [
        ("sys/kernel/random/entropy_avail", "node_entropy_available_bits", "Bits of available entropy."),
        ("sys/kernel/random/poolsize", "node_entropy_pool_size_bits", "Bits of entropy pool."),
    ] {
        let path = join(proc, file);
        let v = num(&path, r.read(&path)?.trim())?;
        out.gauge(name, help, v);
    }
    Ok(())
}

/// `node_selinux_enabled`, and where SELinux is on `node_selinux_config_mode` (/etc/selinux/config:
/// 1 enforcing, 0 permissive, -1 disabled) and `node_selinux_current_mode` (selinuxfs's `enforce`).
pub(crate) fn selinux(r: &mut Reader, sys: &Path, rootfs: &Path, out: &mut Out<'_>) -> Result<()> {
    let Some(current) = r.read_opt(&join(sys, "fs/selinux/enforce"))?.map(|t| t.trim() == "1") else {
        out.gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", 0.0);
        return Ok(());
    };
    out.gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", 1.0);
    let config = r.read_opt(&rootfs.join("etc/selinux/config"))?.unwrap_or("");
    let mode = config.lines().find_map(|l| l.trim().strip_prefix("SELINUX=")).map(|m| unquote(m.trim()));
    let configured = match mode.as_deref() {
        Some("enforcing") => 1.0,
        Some("permissive") => 0.0,
        _ => -1.0,
    };
    out.gauge("node_selinux_config_mode", "Configured SELinux enforcement mode", configured);
    out.gauge("node_selinux_current_mode", "Current SELinux enforcement mode", if current { 1.0 } else { 0.0 });
    Ok(())
}

/// `node_uname_info{sysname,release,version,machine,nodename,domainname} 1`.
pub(crate) fn uname(out: &mut Out<'_>) -> Result<()> {
    let u = rustix::system::uname();
    let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
    let (sysname, release, version, machine, nodename, domainname) =
        (s(u.sysname()), s(u.release()), s(u.version()), s(u.machine()), s(u.nodename()), s(u.domainname()));
    out.family(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        MetricType::Gauge,
    );
    out.put(
        &[
            ("sysname", &sysname),
            ("release", &release),
            ("version", &version),
            ("machine", &machine),
            ("nodename", &nodename),
            ("domainname", &domainname),
        ],
        1.0,
    );
    Ok(())
}

const OS_KEYS: [(&str, &str); 12] = [
    ("BUILD_ID", "build_id"),
    ("ID", "id"),
    ("ID_LIKE", "id_like"),
    ("IMAGE_ID", "image_id"),
    ("IMAGE_VERSION", "image_version"),
    ("NAME", "name"),
    ("PRETTY_NAME", "pretty_name"),
    ("VARIANT", "variant"),
    ("VARIANT_ID", "variant_id"),
    ("VERSION", "version"),
    ("VERSION_CODENAME", "version_codename"),
    ("VERSION_ID", "version_id"),
];

/// `node_os_info{...} 1` and `node_os_version{id,id_like,name}` from /etc/os-release
/// (or /usr/lib/os-release).
pub(crate) fn os(r: &mut Reader, rootfs: &Path, out: &mut Out<'_>) -> Result<()> {
    let mut text = None;
    for p in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(t) = r.read_opt(&rootfs.join(p))? {
            text = Some(t.to_string());
            break;
        }
    }
    let text = text.ok_or_else(|| Error::NoData("no /etc/os-release or /usr/lib/os-release".into()))?;
    let mut vals: [String; 12] = Default::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        if let Some(i) = OS_KEYS.iter().position(|(key, _)| *key == k.trim()) {
            vals[i] = unquote(v.trim());
        }
    }
    out.family(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        MetricType::Gauge,
    );
    let labels: Vec<(&str, &str)> = OS_KEYS.iter().zip(&vals).map(|((_, l), v)| (*l, v.as_str())).collect();
    out.put(&labels, 1.0);
    // node_exporter: the leading `major[.minor]` of VERSION_ID as a number.
    let vid = &vals[11];
    let end = vid.find(|c: char| !c.is_ascii_digit()).unwrap_or(vid.len());
    let mut num_end = end;
    if vid[end..].starts_with('.') {
        num_end = end + 1 + vid[end + 1..].find(|c: char| !c.is_ascii_digit()).unwrap_or(vid.len() - end - 1);
    }
    let version = vid[..num_end].trim_end_matches('.').parse::<f64>().unwrap_or(0.0);
    out.family("node_os_version", "Metric containing the major.minor part of the OS version.", MetricType::Gauge);
    out.put(&[("id", &vals[1]), ("id_like", &vals[2]), ("name", &vals[5])], version);
    Ok(())
}

/// Shell-style quoting as os-release(5) allows: `"..."` with backslash escapes, or `'...'`.
fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else { return v.to_string() };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn os_release_quoting() {
        assert_eq!(unquote("\"Debian GNU/Linux 12 (bookworm)\""), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(unquote("'a b'"), "a b");
        assert_eq!(unquote("\"say \\\"hi\\\"\""), "say \"hi\"");
        assert_eq!(unquote("debian"), "debian");
    }
}
