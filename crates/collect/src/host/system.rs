//! time, uname and os: facts about the host rather than counters.

use std::path::Path;

use telltale_model::{MetricType, Timestamp};

use super::read::Reader;
use super::Out;
use crate::error::{Error, Result};

/// `node_time_seconds`: the collection time, so uptime is `node_time_seconds - node_boot_time_seconds`.
pub(crate) fn time(now: Timestamp, out: &mut Out<'_>) -> Result<()> {
    out.gauge("node_time_seconds", "System time in seconds since epoch (1970).", now as f64 / 1000.0);
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
