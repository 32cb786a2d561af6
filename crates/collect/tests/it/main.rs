//! The host collectors against Debian's real `prometheus-node-exporter`, at about the same
//! moment: the same families with the same label sets; exact values for what does not move,
//! counters between our reading before and after node_exporter's, gauges within a tolerance.

mod fixtures;
mod scrape;
mod support;
mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use telltale_collect::host::{
    Host, Options, DISK_DEVICE_EXCLUDE, FS_TYPES_EXCLUDE, MOUNT_POINTS_EXCLUDE, NETSTAT_FIELDS, VMSTAT_FIELDS,
};
use telltale_model::WriteBatch;
use telltale_testkit::{eventually, free_port, Peer};

/// family → (labels without job/instance, rendered) → value
pub(crate) type Families = BTreeMap<String, BTreeMap<String, f64>>;

pub(crate) fn families(b: &WriteBatch) -> Families {
    let mut out = Families::new();
    for (l, s) in b.iter() {
        let name = l.metric_name().unwrap_or_default().to_string();
        let key: Vec<String> = l
            .iter()
            .filter(|(k, _)| !matches!(*k, "__name__" | "job" | "instance"))
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        out.entry(name).or_default().insert(key.join(","), s[0].v);
    }
    out
}

pub(crate) fn scrape(url: &str) -> Option<WriteBatch> {
    let mut res = ureq::get(url).call().ok()?;
    let body = res.body_mut().read_to_vec().ok()?;
    telltale_ingest::exposition::decode(&body, 0, &telltale_ingest::Limits::unlimited()).ok()
}

/// Families whose values do not change between two readings a moment apart.
const EXACT: &[&str] = &[
    "node_boot_time_seconds",
    "node_memory_MemTotal_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_HugePages_Total",
    "node_memory_Hugepagesize_bytes",
    "node_memory_VmallocTotal_bytes",
    "node_memory_CommitLimit_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_filefd_maximum",
    "node_uname_info",
    "node_os_info",
    "node_os_version",
    "node_disk_info",
    "node_netstat_Ip_Forwarding",
    // netclass: the devices' settings
    "node_network_up",
    "node_network_info",
    "node_network_mtu_bytes",
    "node_network_speed_bytes",
    "node_network_carrier",
    "node_network_dormant",
    "node_network_flags",
    "node_network_iface_id",
    "node_network_iface_link",
    "node_network_iface_link_mode",
    "node_network_address_assign_type",
    "node_network_device_id",
    "node_network_name_assign_type",
    "node_network_net_dev_group",
    "node_network_protocol_type",
    "node_network_transmit_queue_length",
    "node_network_carrier_changes_total",
    "node_network_carrier_up_changes_total",
    "node_network_carrier_down_changes_total",
    // time, timex, entropy, conntrack: settings of the kernel
    "node_time_zone_offset_seconds",
    "node_time_clocksource_available_info",
    "node_time_clocksource_current_info",
    "node_timex_status",
    "node_timex_sync_status",
    "node_timex_tick_seconds",
    "node_timex_loop_time_constant",
    "node_timex_tai_offset_seconds",
    "node_entropy_pool_size_bits",
    "node_nf_conntrack_entries_limit",
    // textfile: what the files say, their mtimes, and the error flag
    "node_textfile_mtime_seconds",
    "node_textfile_scrape_error",
    "backup_last_success_timestamp_seconds",
    "apt_upgrades_pending",
    "node_reboot_required",
];

fn is_counter(name: &str) -> bool {
    (name.ends_with("_total") || name.starts_with("node_vmstat_") || name.starts_with("node_netstat_"))
        && name != "node_netstat_Tcp_CurrEstab"
}

/// How far node_exporter's value may be from ours, read a moment before and after it.
#[derive(Debug, Clone, Copy)]
enum Agreement {
    /// Does not move between readings a moment apart.
    Exact,
    /// Only grows: node_exporter read between our two readings, so its value lies between them.
    Counter,
    /// Moves: between our two readings, widened by `rel` of the value plus `abs` (what other
    /// processes, such as tests running beside this one, may change in the few milliseconds
    /// between two readings).
    Gauge { rel: f64, abs: f64 },
    /// Ours is the collection time the test passes in.
    Clock,
}

const MIB: f64 = 1048576.0;

