//! `stats` and `top`: numbers read from the container's cgroup (v1, v2 or hybrid) and from
//! /proc of its processes. Typed values only; the CLI formats them (docker's units).
//!
//! Must not: enter the container (network counters are read through /proc/<pid>/net/dev,
//! which shows the network namespace of <pid>), or change anything.

use crate::refusal::{StateConflict, ValidationError};
use crate::run::ContainerInfo;
use crate::state::Status;
use crate::{Engine, EngineError};
use std::path::{Path, PathBuf};
use wharf_runtime::cgroup::{layout, Cgroup, Layout};
use wharf_types::container::NetworkMode;

/// One reading of a container's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// Total CPU time used by the cgroup (ns).
    pub cpu_usage_ns: u64,
    /// Host CPU time (all CPUs, ns) from /proc/stat, docker's "system usage".
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Memory usage without the inactive file cache (docker's figure).
    pub mem_usage: u64,
    /// The container's memory limit, or the host's MemTotal.
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

impl StatsSample {
    /// Docker's CPU %: (container delta / host delta) × online CPUs × 100.
    pub fn cpu_percent(&self, prev: Option<&StatsSample>) -> f64 {
        let Some(p) = prev else { return 0.0 };
        let cpu = self.cpu_usage_ns.saturating_sub(p.cpu_usage_ns) as f64;
        let sys = self.system_ns.saturating_sub(p.system_ns) as f64;
        if sys <= 0.0 || cpu <= 0.0 {
            return 0.0;
        }
        cpu / sys * f64::from(self.online_cpus.max(1)) * 100.0
    }

    pub fn mem_percent(&self) -> f64 {
        if self.mem_limit == 0 {
            0.0
        } else {
            self.mem_usage as f64 / self.mem_limit as f64 * 100.0
        }
    }
}

/// `top`'s table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopResult {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn read_u64(p: &Path) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Directory of `rel` in the v1 hierarchy holding `controller`, or None.
fn v1_dir(controllers: &[(String, PathBuf)], controller: &str, rel: &str) -> Option<PathBuf> {
    controllers
        .iter()
        .find(|(c, _)| c == controller)
        .map(|(_, m)| m.join(rel))
}

fn host_mem_total() -> u64 {
    read(Path::new("/proc/meminfo"))
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn clk_tck() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100, |v| v as u64)
}

/// Sum of the `cpu` line of /proc/stat in ns.
fn system_ns() -> u64 {
    let ticks: u64 = read(Path::new("/proc/stat"))
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("cpu ")).map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(8)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
        })
        .unwrap_or(0);
    ticks * (1_000_000_000 / clk_tck())
}

fn online_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// (rx, tx) bytes over all interfaces but `lo` of the network namespace of `pid`.
fn net_bytes(pid: i32) -> (u64, u64) {
    let Some(text) = read(Path::new(&format!("/proc/{pid}/net/dev"))) else {
        return (0, 0);
    };
    text.lines().skip(2).fold((0, 0), |(rx, tx), l| {
        let Some((ifc, rest)) = l.split_once(':') else {
            return (rx, tx);
        };
        if ifc.trim() == "lo" {
            return (rx, tx);
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        (
            rx + f.first().copied().unwrap_or(0),
            tx + f.get(8).copied().unwrap_or(0),
        )
    })
}

fn v1_blkio(dir: &Path) -> (u64, u64) {
    let text = read(&dir.join("blkio.throttle.io_service_bytes")).unwrap_or_default();
    text.lines().fold((0, 0), |(r, w), l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match (f.get(1), f.get(2).and_then(|v| v.parse::<u64>().ok())) {
            (Some(&"Read"), Some(n)) if f.len() == 3 => (r + n, w),
            (Some(&"Write"), Some(n)) if f.len() == 3 => (r, w + n),
            _ => (r, w),
        }
    })
}

