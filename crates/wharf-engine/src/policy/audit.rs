//! The audit log: one JSON line per policy decision (allowed and refused), appended with a
//! single `write(2)` on an `O_APPEND` descriptor (so concurrent wharf processes never
//! interleave a line), size-rotated to `<path>.1`. No fsync: it is on the start path.
//! A log that cannot be written is reported on stderr and never blocks or fails the
//! operation it records (the decision itself is enforced either way).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// One decision.
pub struct Record<'a> {
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

/// The JSON line for `r` (ends with a newline).
pub(crate) fn line(r: &Record<'_>) -> String {
    let v = serde_json::json!({
        "time": crate::timefmt::now_rfc3339(),
        "uid": nix::unistd::getuid().as_raw(),
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

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc_nofollow())
        .open(path)
}

/// `O_NOFOLLOW`: the log is never written through a symlink.
fn libc_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

fn try_append(path: &Path, max_size: u64, r: &Record<'_>) -> std::io::Result<()> {
    let data = line(r);
    let mut f = match open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open(path)?
        }
        Err(e) => return Err(e),
    };
    if max_size > 0 && f.metadata()?.len() + data.len() as u64 > max_size {
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(".1");
        // two processes may both rotate: the second renames a fresh, small file; no line is
        // lost because each write goes to whichever inode it opened
        std::fs::rename(path, &rotated)?;
        f = open(path)?;
    }
    f.write_all(data.as_bytes())
}