fn agreement(name: &str) -> Agreement {
    use Agreement::*;
    if EXACT.contains(&name) {
        return Exact;
    }
    if is_counter(name) {
        return Counter;
    }
    let gauge = |rel, abs| Gauge { rel, abs };
    match name {
        "node_time_seconds" => Clock,
        // The kernel recomputes the load averages every 5 s: node_exporter sees ours before or after.
        "node_load1" | "node_load5" | "node_load15" => gauge(0.0, 0.0),
        // Tasks runnable or in D state at the instant of reading: each reader is one of them.
        "node_procs_running" | "node_procs_blocked" => gauge(0.0, 4.0),
        "node_filefd_allocated" | "node_nf_conntrack_entries" | "node_arp_entries" => gauge(0.0, 64.0),
        "node_entropy_available_bits" => gauge(0.0, 32.0),
        "node_netstat_Tcp_CurrEstab" => gauge(0.0, 16.0),
        "node_udp_queues" => gauge(0.0, MIB),
        // Kernel time keeping: the maximum error grows by 500 µs per second between readings.
        n if n.starts_with("node_timex_") => gauge(0.0, 0.001),
        n if n.starts_with("node_sockstat_") && n.ends_with("_bytes") => gauge(0.0, MIB),
        n if n.starts_with("node_sockstat_") => gauge(0.0, 256.0),
        // Free space and inodes: tests beside this one write and delete files.
        "node_filesystem_free_bytes" | "node_filesystem_avail_bytes" => gauge(0.0, 64.0 * MIB),
        "node_filesystem_files_free" => gauge(0.0, 1000.0),
        // Memory of other processes comes and goes while tests run beside this one.
        n if n.starts_with("node_memory_") && n.ends_with("_bytes") => gauge(0.01, 8.0 * MIB),
        n if n.starts_with("node_memory_") => gauge(0.01, 16.0),
        _ => gauge(0.001, 0.0),
    }
}

fn agrees(how: Agreement, v0: f64, theirs: f64, v1: f64) -> bool {
    match how {
        Agreement::Exact => theirs == v0 && theirs == v1,
        Agreement::Counter => {
            let eps = 1e-9 * theirs.abs();
            v0 - eps <= theirs && theirs <= v1 + eps
        }
        Agreement::Gauge { rel, abs } => {
            let tol = rel * theirs.abs() + abs + 1e-9 * theirs.abs();
            (v0.min(v1) - tol..=v0.max(v1) + tol).contains(&theirs)
        }
        Agreement::Clock => true,
    }
}

/// Families of node_exporter's own process (Go runtime, HTTP handler, build, per-collector
/// timings), which a host collector has no counterpart for.
fn exporter_own(name: &str) -> bool {
    ["go_", "process_", "promhttp_", "node_exporter_", "node_scrape_collector_"].iter().any(|p| name.starts_with(p))
}

