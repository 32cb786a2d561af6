//! The built-in host collectors: node_exporter's default Linux collectors that matter for a
//! host overview, reading /proc and /sys directly, plus the top processes.
//!
//! Names, labels, units and filters are node_exporter 1.5's with its upstream default flags
//! (`docs/collect.md` lists each collector and what differs). Each round, every enabled
//! collector runs in turn; one that fails logs once (then at debug level until it recovers),
//! reports `node_scrape_collector_success{collector=..} 0`, and the others carry on. Every
//! series gets the `job` and `instance` labels of [`Options`].
//!
//! Files are read into one buffer that lives as long as the [`Host`], so a round allocates
//! little beyond the label sets of the batch it returns.

mod cpufreq;
// adjtimex(2) and localtime_r(3): the crate's only unsafe code, each block with its SAFETY.
#[allow(unsafe_code)]
mod ffi;
mod fs;
mod mdadm;
mod net;
mod netclass;
mod out;
mod process;
mod read;
mod stat;
mod system;
mod textfile;
mod thermal;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::{Deserialize, Serialize};
use telltale_model::{units, MetricType, Timestamp, WriteBatch};

use crate::error::{Error, Result};
pub(crate) use out::Out;
pub(crate) use read::Reader;

/// Every collector, by its node_exporter name (`processes` is Telltale's own).
pub const COLLECTORS: &[&str] = &[
    "arp",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "entropy",
    "filefd",
    "filesystem",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "os",
    "pressure",
    "processes",
    "schedstat",
    "selinux",
    "sockstat",
    "softnet",
    "stat",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "udp_queues",
    "uname",
    "vmstat",
];

/// `collectors:`: which host collectors run, how often, and their filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Run the host collectors at all (`telltale serve` and `telltale agent`).
    pub enabled: bool,
    /// How often to collect.
    #[serde(with = "units::duration")]
    pub interval: Duration,
    /// The `job` label of every host series.
    pub job: String,
    /// The `instance` label; empty means the host name.
    pub instance: String,
    /// Collectors to turn off, by name (see the list in `docs/collect.md`).
    pub disabled: Vec<String>,
    /// Where procfs is mounted (node_exporter's `--path.procfs`).
    pub proc_path: PathBuf,
    /// Where sysfs is mounted (`--path.sysfs`).
    pub sys_path: PathBuf,
    /// Where the host's root filesystem is (`--path.rootfs`), for mount points and os-release.
    pub rootfs_path: PathBuf,
    /// The filesystem collector's filters.
    pub filesystem: FilesystemOptions,
    /// The diskstats collector's filter.
    pub diskstats: DiskstatsOptions,
    /// The netdev collector's filters.
    pub netdev: NetdevOptions,
    /// The netclass collector's device filter and speed handling.
    pub netclass: NetclassOptions,
    /// Which /proc/net/{netstat,snmp,snmp6} fields the netstat collector reports.
    pub netstat: FieldsOptions,
    /// Which /proc/vmstat fields the vmstat collector reports.
    pub vmstat: FieldsOptions,
    /// The top processes collector.
    pub processes: ProcessesOptions,
    /// The textfile collector's directory.
    pub textfile: TextfileOptions,
}

/// `collectors.textfile:`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileOptions {
    /// Where `*.prom` files are read from (node_exporter's `--collector.textfile.directory`;
    /// Debian's package uses /var/lib/prometheus/node-exporter). Empty: none, and only
    /// `node_textfile_scrape_error 0` is reported.
    pub directory: PathBuf,
}

/// `collectors.filesystem:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemOptions {
    /// Mount points to skip (a regex matched against the whole mount point).
    pub mount_points_exclude: String,
    /// Filesystem types to skip: pseudo filesystems by default.
    pub fs_types_exclude: String,
    /// How long a statfs may take before the mount point is reported with
    /// `node_filesystem_device_error 1` and skipped until it answers again.
    #[serde(with = "units::duration")]
    pub mount_timeout: Duration,
}

/// `collectors.diskstats:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskstatsOptions {
    /// Devices to skip: partitions, ram and loop devices by default.
    pub device_exclude: String,
}

/// `collectors.netdev:`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevOptions {
    /// Only these devices (a regex; empty: all). Excludes `device_exclude`.
    pub device_include: String,
    /// Devices to skip (a regex; empty: none).
    pub device_exclude: String,
}

