//! Collectors for hardware and kernel features this machine lacks (/proc/schedstat, thermal
//! zones, cooling devices, cpufreq, md arrays), checked against node_exporter anyway: both read the same made-up
//! procfs and sysfs trees (node_exporter's `--path.procfs`/`--path.sysfs`), and must give
//! exactly the same families, label sets and values.

use std::path::Path;
use std::time::Duration;

use telltale_collect::host::{Host, Options, COLLECTORS};
use telltale_testkit::{eventually, free_port, Peer};

use super::{families, scrape};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn schedstat_thermal_cpufreq_and_mdadm_agree_with_node_exporter_on_a_fixture_tree() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    write(
        r,
        "proc/schedstat",
        "version 15\ntimestamp 4295015011\n\
         cpu0 0 0 0 0 0 0 2990998818 1228006393 162452\n\
         domain0 03 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
         cpu1 0 0 0 0 0 0 1230000000 45000000 7000\n",
    );
    for (zone, kind, temp) in [("0", "acpitz", "27800"), ("1", "x86_pkg_temp", "45000"), ("10", "iwlwifi_1", "39000")] {
        write(r, &format!("sys/class/thermal/thermal_zone{zone}/type"), &format!("{kind}\n"));
        write(r, &format!("sys/class/thermal/thermal_zone{zone}/temp"), &format!("{temp}\n"));
        write(r, &format!("sys/class/thermal/thermal_zone{zone}/policy"), "step_wise\n");
        write(r, &format!("sys/class/thermal/thermal_zone{zone}/mode"), "enabled\n");
    }
    for (n, kind, cur, max) in [("0", "Processor", "0", "10"), ("1", "intel_powerclamp", "3", "50")] {
        write(r, &format!("sys/class/thermal/cooling_device{n}/type"), &format!("{kind}\n"));
        write(r, &format!("sys/class/thermal/cooling_device{n}/cur_state"), &format!("{cur}\n"));
        write(r, &format!("sys/class/thermal/cooling_device{n}/max_state"), &format!("{max}\n"));
    }
    // cpu0 offers everything, cpu1 no cpuinfo_cur_freq (root-only on real hosts), cpu2 no cpufreq.
    for (cpu, files) in [
        (
            "0",
            &[
                ("cpuinfo_cur_freq", "1800000"),
                ("cpuinfo_max_freq", "3600000"),
                ("cpuinfo_min_freq", "800000"),
                ("scaling_cur_freq", "1799998"),
                ("scaling_max_freq", "3600000"),
                ("scaling_min_freq", "800000"),
            ][..],
        ),
        (
            "1",
            &[
                ("cpuinfo_max_freq", "3600000"),
                ("cpuinfo_min_freq", "800000"),
                ("scaling_cur_freq", "2400000"),
                ("scaling_max_freq", "3000000"),
                ("scaling_min_freq", "1200000"),
            ][..],
        ),
    ] {
        let drivers = [
            ("scaling_available_governors", "performance powersave"),
            ("scaling_driver", "intel_pstate"),
            ("scaling_governor", "powersave"),
            ("related_cpus", cpu),
            ("affected_cpus", cpu),
            ("scaling_setspeed", "<unsupported>"),
        ];
        for (f, v) in files.iter().chain(&drivers) {
            write(r, &format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/{f}"), &format!("{v}\n"));
        }
    }
    write(r, "sys/devices/system/cpu/cpu2/online", "1\n");
    // Arrays in every state the parser knows: healthy raid1 with a bitmap, degraded raid5
    // with a failed and a spare disk, recovering, resync pending, checking, raid0, inactive.
    write(
        r,
        "proc/mdstat",
        "Personalities : [linear] [raid0] [raid1] [raid6] [raid5] [raid4] [raid10]\n\
         md3 : active raid1 sdb1[1] sda1[0]\n      1046528 blocks super 1.2 [2/2] [UU]\n      bitmap: 0/8 pages [0KB], 65536KB chunk\n\n\
         md4 : active raid5 sdf1[3](S) sde1[2](F) sdd1[1] sdc1[0]\n      2093056 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]\n\n\
         md5 : active raid1 sdh1[2] sdg1[0]\n      1046528 blocks super 1.2 [2/1] [U_]\n      [=>...................]  recovery =  8.5% (89856/1046528) finish=1.4min speed=11232K/sec\n\n\
         md6 : active raid1 sdj1[1] sdi1[0]\n      1046528 blocks super 1.2 [2/2] [UU]\n        resync=PENDING\n\n\
         md7 : active raid1 sdl1[1] sdk1[0]\n      1046528 blocks super 1.2 [2/2] [UU]\n      [==>..................]  check = 12.6% (132096/1046528) finish=0.8min speed=18870K/sec\n\n\
         md8 : active raid0 sdn1[1] sdm1[0]\n      2093056 blocks super 1.2 512k chunks\n\n\
         md9 : inactive sdo1[0](S)\n      1046528 blocks super 1.2\n\n\
         unused devices: <none>\n",
    );
    let port = free_port();
    let ne = Peer::start(
        "prometheus-node-exporter",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--path.procfs={}", r.join("proc").display()),
            format!("--path.sysfs={}", r.join("sys").display()),
            "--collector.disable-defaults".into(),
            "--collector.schedstat".into(),
            "--collector.thermal_zone".into(),
            "--collector.cpufreq".into(),
            "--collector.mdadm".into(),
        ],
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let theirs = families(&eventually("node_exporter to answer", Duration::from_millis(100), || scrape(&url)));
    let wanted = ["cpufreq", "mdadm", "schedstat", "thermal_zone"];
    let opts = Options {
        instance: "h".into(),
        proc_path: r.join("proc"),
        sys_path: r.join("sys"),
        disabled: COLLECTORS.iter().filter(|c| !wanted.contains(c)).map(|c| c.to_string()).collect(),
        ..Options::default()
    };
    let mut host = Host::new(&opts).unwrap();
    assert_eq!(host.enabled(), wanted);
    let ours = families(&host.collect(1));
    let keep = |f: &super::Families| -> super::Families {
        f.iter()
            .filter(|(n, _)| {
                n.starts_with("node_") && !n.starts_with("node_scrape_") && *n != "node_exporter_build_info"
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    };
    let (ours, theirs) = (keep(&ours), keep(&theirs));
    assert_eq!(ours, theirs, "node_exporter's log:\n{}", ne.log());
    for f in [
        "node_schedstat_running_seconds_total",
        "node_schedstat_waiting_seconds_total",
        "node_schedstat_timeslices_total",
        "node_thermal_zone_temp",
        "node_cooling_device_cur_state",
        "node_cooling_device_max_state",
        "node_cpu_frequency_hertz",
        "node_cpu_scaling_frequency_hertz",
        "node_cpu_scaling_frequency_max_hertz",
        "node_md_state",
        "node_md_disks",
        "node_md_disks_required",
        "node_md_blocks_synced",
    ] {
        assert!(ours.contains_key(f), "{f} missing: {ours:?}");
    }
}
