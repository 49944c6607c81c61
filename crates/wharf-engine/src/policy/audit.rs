//! The audit log: one JSON line per policy decision (allowed and refused), appended with a
//! single `write(2)` on an `O_APPEND` descriptor (so concurrent wharf processes never
//! interleave a line), size-rotated to `<path>.1`. No fsync: it is on the start path.
//! A log that cannot be written is reported on stderr and never blocks or fails the
//! operation it records (the decision itself is enforced either way).

use std::path::Path;

/// One decision.
pub struct Record<'a> {
    /// Who asked: the CLI's own user, or an API connection's peer (SO_PEERCRED).
    pub caller: &'a crate::Caller,
    pub action: &'a str,
    pub target: &'a str,
    /// The rule that refused, or "" when allowed.
    pub rule: &'a str,
    pub allowed: bool,
    pub reason: &'a str,
}

fn command_line() -> String {
    let mut s: String = std::env::args()
        .map(|a| a.replace('\0', ""))
        .collect::<Vec<_>>()
        .join(" ");
    if s.len() > 1024 {
        let mut cut = 1024;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The kernel's login uid (`/proc/self/loginuid`: who logged in, kept across `sudo`/`su`);
/// `None` when unset.
fn login_uid() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/loginuid").ok()?;
    s.trim().parse::<u32>().ok().filter(|u| *u != u32::MAX)
}

/// The JSON line for `r` (ends with a newline).
pub(crate) fn line(r: &Record<'_>) -> String {
    let v = serde_json::json!({
        "time": crate::timefmt::now_rfc3339(),
        "uid": nix::unistd::getuid().as_raw(),
        "auid": login_uid(),
        "caller_uid": r.caller.uid,
        "caller_gid": r.caller.gid,
        "caller_pid": r.caller.pid,
        "pid": std::process::id(),
        "command": command_line(),
        "action": r.action,
        "target": r.target,
        "rule": r.rule,
        "result": if r.allowed { "allowed" } else { "refused" },
        "reason": r.reason,
    });
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// Appends `r` to the log at `path`, first rotating it when it is over `max_size` bytes.
pub(crate) fn append(path: &Path, max_size: u64, r: &Record<'_>) {
    if let Err(e) = try_append(path, max_size, r) {
        eprintln!("wharf: audit log {}: {e}", path.display());
    }
}

fn try_append(path: &Path, max_size: u64, r: &Record<'_>) -> std::io::Result<()> {
    crate::jsonl::append(path, max_size, &line(r))
}
