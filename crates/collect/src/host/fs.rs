//! filesystem (statfs of each mount) and diskstats (/proc/diskstats).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use regex::Regex;
use telltale_model::MetricType;

use super::read::{join, num, Reader};
use super::Out;
use crate::error::{Error, Result};

type StatReply = std::io::Result<rustix::fs::StatFs>;
type Job = (PathBuf, Arc<AtomicBool>, mpsc::Sender<StatReply>);

/// statfs runs on a helper thread so a hung mount (a dead NFS server) costs at most
/// `mount_timeout` once; the mount point is then reported with `device_error 1` until the
/// call returns, as node_exporter's stuck-mount watcher does.
#[derive(Default)]
pub(crate) struct FsState {
    worker: Option<mpsc::Sender<Job>>,
    /// Mount point → set when its hung statfs finally returned.
    stuck: HashMap<String, Arc<AtomicBool>>,
}

impl FsState {
    fn statfs(&mut self, path: PathBuf, mount: &str, timeout: Duration) -> Option<StatReply> {
        if let Some(done) = self.stuck.get(mount) {
            if !done.load(Ordering::Acquire) {
                return None;
            }
            self.stuck.remove(mount);
        }
        let worker = self.worker.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("telltale-statfs".into())
                .spawn(move || {
                    for (path, done, reply) in rx {
                        let r = rustix::fs::statfs(&path).map_err(std::io::Error::from);
                        done.store(true, Ordering::Release);
                        let _ = reply.send(r);
                    }
                })
                .expect("spawn statfs thread");
            tx
        });
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        if worker.send((path, done.clone(), tx)).is_err() {
            self.worker = None;
            return None;
        }
        match rx.recv_timeout(timeout) {
            Ok(r) => Some(r),
            Err(_) => {
                tracing::warn!(
                    mountpoint = mount,
                    timeout_s = timeout.as_secs_f64(),
                    "mount point timed out, it is marked as stuck"
                );
                // The worker is blocked in the kernel: leave it, use a fresh one from now on.
                self.worker = None;
                self.stuck.insert(mount.to_string(), done);
                None
            }
        }
    }
}

/// node_exporter's unescaping of mount points in /proc/mounts (`\040` space, `\011` tab).
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t")
}

/// `node_filesystem_{size,free,avail}_bytes`, `files`, `files_free`, `readonly`,
/// `device_error` per device, mountpoint and fstype; mounts from /proc/1/mounts (falling
/// back to /proc/mounts), skipped by `mount_exclude` and `fs_exclude`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn filesystem(
    r: &mut Reader,
    proc: &Path,
    rootfs: &Path,
    mount_exclude: &Regex,
    fs_exclude: &Regex,
    timeout: Duration,
    state: &mut FsState,
    out: &mut Out<'_>,
) -> Result<()> {
    let mut path = join(proc, "1/mounts");
    let text = match r.read_opt(&path) {
        Ok(Some(t)) => t.to_string(),
        _ => {
            path = join(proc, "mounts");
            r.read(&path)?.to_string()
        }
    };
    struct Fs {
        device: String,
        mount: String,
        fstype: String,
        options: String,
        stat: Option<rustix::fs::StatFs>,
    }
    let mut seen: Vec<Fs> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 4 {
            return Err(Error::parse(&path, format!("malformed mount point information: {line:?}")));
        }
        let mount = unescape_mount(f[1]);
        if mount_exclude.is_match(&mount) || fs_exclude.is_match(f[2]) {
            continue;
        }
        let dup = seen.iter().any(|s| s.device == f[0] && s.mount == mount && s.fstype == f[2] && s.options == f[3]);
        if dup {
            continue;
        }
        let target = rootfs.join(mount.trim_start_matches('/'));
        let stat = match state.statfs(target, &mount, timeout) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                tracing::debug!(mountpoint = %mount, error = %e, "statfs failed");
                None
            }
            None => None,
        };
        seen.push(Fs { device: f[0].into(), mount, fstype: f[2].into(), options: f[3].into(), stat });
    }
    let families: [(&str, &str); 7] = [
        ("node_filesystem_device_error", "Whether an error occurred while getting statistics for the given device."),
        ("node_filesystem_size_bytes", "Filesystem size in bytes."),
        ("node_filesystem_free_bytes", "Filesystem free space in bytes."),
        ("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."),
        ("node_filesystem_files", "Filesystem total file nodes."),
        ("node_filesystem_files_free", "Filesystem total free file nodes."),
        ("node_filesystem_readonly", "Filesystem read-only status."),
    ];
    for (i, (name, help)) in families.iter().enumerate() {
        out.family(name, help, MetricType::Gauge);
        for fs in &seen {
            let labels =
                [("device", fs.device.as_str()), ("fstype", fs.fstype.as_str()), ("mountpoint", fs.mount.as_str())];
            let Some(s) = &fs.stat else {
                if i == 0 {
                    out.put(&labels, 1.0);
                }
                continue;
            };
            let bsize = s.f_bsize as f64;
            let ro = fs.options.split(',').any(|o| o == "ro");
            let v = match i {
                0 => 0.0,
                1 => s.f_blocks as f64 * bsize,
                2 => s.f_bfree as f64 * bsize,
                3 => s.f_bavail as f64 * bsize,
                4 => s.f_files as f64,
                5 => s.f_ffree as f64,
                _ => f64::from(u8::from(ro)),
            };
            out.put(&labels, v);
        }
    }
    Ok(())
}

