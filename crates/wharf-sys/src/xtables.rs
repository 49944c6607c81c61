//! Legacy iptables (x_tables) read in-process: the policy of a built-in chain of an IPv4
//! table, from the kernel's own copy of the table (`getsockopt` `IPT_SO_GET_INFO`, then
//! `IPT_SO_GET_ENTRIES` on a raw socket), as `iptables-legacy -S` reads it — without running
//! the binary (a process per container start).
//!
//! The table is kernel-made data, still read defensively: its size is capped
//! ([`MAX_TABLE`]), every offset is checked against the bytes the kernel returned, and a table
//! that changed between the two calls (`EAGAIN`) is read again a few times. Works in the
//! calling thread's network namespace. Must not be called for a table that is not loaded:
//! asking for it makes the kernel load its module (check `/proc/net/ip_tables_names`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `IPT_BASE_CTL` + 0 and + 1 (`linux/netfilter_ipv4/ip_tables.h`).
const IPT_SO_GET_INFO: libc::c_int = 64;
const IPT_SO_GET_ENTRIES: libc::c_int = 65;
/// `XT_TABLE_MAXNAMELEN`.
const NAME_LEN: usize = 32;
/// `struct ipt_getinfo`: name, valid_hooks, hook_entry[5], underflow[5], num_entries, size.
const INFO_LEN: usize = NAME_LEN + 4 + 5 * 4 + 5 * 4 + 4 + 4;
/// `struct ipt_entry` up to its matches: `ipt_ip` (84), nfcache, target_offset,
/// next_offset, comefrom, counters (two u64).
const ENTRY_TARGET_OFFSET_AT: usize = 88;
/// `struct xt_entry_target`'s header before a standard target's verdict.
const TARGET_HEADER: usize = 32;
/// The largest table read (a host with tens of thousands of rules has a few MiB).
pub const MAX_TABLE: usize = 64 << 20;

/// A built-in chain (`NF_INET_*` hook number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PreRouting = 0,
    LocalIn = 1,
    Forward = 2,
    LocalOut = 3,
    PostRouting = 4,
}

/// A built-in chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
    /// Any other verdict (the raw standard-target verdict).
    Other(i32),
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("legacy iptables table: {what}"),
    )
}

fn getsockopt(sock: &OwnedFd, opt: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).map_err(|_| invalid("too large"))?;
    // SAFETY: `buf` is valid for writes of `len` bytes, which the kernel never exceeds, and
    // `len` is a valid socklen_t it may update; the fd is a live socket.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            opt,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len as usize)
}

/// The table's name field: NUL-padded, at most `NAME_LEN - 1` bytes.
fn name_field(table: &str) -> io::Result<[u8; NAME_LEN]> {
    let mut name = [0u8; NAME_LEN];
    if table.is_empty() || table.len() >= NAME_LEN || table.as_bytes().contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid x_tables table name {table:?}"),
        ));
    }
    name[..table.len()].copy_from_slice(table.as_bytes());
    Ok(name)
}

/// The policy of `hook`'s built-in chain in the legacy IPv4 `table` (`filter`, `nat`, …) of
/// the calling thread's network namespace; `None` when the table has no such chain.
/// `ENOENT` when the table does not exist.
pub fn ipv4_policy(table: &str, hook: Hook) -> io::Result<Option<Policy>> {
    let name = name_field(table)?;
    // SAFETY: socket(2) with constant arguments; a non-negative result is a new fd.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    for _ in 0..8 {
        match read_policy(&sock, &name, hook) {
            // the table changed between the two calls: its new size is asked again
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            r => return r,
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

fn read_policy(sock: &OwnedFd, name: &[u8; NAME_LEN], hook: Hook) -> io::Result<Option<Policy>> {
    let mut info = [0u8; INFO_LEN];
    info[..NAME_LEN].copy_from_slice(name);
    if getsockopt(sock, IPT_SO_GET_INFO, &mut info)? != INFO_LEN {
        return Err(invalid("short ipt_getinfo"));
    }
    let h = hook as usize;
    let valid_hooks = u32_at(&info, NAME_LEN).ok_or_else(|| invalid("no valid_hooks"))?;
    if valid_hooks & (1 << h) == 0 {
        return Ok(None);
    }
    let underflow = u32_at(&info, NAME_LEN + 4 + 20 + 4 * h).ok_or_else(|| invalid("hooks"))?;
    let size = u32_at(&info, NAME_LEN + 4 + 40 + 4).ok_or_else(|| invalid("no size"))? as usize;
    if size > MAX_TABLE {
        return Err(invalid(&format!("{size} bytes, more than {MAX_TABLE}")));
    }
    // `struct ipt_get_entries`: name, size, then the entries aligned as `ipt_entry` (u64)
    let align = std::mem::align_of::<u64>();
    let header = (NAME_LEN + 4).div_ceil(align) * align;
    let mut buf = vec![0u8; header + size];
    buf[..NAME_LEN].copy_from_slice(name);
    let size32 = u32::try_from(size).map_err(|_| invalid("size"))?;
    buf[NAME_LEN..NAME_LEN + 4].copy_from_slice(&size32.to_ne_bytes());
    let got = getsockopt(sock, IPT_SO_GET_ENTRIES, &mut buf)?;
    let entries = buf
        .get(header..got.min(buf.len()))
        .ok_or_else(|| invalid("short entries"))?;
    // the chain's policy is the standard target of the entry at its underflow
    let entry = underflow as usize;
    let target_offset = u16_at(entries, entry + ENTRY_TARGET_OFFSET_AT)
        .ok_or_else(|| invalid("underflow outside the table"))?;
    let target = entry + usize::from(target_offset);
    let target_size = u16_at(entries, target).ok_or_else(|| invalid("target outside"))?;
    let tname = entries
        .get(target + 2..target + 2 + 29)
        .ok_or_else(|| invalid("target name outside"))?;
    // the standard target's name is empty ("")
    if tname[0] != 0 || usize::from(target_size) < TARGET_HEADER + 4 {
        return Err(invalid("policy is not a standard target"));
    }
    let verdict =
        u32_at(entries, target + TARGET_HEADER).ok_or_else(|| invalid("verdict outside"))? as i32;
    // -NF_DROP - 1 and -NF_ACCEPT - 1
    Ok(Some(match verdict {
        -1 => Policy::Drop,
        -2 => Policy::Accept,
        v => Policy::Other(v),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked() {
        assert!(name_field("filter").is_ok());
        assert!(name_field("").is_err());
        assert!(name_field(&"x".repeat(32)).is_err());
        assert!(name_field("a\0b").is_err());
    }
}