/// `collectors.netclass:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetclassOptions {
    /// Devices to skip (a regex; node_exporter's `--collector.netclass.ignored-devices`).
    pub ignored_devices: String,
    /// Leave out `node_network_speed_bytes` of devices whose speed is unknown (the kernel says
    /// -1); node_exporter 1.5 reports them as -125000 unless told to ignore them.
    pub ignore_invalid_speed: bool,
}

impl Default for NetclassOptions {
    fn default() -> Self {
        Self { ignored_devices: "^$".into(), ignore_invalid_speed: false }
    }
}

/// A field filter (`collectors.netstat:`, `collectors.vmstat:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsOptions {
    /// Fields to report (a regex over `Protocol_Field` for netstat, the field for vmstat).
    pub fields: String,
}

/// `collectors.processes:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessesOptions {
    /// How many processes to report by CPU use and, separately, by resident memory; at most
    /// twice this many processes have series at any time. 0 turns the collector off.
    pub top_n: usize,
}

/// node_exporter's `--collector.filesystem.mount-points-exclude` default (upstream 1.5).
pub const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's `--collector.filesystem.fs-types-exclude` default.
pub const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// node_exporter's `--collector.diskstats.device-exclude` default.
pub const DISK_DEVICE_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// node_exporter's `--collector.netstat.fields` default.
pub const NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";
/// node_exporter's `--collector.vmstat.fields` default.
pub const VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

impl Default for Options {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(15),
            job: "node".into(),
            instance: String::new(),
            disabled: Vec::new(),
            proc_path: "/proc".into(),
            sys_path: "/sys".into(),
            rootfs_path: "/".into(),
            filesystem: FilesystemOptions::default(),
            diskstats: DiskstatsOptions::default(),
            netdev: NetdevOptions::default(),
            netclass: NetclassOptions::default(),
            netstat: FieldsOptions { fields: NETSTAT_FIELDS.into() },
            vmstat: FieldsOptions { fields: VMSTAT_FIELDS.into() },
            processes: ProcessesOptions::default(),
            textfile: TextfileOptions::default(),
        }
    }
}