/// (name, help, multiplier, counter) of each /proc/diskstats field after the device name.
const DISK_FIELDS: [(&str, &str, f64, bool); 17] = [
    ("node_disk_reads_completed_total", "The total number of reads completed successfully.", 1.0, true),
    ("node_disk_reads_merged_total", "The total number of reads merged.", 1.0, true),
    ("node_disk_read_bytes_total", "The total number of bytes read successfully.", 512.0, true),
    ("node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", 0.001, true),
    ("node_disk_writes_completed_total", "The total number of writes completed successfully.", 1.0, true),
    ("node_disk_writes_merged_total", "The number of writes merged.", 1.0, true),
    ("node_disk_written_bytes_total", "The total number of bytes written successfully.", 512.0, true),
    ("node_disk_write_time_seconds_total", "This is the total number of seconds spent by all writes.", 0.001, true),
    ("node_disk_io_now", "The number of I/Os currently in progress.", 1.0, false),
    ("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", 0.001, true),
    ("node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", 0.001, true),
    ("node_disk_discards_completed_total", "The total number of discards completed successfully.", 1.0, true),
    ("node_disk_discards_merged_total", "The total number of discards merged.", 1.0, true),
    ("node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.", 1.0, true),
    ("node_disk_discard_time_seconds_total", "This is the total number of seconds spent by all discards.", 0.001, true),
    ("node_disk_flush_requests_total", "The total number of flush requests completed successfully", 1.0, true),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        0.001,
        true,
    ),
];

/// `node_disk_*` per device from /proc/diskstats (devices matching `exclude` skipped), and
/// `node_disk_info` with udev's properties where /run/udev/data has them.
pub(crate) fn diskstats(r: &mut Reader, proc: &Path, rootfs: &Path, exclude: &Regex, out: &mut Out<'_>) -> Result<()> {
    let path = join(proc, "diskstats");
    let text = r.read(&path)?.to_string();
    let mut disks: Vec<(&str, &str, &str, Vec<f64>)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 14 {
            if f.is_empty() {
                continue;
            }
            return Err(Error::parse(&path, format!("too few fields in {line:?}")));
        }
        if exclude.is_match(f[2]) {
            continue;
        }
        let mut v = Vec::with_capacity(17);
        for x in &f[3..f.len().min(20)] {
            v.push(num(&path, x)?);
        }
        disks.push((f[0], f[1], f[2], v));
    }
    for (i, (name, help, mult, counter)) in DISK_FIELDS.iter().enumerate() {
        if !disks.iter().any(|d| d.3.len() > i) {
            continue;
        }
        out.family(name, help, if *counter { MetricType::Counter } else { MetricType::Gauge });
        for (_, _, dev, v) in &disks {
            if let Some(x) = v.get(i) {
                out.put(&[("device", dev)], x * mult);
            }
        }
    }
    out.family("node_disk_info", "Info of /sys/block/<block_device>.", MetricType::Gauge);
    let udev = rootfs.join("run/udev/data");
    for (major, minor, dev, _) in &disks {
        let mut props: [(&str, String); 5] = [
            ("path", String::new()),
            ("wwn", String::new()),
            ("model", String::new()),
            ("serial", String::new()),
            ("revision", String::new()),
        ];
        if let Ok(Some(text)) = r.read_opt(&udev.join(format!("b{major}:{minor}"))) {
            for line in text.lines() {
                let Some((k, v)) = line.strip_prefix("E:").and_then(|l| l.split_once('=')) else { continue };
                let i = match k {
                    "ID_PATH" => 0,
                    "ID_WWN" => 1,
                    "ID_MODEL" => 2,
                    "ID_SERIAL_SHORT" => 3,
                    "ID_REVISION" => 4,
                    _ => continue,
                };
                props[i].1 = v.to_string();
            }
        }
        let mut labels: Vec<(&str, &str)> = vec![("device", dev), ("major", major), ("minor", minor)];
        labels.extend(props.iter().map(|(k, v)| (*k, v.as_str())));
        out.put(&labels, 1.0);
    }
    Ok(())
}