fn v2_io(dir: &Path) -> (u64, u64) {
    let text = read(&dir.join("io.stat")).unwrap_or_default();
    let mut r = 0;
    let mut w = 0;
    for tok in text.split_whitespace() {
        if let Some(v) = tok.strip_prefix("rbytes=") {
            r += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = tok.strip_prefix("wbytes=") {
            w += v.parse::<u64>().unwrap_or(0);
        }
    }
    (r, w)
}

/// Read the cgroup counters of `rel` into `s`.
fn cgroup_counters(s: &mut StatsSample, rel: &str) {
    let host_total = host_mem_total();
    match layout() {
        Layout::V1 { controllers } | Layout::Hybrid { controllers, .. } => {
            if let Some(d) = v1_dir(controllers, "cpuacct", rel) {
                s.cpu_usage_ns = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
            }
            if let Some(d) = v1_dir(controllers, "memory", rel) {
                let usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
                let stat = read(&d.join("memory.stat")).unwrap_or_default();
                let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
                s.mem_usage = usage.saturating_sub(inactive);
                let limit = read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(u64::MAX);
                s.mem_limit = limit.min(host_total);
            }
            if let Some(d) = v1_dir(controllers, "blkio", rel) {
                (s.blk_read, s.blk_write) = v1_blkio(&d);
            }
            if let Some(d) = v1_dir(controllers, "pids", rel) {
                s.pids = read_u64(&d.join("pids.current")).unwrap_or(0);
            }
        }
        Layout::V2 { root } => {
            let d = root.join(rel);
            let cpu = read(&d.join("cpu.stat")).unwrap_or_default();
            s.cpu_usage_ns = keyed(&cpu, "usage_usec").unwrap_or(0) * 1000;
            let usage = read_u64(&d.join("memory.current")).unwrap_or(0);
            let stat = read(&d.join("memory.stat")).unwrap_or_default();
            s.mem_usage = usage.saturating_sub(keyed(&stat, "inactive_file").unwrap_or(0));
            s.mem_limit = read_u64(&d.join("memory.max"))
                .unwrap_or(u64::MAX)
                .min(host_total);
            (s.blk_read, s.blk_write) = v2_io(&d);
            s.pids = read_u64(&d.join("pids.current")).unwrap_or(0);
        }
    }
    if s.mem_limit == 0 {
        s.mem_limit = host_total;
    }
}

/// `[DD-]HH:MM:SS` of cumulative CPU time.
fn ps_time(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// uid → name from the host's /etc/passwd (no NSS), or the number.
fn user_name(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// One `ps -ef` row for `pid`.
fn ps_row(pid: i32, passwd: &str, uptime: f64, boot: i64, tck: u64) -> Option<Vec<String>> {
    let stat = read(Path::new(&format!("/proc/{pid}/stat")))?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let f: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // f[0] = state (field 3): ppid 4, tty_nr 7, utime 14, stime 15, starttime 22.
    let ppid = num(1);
    let tty = num(4);
    let cpu_ticks = num(11) + num(12);
    let start_ticks = num(19);
    let status = read(Path::new(&format!("/proc/{pid}/status"))).unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let started = start_ticks as f64 / tck as f64;
    let elapsed = (uptime - started).max(0.001);
    let c = ((cpu_ticks as f64 / tck as f64) / elapsed * 100.0) as u64;
    let start_epoch = boot + started as i64;
    let stime = time::OffsetDateTime::from_unix_timestamp(start_epoch)
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_else(|_| "?".into());
    let tty_s = if tty == 0 {
        "?".to_string()
    } else {
        let major = (tty >> 8) & 0xfff;
        let minor = (tty & 0xff) | ((tty >> 12) & 0xfff00);
        if (136..=143).contains(&major) {
            format!("pts/{}", (major - 136) * 256 + minor)
        } else {
            format!("tty{minor}")
        }
    };
    let cmdline = read(Path::new(&format!("/proc/{pid}/cmdline"))).unwrap_or_default();
    let cmd = cmdline
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let cmd = if cmd.is_empty() {
        format!("[{comm}]")
    } else {
        cmd
    };
    Some(vec![
        user_name(uid, passwd),
        pid.to_string(),
        ppid.to_string(),
        c.to_string(),
        stime,
        tty_s,
        ps_time(cpu_ticks / tck),
        cmd,
    ])
}

fn cgroup_rel(info: &ContainerInfo) -> String {
    crate::run::cgroup_path(&info.record.id)
}

impl Engine {
    /// `top`: docker's default `ps -ef` columns for every process of the container.
    pub fn top(&self, name_or_id: &str, ps_args: &[String]) -> Result<TopResult, EngineError> {
        let info = self.container(name_or_id)?;
        let id = info.record.id.to_string();
        if !(matches!(info.state.status(), Status::Running | Status::Paused)
            && info.state.process_alive())
        {
            return Err(StateConflict::NotRunning { id }.into());
        }
        let args = ps_args.join(" ");
        if !matches!(args.as_str(), "" | "-ef" | "-e" | "-f" | "-e -f" | "-f -e") {
            return Err(ValidationError::TopOptionsUnsupported { args }.into());
        }
        let pids = Cgroup::open(&cgroup_rel(&info)).pids()?;
        let passwd = read(Path::new("/etc/passwd")).unwrap_or_default();
        let uptime: f64 = read(Path::new("/proc/uptime"))
            .and_then(|u| u.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let boot = now - uptime as i64;
        let tck = clk_tck();
        let processes = pids
            .iter()
            .filter_map(|&p| ps_row(p, &passwd, uptime, boot, tck))
            .collect();
        Ok(TopResult {
            titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            processes,
        })
    }

    /// Containers `stats` shows: the named ones (errors for missing names), else the running
    /// ones (all with `all`).
    pub fn stats_targets(
        &self,
        names: &[String],
        all: bool,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        if names.is_empty() {
            return self.containers(all);
        }
        names.iter().map(|n| self.container(n)).collect()
    }

    /// One reading of `info`'s counters (zeros for a container that is not running).
    pub fn stats_sample(&self, info: &ContainerInfo) -> StatsSample {
        let mut s = StatsSample {
            id: info.record.id.to_string(),
            name: info.record.name.clone(),
            running: info.state.process_alive(),
            online_cpus: online_cpus(),
            system_ns: system_ns(),
            ..Default::default()
        };
        if !s.running {
            return s;
        }
        cgroup_counters(&mut s, &cgroup_rel(info));
        if info.record.host_config.network_mode != NetworkMode::Host {
            (s.net_rx, s.net_tx) = net_bytes(info.state.pid);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_like_docker() {
        let a = StatsSample {
            cpu_usage_ns: 1_000,
            system_ns: 10_000,
            online_cpus: 2,
            ..Default::default()
        };
        let b = StatsSample {
            cpu_usage_ns: 2_000,
            system_ns: 20_000,
            online_cpus: 2,
            ..Default::default()
        };
        assert!((b.cpu_percent(Some(&a)) - 20.0).abs() < 1e-9);
        assert_eq!(b.cpu_percent(None), 0.0);
    }

    #[test]
    fn parsers() {
        assert_eq!(
            keyed("cache 5\ntotal_inactive_file 7\n", "total_inactive_file"),
            Some(7)
        );
        assert_eq!(ps_time(3725), "01:02:05");
        assert_eq!(ps_time(90061), "1-01:01:01");
        let pw = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        assert_eq!(user_name(65534, pw), "nobody");
        assert_eq!(user_name(42, pw), "42");
        assert!(ps_row(std::process::id() as i32, pw, 1e6, 0, 100).is_some());
    }
}
