//! Where the server listens: a unix socket file made `root:<group>` 0660 (the group looked
//! up in /etc/group directly: a static binary has no NSS), root-only 0600 when the group
//! does not exist; or the socket systemd passed (`LISTEN_PID`/`LISTEN_FDS`, socket
//! activation). Readiness and stop are told to systemd with `sd_notify`'s datagram
//! (`$NOTIFY_SOCKET`), without libsystemd.
//!
//! Must not: leave a window in which the socket is reachable with looser permissions than
//! asked (it is made in a private directory and renamed into place), follow a stale path
//! that is not a socket, or read /etc/group unbounded.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The default socket (`-H unix:///run/wharf/wharf.sock`).
pub const DEFAULT_SOCKET: &str = "/run/wharf/wharf.sock";
/// The default group allowed on the socket.
pub const DEFAULT_GROUP: &str = "wharf";
/// The largest /etc/group read.
const GROUP_FILE_MAX: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("unsupported listen address {addr:?}: only unix:///path is served")]
    Address { addr: String },
    #[error("{path} exists and is not a socket")]
    NotASocket { path: String },
    #[error("another server is listening on {path}")]
    InUse { path: String },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl wharf_types::error::HasKind for ListenError {
    fn kind(&self) -> wharf_types::ErrorKind {
        use wharf_types::ErrorKind as K;
        match self {
            ListenError::Address { .. } => K::InvalidArgument,
            ListenError::NotASocket { .. } | ListenError::InUse { .. } => K::Conflict,
            ListenError::Io { .. } => K::Internal,
        }
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ListenError {
    let path = path.display().to_string();
    move |source| ListenError::Io { what, path, source }
}

/// `unix:///run/wharf/wharf.sock` (or a bare absolute path) → the path.
pub fn parse_host(addr: &str) -> Result<PathBuf, ListenError> {
    let p = addr.strip_prefix("unix://").unwrap_or(addr);
    if !p.starts_with('/') {
        return Err(ListenError::Address { addr: addr.into() });
    }
    Ok(PathBuf::from(p))
}

/// The gid of `name` in a group file (`/etc/group` format), read bounded.
pub fn group_gid(file: &Path, name: &str) -> Result<Option<u32>, ListenError> {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", file)(e)),
    };
    let mut text = String::new();
    f.take(GROUP_FILE_MAX)
        .read_to_string(&mut text)
        .map_err(io("read", file))?;
    Ok(text.lines().find_map(|l| {
        let mut it = l.split(':');
        (it.next()? == name).then_some(())?;
        it.nth(1)?.trim().parse().ok()
    }))
}

/// The socket made by [`bind`].
pub struct Bound {
    pub listener: UnixListener,
    pub path: PathBuf,
    /// The group given access, or `None` (root only) with why.
    pub gid: Option<u32>,
    pub warning: Option<String>,
}

/// Makes the socket at `path`: `root:<group>` 0660, or 0600 when `group` is not in
/// `group_file`. A stale socket (nobody listening) is replaced; a live one or another kind
/// of file is an error.
pub fn bind(path: &Path, group: &str, group_file: &Path) -> Result<Bound, ListenError> {
    let show = || path.display().to_string();
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ListenError::InUse { path: show() });
            }
            std::fs::remove_file(path).map_err(io("remove stale socket", path))?;
        }
        Ok(_) => return Err(ListenError::NotASocket { path: show() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("stat", path)(e)),
    }
    let gid = group_gid(group_file, group)?;
    // made in a private directory, its owner and mode set there, then renamed into place:
    // nobody can connect before the permissions are final
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wharf.sock".into());
    let tmpdir = parent.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmpdir);
    std::fs::create_dir(&tmpdir).map_err(io("create", &tmpdir))?;
    let result = (|| {
        std::fs::set_permissions(&tmpdir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("chmod", &tmpdir))?;
        let tmp = tmpdir.join(&name);
        let listener = UnixListener::bind(&tmp).map_err(io("bind", &tmp))?;
        let mode = if gid.is_some() { 0o660 } else { 0o600 };
        std::os::unix::fs::chown(&tmp, Some(0), gid).map_err(io("chown", &tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(io("chmod", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("rename into place", path))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&tmpdir);
    let listener = result?;
    let warning = gid.is_none().then(|| {
        format!(
            "group {group:?} not found in {}: {} is root-only (0600); create the group to let its members use the API",
            group_file.display(),
            show()
        )
    });
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        gid,
        warning,
    })
}

/// systemd socket activation: the number of sockets passed (`LISTEN_FDS`, starting at fd
/// 3) when `LISTEN_PID` is this process. The variables are removed so that nothing this
/// process starts sees them.
pub fn systemd_fds() -> Option<usize> {
    let pid = std::env::var("LISTEN_PID").ok()?;
    let n = std::env::var("LISTEN_FDS").ok()?;
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    if pid.trim().parse::<u32>().ok()? != std::process::id() {
        return None;
    }
    n.trim().parse::<usize>().ok().filter(|n| *n >= 1)
}

/// The first fd systemd passes.
pub const SD_LISTEN_FDS_START: i32 = 3;

/// `sd_notify(state)`: one datagram to `$NOTIFY_SOCKET` (a path, or `@name` in the
/// abstract namespace); nothing without it. Failures are ignored, as libsystemd's are.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let t = target.to_string_lossy();
    if let Some(name) = t.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
            let _ = sock.send_to_addr(state.as_bytes(), &addr);
        }
    } else {
        let _ = sock.send_to(state.as_bytes(), Path::new(&*t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_hosts() {
        let t = std::env::temp_dir().join(format!("wharf-api-group-{}", std::process::id()));
        std::fs::write(&t, "root:x:0:\nwharf:x:998:alice,bob\nbad:x:zz:\n").unwrap();
        assert_eq!(group_gid(&t, "wharf").unwrap(), Some(998));
        assert_eq!(group_gid(&t, "bad").unwrap(), None);
        assert_eq!(group_gid(&t, "nobody").unwrap(), None);
        let _ = std::fs::remove_file(&t);
        assert_eq!(
            parse_host("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert!(parse_host("tcp://0.0.0.0:2375").is_err());
    }
}
