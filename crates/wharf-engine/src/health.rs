//! Healthchecks run by the monitor (no systemd timers): the record's `Healthcheck` (image
//! HEALTHCHECK merged with `--health-*`), docker's defaults (interval 30 s, timeout 30 s,
//! start period 0, retries 3), one probe at a time through `exec` in capture mode. The monitor
//! calls [`Prober::tick`] from its poll loop and records the results in `State.Health`.
//! Must not: block the monitor (probes are polled, never waited for).

use crate::exec::ExecRequest;
use crate::run::ContainerInfo;
use crate::state::HealthLog;
use crate::timefmt::now_rfc3339;
use crate::Engine;
use std::time::{Duration, Instant};
use wharf_runtime::exec::{ExecIo, ExecRunning};

const OUTPUT_CAP: usize = 4096;

/// The probe command of a record, or None when there is no (or a disabled) healthcheck.
pub fn probe_command(test: &[String]) -> Option<Vec<String>> {
    match test.first().map(String::as_str) {
        Some("CMD") if test.len() > 1 => Some(test[1..].to_vec()),
        Some("CMD-SHELL") if test.len() > 1 => {
            Some(vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")])
        }
        _ => None,
    }
}

/// A configured duration (0/absent: `default`), never below docker's 1 ms minimum: create
/// refuses shorter ones from the caller, but an image's HEALTHCHECK is taken as it is.
fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => {
            Duration::from_nanos(n.max(crate::create::HEALTH_MIN_DURATION_NS) as u64)
        }
        _ => default,
    }
}

pub struct Prober {
    cmd: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    pub retries: u32,
    started: Instant,
    next: Instant,
    current: Option<(ExecRunning, Instant, String)>,
}

impl Prober {
    pub fn new(info: &ContainerInfo) -> Option<Prober> {
        let h = info.record.config.healthcheck.as_ref()?;
        let cmd = probe_command(&h.test)?;
        let interval = dur(h.interval, Duration::from_secs(30));
        let now = Instant::now();
        Some(Prober {
            cmd,
            interval,
            timeout: dur(h.timeout, Duration::from_secs(30)),
            start_period: dur(h.start_period, Duration::ZERO),
            retries: h.retries.filter(|r| *r > 0).unwrap_or(3) as u32,
            started: now,
            next: now + interval,
            current: None,
        })
    }

    pub fn in_start_period(&self) -> bool {
        self.started.elapsed() < self.start_period
    }

    /// How long the monitor may sleep before the next `tick`.
    pub fn wait_hint(&self) -> Duration {
        if self.current.is_some() {
            Duration::from_millis(20)
        } else {
            self.next.saturating_duration_since(Instant::now())
        }
    }

    /// Starts a due probe, or completes the running one: returns a finished probe's result.
    pub fn tick(&mut self, engine: &Engine, info: &ContainerInfo) -> Option<HealthLog> {
        if let Some((run, since, start)) = &mut self.current {
            let done = match run.wait_timeout(Duration::ZERO) {
                Ok(Some(st)) => Some((
                    st.code(),
                    String::from_utf8_lossy(&run.output()).into_owned(),
                )),
                Ok(None) if since.elapsed() >= self.timeout => {
                    run.kill();
                    Some((
                        -1,
                        format!("Health check exceeded timeout ({:?})", self.timeout),
                    ))
                }
                Ok(None) => None,
                Err(e) => Some((-1, e.to_string())),
            };
            let (code, output) = done?;
            let start = std::mem::take(start);
            self.current = None;
            self.next = Instant::now() + self.interval;
            return Some(HealthLog {
                start,
                end: now_rfc3339(),
                exit_code: code,
                output,
            });
        }
        if Instant::now() < self.next {
            return None;
        }
        let req = ExecRequest {
            cmd: self.cmd.clone(),
            ..Default::default()
        };
        let start = now_rfc3339();
        let run = engine.exec_spec(info, &req).and_then(|spec| {
            let opts = wharf_runtime::exec::ExecOptions {
                seccomp_cache_dir: engine.seccomp_cache_dir(),
                io: ExecIo::Capture {
                    max_bytes: OUTPUT_CAP,
                },
            };
            wharf_runtime::exec::exec(&spec, &opts).map_err(crate::EngineError::Start)
        });
        match run {
            Ok(r) => {
                self.current = Some((r, Instant::now(), start));
                None
            }
            Err(e) => {
                self.next = Instant::now() + self.interval;
                Some(HealthLog {
                    start,
                    end: now_rfc3339(),
                    exit_code: -1,
                    output: e.to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_floor() {
        let d = Duration::from_secs(30);
        assert_eq!(dur(Some(1), d), Duration::from_millis(1));
        assert_eq!(dur(Some(2_000_000), d), Duration::from_millis(2));
        assert_eq!(dur(Some(0), d), d);
        assert_eq!(dur(None, d), d);
        assert_eq!(dur(Some(-5), d), d);
    }

    #[test]
    fn commands() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            probe_command(&s(&["CMD-SHELL", "test -f /x"])),
            Some(s(&["/bin/sh", "-c", "test -f /x"]))
        );
        assert_eq!(probe_command(&s(&["CMD", "true"])), Some(s(&["true"])));
        assert_eq!(probe_command(&s(&["NONE"])), None);
        assert_eq!(probe_command(&[]), None);
    }
}
