//! The top processes by CPU and by resident memory, as `telltale_process_*` series.
//!
//! Cardinality is bounded: each round reports the `top_n` processes that used the most CPU
//! since the previous round and the `top_n` with the most resident memory (at most `2 * top_n`
//! processes); a process that drops out of both lists gets stale markers, so its series end.

use std::collections::HashMap;
use std::path::Path;

use telltale_model::{MetricType, Timestamp};

use super::read::{join, Reader};
use super::Out;
use crate::error::{Error, Result};

/// CPU ticks of each process at the previous round, keyed by pid and start time (pids are reused).
#[derive(Default)]
pub(crate) struct State {
    prev: HashMap<(u32, u64), u64>,
    next: HashMap<(u32, u64), u64>,
    prev_at: Option<Timestamp>,
}

struct Proc {
    pid: u32,
    name: String,
    ticks: u64,
    /// Ticks used since the previous round.
    delta: u64,
    rss: u64,
}

/// Fields of /proc/PID/stat after the `(comm)`: state is field 3, utime 14, stime 15,
/// starttime 22, rss 24 (proc(5)).
fn parse_stat(text: &str) -> Option<(u32, &str, u64, u64, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let name = &text[open + 1..close];
    let mut f = text[close + 1..].split_ascii_whitespace();
    // f.nth(0) is field 3 (state); utime is field 14, i.e. index 11 from here.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    let start: u64 = f.nth(6)?.parse().ok()?;
    let rss: i64 = f.nth(1)?.parse().ok()?;
    Some((pid, name, utime + stime, start, rss.max(0) as u64))
}

pub(crate) fn top(
    r: &mut Reader,
    proc: &Path,
    n: usize,
    now: Timestamp,
    page_size: u64,
    state: &mut State,
    out: &mut Out<'_>,
) -> Result<()> {
    let dir = std::fs::read_dir(proc).map_err(|e| Error::io("list", proc, e))?;
    let mut procs = Vec::new();
    state.next.clear();
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else { continue };
        // A process may exit between listing and reading: skip it.
        let Ok(Some(text)) = r.read_opt(&join(proc, &format!("{pid}/stat"))) else { continue };
        let Some((pid, name, ticks, start, rss)) = parse_stat(text) else { continue };
        let delta = match state.prev.get(&(pid, start)) {
            Some(&before) => ticks.saturating_sub(before),
            // New since the last round: everything it used was used since then.
            None if state.prev_at.is_some() => ticks,
            None => 0,
        };
        state.next.insert((pid, start), ticks);
        procs.push(Proc { pid, name: name.to_string(), ticks, delta, rss: rss * page_size });
    }
    std::mem::swap(&mut state.prev, &mut state.next);
    let elapsed = state.prev_at.map(|t| (now - t) as f64 / 1000.0).filter(|&s| s > 0.0);
    state.prev_at = Some(now);

    let mut chosen: Vec<usize> = Vec::with_capacity(2 * n);
    let mut idx: Vec<usize> = (0..procs.len()).collect();
    idx.sort_by(|&a, &b| procs[b].delta.cmp(&procs[a].delta).then(procs[a].pid.cmp(&procs[b].pid)));
    chosen.extend(idx.iter().take(n).filter(|&&i| procs[i].delta > 0 || elapsed.is_none()));
    idx.sort_by(|&a, &b| procs[b].rss.cmp(&procs[a].rss).then(procs[a].pid.cmp(&procs[b].pid)));
    for &i in idx.iter().take(n) {
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen.sort_by_key(|&i| procs[i].pid);

    let mut pid = String::new();
    let families: [(&str, &str, MetricType); 3] = [
        ("telltale_process_cpu_seconds_total", "CPU time (user and system) the process used.", MetricType::Counter),
        (
            "telltale_process_cpu_usage_ratio",
            "CPU the process used since the previous collection, in CPUs (1 = one core busy).",
            MetricType::Gauge,
        ),
        ("telltale_process_resident_memory_bytes", "Resident memory of the process.", MetricType::Gauge),
    ];
    for (f, (name, help, kind)) in families.iter().enumerate() {
        if f == 1 && elapsed.is_none() {
            continue;
        }
        out.family(name, help, *kind);
        for &i in &chosen {
            let p = &procs[i];
            pid.clear();
            pid.push_str(&p.pid.to_string());
            let v = match f {
                0 => p.ticks as f64 / 100.0,
                1 => p.delta as f64 / 100.0 / elapsed.unwrap_or(1.0),
                _ => p.rss as f64,
            };
            out.put(&[("pid", &pid), ("name", &p.name)], v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn stat_lines_with_odd_names() {
        let line = "1234 (tmux: server (x)) S 1 1234 1234 0 -1 4194560 1093 0 0 0 250 120 0 0 20 0 1 0 8000 12345678 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let (pid, name, ticks, start, rss) = parse_stat(line).unwrap();
        assert_eq!((pid, name, ticks, start, rss), (1234, "tmux: server (x)", 370, 8000, 2048));
    }
}