impl Default for FilesystemOptions {
    fn default() -> Self {
        Self {
            mount_points_exclude: MOUNT_POINTS_EXCLUDE.into(),
            fs_types_exclude: FS_TYPES_EXCLUDE.into(),
            mount_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for DiskstatsOptions {
    fn default() -> Self {
        Self { device_exclude: DISK_DEVICE_EXCLUDE.into() }
    }
}

impl Default for ProcessesOptions {
    fn default() -> Self {
        Self { top_n: 10 }
    }
}

impl Options {
    /// Checks names, regexes and intervals; errors name the key under `collectors`.
    pub fn validate(&self) -> Result<()> {
        Compiled::new(self).map(|_| ())
    }

    /// The `instance` label in force: the configured one or the host name.
    pub fn instance_label(&self) -> String {
        if self.instance.is_empty() {
            hostname()
        } else {
            self.instance.clone()
        }
    }
}

/// The host's name (`uname -n`), as node_exporter's `nodename`.
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Options with the regexes compiled.
struct Compiled {
    mount_points_exclude: Regex,
    fs_types_exclude: Regex,
    disk_exclude: Regex,
    netdev_include: Option<Regex>,
    netdev_exclude: Option<Regex>,
    netclass_ignored: Regex,
    netstat_fields: Regex,
    vmstat_fields: Regex,
}

fn regex(key: &str, re: &str) -> Result<Regex> {
    Regex::new(re).map_err(|e| Error::config(format!("collectors.{key}"), e.to_string().replace('\n', " ")))
}

impl Compiled {
    fn new(o: &Options) -> Result<Self> {
        if o.interval.is_zero() {
            return Err(Error::config("collectors.interval", "must be greater than zero"));
        }
        if o.job.is_empty() {
            return Err(Error::config("collectors.job", "must not be empty"));
        }
        for (i, name) in o.disabled.iter().enumerate() {
            if !COLLECTORS.contains(&name.as_str()) {
                return Err(Error::config(
                    format!("collectors.disabled[{i}]"),
                    format!("unknown collector {name:?}; known: {}", COLLECTORS.join(", ")),
                ));
            }
        }
        if !o.netdev.device_include.is_empty() && !o.netdev.device_exclude.is_empty() {
            return Err(Error::config("collectors.netdev", "device_include and device_exclude are mutually exclusive"));
        }
        let opt = |key: &str, re: &str| if re.is_empty() { Ok(None) } else { regex(key, re).map(Some) };
        Ok(Self {
            mount_points_exclude: regex("filesystem.mount_points_exclude", &o.filesystem.mount_points_exclude)?,
            fs_types_exclude: regex("filesystem.fs_types_exclude", &o.filesystem.fs_types_exclude)?,
            disk_exclude: regex("diskstats.device_exclude", &o.diskstats.device_exclude)?,
            netdev_include: opt("netdev.device_include", &o.netdev.device_include)?,
            netdev_exclude: opt("netdev.device_exclude", &o.netdev.device_exclude)?,
            netclass_ignored: regex("netclass.ignored_devices", &o.netclass.ignored_devices)?,
            netstat_fields: regex("netstat.fields", &o.netstat.fields)?,
            vmstat_fields: regex("vmstat.fields", &o.vmstat.fields)?,
        })
    }
}

/// One collector's state across rounds.
struct Slot {
    name: &'static str,
    /// Whether the last round failed (to log a failure once, and the recovery).
    failing: bool,
}

/// The collectors with their state; [`Host::collect`] runs one round.
pub struct Host {
    opts: Options,
    re: Compiled,
    base: Vec<(String, String)>,
    slots: Vec<Slot>,
    reader: Reader,
    cpu: stat::CpuState,
    procs: process::State,
    fs: fs::FsState,
    page_size: u64,
    rounds: u64,
}

/// Metadata (TYPE, HELP) is sent with the first round and then every this many rounds, so a
/// receiver that restarted learns it again without every batch carrying it.
const METADATA_EVERY: u64 = 40;

impl Host {
    /// Collectors configured by `opts` (validated here).
    pub fn new(opts: &Options) -> Result<Self> {
        let re = Compiled::new(opts)?;
        let mut slots = Vec::new();
        for &name in COLLECTORS {
            let off = opts.disabled.iter().any(|d| d == name) || (name == "processes" && opts.processes.top_n == 0);
            if !off {
                slots.push(Slot { name, failing: false });
            }
        }
        let base = vec![("job".to_string(), opts.job.clone()), ("instance".to_string(), opts.instance_label())];
        Ok(Self {
            opts: opts.clone(),
            re,
            base,
            slots,
            reader: Reader::default(),
            cpu: stat::CpuState::default(),
            procs: process::State::default(),
            fs: fs::FsState::default(),
            page_size: rustix::param::page_size() as u64,
            rounds: 0,
        })
    }

    /// The collectors that run, by name.
    pub fn enabled(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.name).collect()
    }

    /// Runs every collector once; samples are stamped `now` (milliseconds).
    pub fn collect(&mut self, now: Timestamp) -> WriteBatch {
        let mut batch = WriteBatch::new();
        let meta = self.rounds.is_multiple_of(METADATA_EVERY);
        self.rounds += 1;
        let mut results: Vec<(&'static str, f64, bool)> = Vec::with_capacity(self.slots.len());
        let base = std::mem::take(&mut self.base);
        for i in 0..self.slots.len() {
            let name = self.slots[i].name;
            let started = Instant::now();
            let mut out = Out::new(&mut batch, &base, now, meta);
            let r = self.run(name, &mut out, now);
            let took = started.elapsed().as_secs_f64();
            let slot = &mut self.slots[i];
            match &r {
                Ok(()) if slot.failing => {
                    tracing::info!(collector = name, "collector recovered");
                    slot.failing = false;
                }
                Ok(()) => {}
                Err(Error::NoData(why)) => {
                    tracing::debug!(collector = name, reason = %why, "collector has no data");
                }
                Err(e) if !slot.failing => {
                    tracing::warn!(collector = name, error = %e, "collector failed; further failures are logged at debug level");
                    slot.failing = true;
                }
                Err(e) => tracing::debug!(collector = name, error = %e, "collector failed"),
            }
            results.push((name, took, r.is_ok()));
        }
        let mut out = Out::new(&mut batch, &base, now, meta);
        out.family(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            MetricType::Gauge,
        );
        for (name, took, _) in &results {
            out.put(&[("collector", name)], *took);
        }
        out.family("node_scrape_collector_success", "node_exporter: Whether a collector succeeded.", MetricType::Gauge);
        for (name, _, ok) in &results {
            out.put(&[("collector", name)], if *ok { 1.0 } else { 0.0 });
        }
        self.base = base;
        batch
    }

    fn run(&mut self, name: &str, out: &mut Out<'_>, now: Timestamp) -> Result<()> {
        let proc = self.opts.proc_path.clone();
        let sys = &self.opts.sys_path;
        let r = &mut self.reader;
        match name {
            "arp" => net::arp(r, &proc, out),
            "conntrack" => net::conntrack(r, &proc, out),
            "cpufreq" => cpufreq::cpufreq(r, sys, out),
            "mdadm" => mdadm::mdadm(r, &proc, out),
            "entropy" => system::entropy(r, &proc, out),
            "netclass" => {
                netclass::netclass(r, sys, &self.re.netclass_ignored, self.opts.netclass.ignore_invalid_speed, out)
            }
            "softnet" => net::softnet(r, &proc, out),
            "schedstat" => stat::schedstat(r, &proc, out),
            "thermal_zone" => thermal::thermal_zone(r, sys, out),
            "textfile" => textfile::textfile(&self.opts.textfile.directory, now, out),
            "timex" => system::timex(out),
            "udp_queues" => net::udp_queues(r, &proc, out),
            "cpu" => stat::cpu(r, &proc, &mut self.cpu, out),
            "stat" => stat::stat(r, &proc, out),
            "loadavg" => stat::loadavg(r, &proc, out),
            "meminfo" => stat::meminfo(r, &proc, out),
            "vmstat" => stat::vmstat(r, &proc, &self.re.vmstat_fields, out),
            "filefd" => stat::filefd(r, &proc, out),
            "pressure" => stat::pressure(r, &proc, out),
            "diskstats" => fs::diskstats(r, &proc, &self.opts.rootfs_path, &self.re.disk_exclude, out),
            "filesystem" => fs::filesystem(
                r,
                &proc,
                &self.opts.rootfs_path,
                &self.re.mount_points_exclude,
                &self.re.fs_types_exclude,
                self.opts.filesystem.mount_timeout,
                &mut self.fs,
                out,
            ),
            "netdev" => net::netdev(r, &proc, self.re.netdev_include.as_ref(), self.re.netdev_exclude.as_ref(), out),
            "netstat" => net::netstat(r, &proc, &self.re.netstat_fields, out),
            "sockstat" => net::sockstat(r, &proc, self.page_size, out),
            "time" => system::time(r, sys, now, out),
            "uname" => system::uname(out),
            "os" => system::os(r, &self.opts.rootfs_path, out),
            "selinux" => system::selinux(r, sys, &self.opts.rootfs_path, out),
            "processes" => process::top(r, &proc, self.opts.processes.top_n, now, self.page_size, &mut self.procs, out),
            _ => Ok(()),
        }
    }
}

/// Runs the collectors every `opts.interval` until `stop` turns true, writing each round
/// (with stale markers for series that went away) to `sink`; at the end, every series gets a
/// stale marker. Each round runs on the blocking pool.
pub async fn run(
    opts: Options,
    sink: std::sync::Arc<dyn crate::Sink>,
    clock: crate::scrape::Clock,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let host = match Host::new(&opts) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "host collectors not started");
            return;
        }
    };
    tracing::info!(collectors = %host.enabled().join(","), interval = %units::format_duration(opts.interval), "host collectors started");
    let mut state = Some((host, crate::Staleness::new()));
    let mut tick = tokio::time::interval(opts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let Some((mut host, mut stale)) = state.take() else { break };
        let (sink, clock) = (sink.clone(), clock.clone());
        let job = tokio::task::spawn_blocking(move || {
            let now = clock();
            let mut batch = host.collect(now);
            stale.update(&mut batch, now);
            if let Err(e) = sink.write("collectors", &batch) {
                tracing::warn!(error = %e, "cannot store host metrics");
            }
            (host, stale)
        });
        match job.await {
            Ok(s) => state = Some(s),
            Err(e) => {
                tracing::error!(error = %e, "host collection panicked; collectors stopped");
                return;
            }
        }
    }
    if let Some((_, mut stale)) = state {
        let batch = stale.end(clock());
        let _ = tokio::task::spawn_blocking(move || sink.write("collectors", &batch)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_on_this_host_has_the_overview_families() {
        let mut host = Host::new(&Options { instance: "h".into(), ..Options::default() }).unwrap();
        let b = host.collect(1_700_000_000_000);
        let names: std::collections::BTreeSet<String> =
            b.iter().map(|(l, _)| l.metric_name().unwrap().to_string()).collect();
        for want in [
            "node_cpu_seconds_total",
            "node_load1",
            "node_memory_MemAvailable_bytes",
            "node_filesystem_avail_bytes",
            "node_disk_io_time_seconds_total",
            "node_network_receive_bytes_total",
            "node_boot_time_seconds",
            "node_uname_info",
            "node_os_info",
            "node_filefd_allocated",
            "node_sockstat_TCP_inuse",
            "node_netstat_Tcp_CurrEstab",
            "telltale_process_resident_memory_bytes",
        ] {
            assert!(names.contains(want), "{want} missing from {names:?}");
        }
        for (l, s) in b.iter() {
            assert_eq!((l.get("job"), l.get("instance")), (Some("node"), Some("h")), "{l}");
            assert_eq!(s[0].t, 1_700_000_000_000);
        }
        let ok: Vec<_> = b
            .iter()
            .filter(|(l, _)| l.metric_name() == Some("node_scrape_collector_success"))
            .map(|(l, s)| (l.get("collector").unwrap().to_string(), s[0].v))
            .collect();
        assert_eq!(ok.len(), host.enabled().len());
        // PSI, conntrack, schedstat and md arrays exist only where the kernel has them (NoData otherwise).
        assert!(
            ok.iter().all(|(c, v)| *v == 1.0 || ["pressure", "conntrack", "schedstat", "mdadm"].contains(&c.as_str())),
            "{ok:?}"
        );
        assert!(!b.metadata.is_empty());
        // The second round carries no metadata and rates the processes.
        let b = host.collect(1_700_000_015_000);
        assert!(b.metadata.is_empty());
        assert!(b.iter().any(|(l, _)| l.metric_name() == Some("telltale_process_cpu_usage_ratio")));
    }

    #[test]
    fn a_failing_collector_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("loadavg"), "0.5 0.25 0.125 1/100 42\n").unwrap();
        std::fs::write(dir.path().join("stat"), "cpu0 oops\n").unwrap();
        let opts = Options { proc_path: dir.path().into(), instance: "h".into(), ..Options::default() };
        let mut host = Host::new(&opts).unwrap();
        let b = host.collect(1000);
        let get = |name: &str, collector: Option<&str>| {
            b.iter()
                .find(|(l, _)| l.metric_name() == Some(name) && collector.is_none_or(|c| l.get("collector") == Some(c)))
                .map(|(_, s)| s[0].v)
        };
        assert_eq!(get("node_load5", None), Some(0.25));
        assert_eq!(get("node_scrape_collector_success", Some("loadavg")), Some(1.0));
        assert_eq!(get("node_scrape_collector_success", Some("cpu")), Some(0.0));
        assert_eq!(get("node_scrape_collector_success", Some("meminfo")), Some(0.0));
        assert!(get("node_scrape_collector_duration_seconds", Some("cpu")).is_some());
        assert!(get("node_uname_info", None).is_some());
    }

    #[test]
    fn bad_options_name_the_key() {
        let o = Options { disabled: vec!["cpu".into(), "gpu".into()], ..Options::default() };
        assert!(o.validate().unwrap_err().to_string().starts_with("collectors.disabled[1]: unknown collector \"gpu\""));
        let o = Options { vmstat: FieldsOptions { fields: "(".into() }, ..Options::default() };
        assert!(o.validate().unwrap_err().to_string().starts_with("collectors.vmstat.fields: "));
        let o = Options { interval: Duration::ZERO, ..Options::default() };
        assert_eq!(o.validate().unwrap_err().to_string(), "collectors.interval: must be greater than zero");
        let o = Options { disabled: vec!["processes".into()], ..Options::default() };
        assert!(!Host::new(&o).unwrap().enabled().contains(&"processes"));
    }
}