/// The families docs/collect.md lists, with a reason, as node_exporter's and not Telltale's.
fn documented_gaps() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/collect.md")).unwrap();
    let section = doc.split("### Families node_exporter has and Telltale does not").nth(1).expect("the section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells.get(1).copied().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn host_collectors_agree_with_node_exporter() {
    let port = free_port();
    // A textfile directory with a good file, one that does not parse, and one with a
    // client-side timestamp (both of those are skipped and set the error flag).
    let textfiles = tempfile::tempdir().unwrap();
    std::fs::write(
        textfiles.path().join("good.prom"),
        "# HELP backup_last_success_timestamp_seconds Last good backup.\n# TYPE backup_last_success_timestamp_seconds gauge\n\
         backup_last_success_timestamp_seconds{target=\"db\"} 1.7e+09\napt_upgrades_pending{origin=\"Debian\",arch=\"amd64\"} 3\n\
         node_reboot_required 0\n",
    )
    .unwrap();
    std::fs::write(textfiles.path().join("bad.prom"), "this is {not a metric\n").unwrap();
    std::fs::write(textfiles.path().join("stamped.prom"), "stamped_metric 1 1700000000000\n").unwrap();
    std::fs::write(textfiles.path().join("ignored.txt"), "not_read 1\n").unwrap();
    // node_exporter with upstream's default flags (Debian's package changes two of them), and
    // netdev from /proc/net/dev as Telltale reads it.
    let _ne = Peer::start(
        "prometheus-node-exporter",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}"),
            format!("--collector.filesystem.fs-types-exclude={FS_TYPES_EXCLUDE}"),
            format!("--collector.diskstats.device-exclude={DISK_DEVICE_EXCLUDE}"),
            format!("--collector.netstat.fields={NETSTAT_FIELDS}"),
            format!("--collector.vmstat.fields={VMSTAT_FIELDS}"),
            "--collector.netdev.device-exclude=^$".to_string(),
            "--no-collector.netdev.netlink".to_string(),
            format!("--collector.textfile.directory={}", textfiles.path().display()),
        ],
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    eventually("node_exporter to answer", Duration::from_millis(100), || scrape(&url));

    let mut opts = Options { instance: "h".into(), ..Options::default() };
    opts.textfile.directory = textfiles.path().to_path_buf();
    let mut host = Host::new(&opts).unwrap();
    let mut clock = 0;
    let mut read = || {
        clock += 1;
        let before = families(&host.collect(clock));
        let theirs = families(&scrape(&url).expect("node_exporter metrics"));
        clock += 1;
        (before, theirs, families(&host.collect(clock)))
    };
    let (before, theirs, after) = read();

    let mut problems = Vec::new();
    // The same families both ways, and the same label sets in each.
    let gaps = documented_gaps();
    for (name, reason) in &gaps {
        if reason.is_empty() {
            problems.push(format!("{name}: listed in docs/collect.md without a reason"));
        }
    }
    for name in theirs.keys().filter(|n| !exporter_own(n) && !before.contains_key(*n)) {
        if !gaps.contains_key(name) {
            problems.push(format!(
                "{name}: node_exporter reports it, Telltale does not (and docs/collect.md does not say why)"
            ));
        }
    }
    let mut values = Vec::new();
    for (name, ours) in &before {
        if name.starts_with("telltale_") || exporter_own(name) {
            continue;
        }
        let Some(their) = theirs.get(name) else {
            problems.push(format!("{name}: node_exporter has no such family"));
            continue;
        };
        let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (ours.keys().collect(), their.keys().collect());
        if a != b {
            problems.push(format!("{name}: label sets differ\n  ours:   {a:?}\n  theirs: {b:?}"));
            continue;
        }
        values.extend(ours.keys().map(|labels| (name.clone(), labels.clone())));
    }
    // Values by kind. What moves may move more than allowed once (a burst of memory use by a
    // test beside this one), so a disagreement is read again up to twice; a value read wrongly
    // disagrees every time.
    let compared = values.len();
    let (mut before, mut theirs, mut after) = (before, theirs, after);
    for round in 0..3 {
        values.retain(|(name, labels)| {
            let (Some(v0), Some(v), Some(v1)) = (
                before.get(name).and_then(|f| f.get(labels)),
                theirs.get(name).and_then(|f| f.get(labels)),
                after.get(name).and_then(|f| f.get(labels)),
            ) else {
                return true;
            };
            !agrees(agreement(name), *v0, *v, *v1)
        });
        if values.is_empty() || round == 2 {
            break;
        }
        (before, theirs, after) = read();
    }
    for (name, labels) in &values {
        let get = |f: &Families| f.get(name).and_then(|f| f.get(labels)).copied();
        problems.push(format!(
            "{name}{{{labels}}} ({:?}): ours {:?} then {:?}, node_exporter {:?}",
            agreement(name),
            get(&before),
            get(&after),
            get(&theirs)
        ));
    }
    // The families the issue names must be there.
    for want in [
        "node_cpu_seconds_total",
        "node_load1",
        "node_memory_MemAvailable_bytes",
        "node_context_switches_total",
        "node_forks_total",
        "node_intr_total",
        "node_procs_running",
        "node_procs_blocked",
        "node_boot_time_seconds",
        "node_memory_SwapFree_bytes",
        "node_vmstat_pswpin",
        "node_filesystem_avail_bytes",
        "node_disk_io_time_seconds_total",
        "node_network_receive_bytes_total",
        "node_network_transmit_drop_total",
        "node_netstat_Tcp_CurrEstab",
        "node_sockstat_TCP_tw",
        "node_filefd_allocated",
        "node_uname_info",
        "node_os_info",
        "node_time_seconds",
        // Beyond the overview: what "Node Exporter Full" and the common node alert rules use.
        // (node_arp_entries and node_network_speed_bytes are compared when the host has ARP
        // entries and a device with a speed, but not required: a host may have neither.)
        "node_network_up",
        "node_network_info",
        "node_network_mtu_bytes",
        "node_network_carrier",
        "node_network_transmit_queue_length",
        "node_time_zone_offset_seconds",
        "node_timex_offset_seconds",
        "node_timex_sync_status",
        "node_timex_maxerror_seconds",
        "node_timex_estimated_error_seconds",
        "node_timex_frequency_adjustment_ratio",
        "node_entropy_available_bits",
        "node_softnet_processed_total",
        "node_softnet_times_squeezed_total",
        "node_udp_queues",
        "node_textfile_scrape_error",
        "node_textfile_mtime_seconds",
        "apt_upgrades_pending",
    ] {
        if !before.contains_key(want) {
            problems.push(format!("{want}: Telltale does not collect it"));
        }
    }
    if std::path::Path::new("/proc/sys/net/netfilter/nf_conntrack_count").is_file()
        && !before.contains_key("node_nf_conntrack_entries")
    {
        problems.push("node_nf_conntrack_entries: missing although the kernel tracks connections".into());
    }
    if std::path::Path::new("/proc/pressure/cpu").is_file()
        && !before.contains_key("node_pressure_cpu_waiting_seconds_total")
    {
        problems.push("node_pressure_cpu_waiting_seconds_total: missing although the kernel has PSI".into());
    }
    assert!(problems.is_empty(), "{} problems ({compared} values compared):\n{}", problems.len(), problems.join("\n"));
    eprintln!("compared {compared} values of {} families with node_exporter", before.len());
    assert!(compared > 100, "only {compared} values compared");
}
