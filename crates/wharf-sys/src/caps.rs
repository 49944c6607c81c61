//! Linux capabilities: the name <-> number table, capget/capset (version 3, two 32-bit words),
//! the bounding set (PR_CAPBSET_READ/DROP), the ambient set and PR_SET_KEEPCAPS.
//!
//! Owns only the raw kernel interface; which capabilities a container gets is policy and lives
//! in `wharf_runtime::caps`. Functions act on the calling thread (capabilities are per thread),
//! so they are meant for the single-threaded container init.

use std::io;

/// Every capability the kernel headers know, indexed by number (CAP_CHOWN = 0 ...
/// CAP_CHECKPOINT_RESTORE = 40). Names are without the `CAP_` prefix.
pub const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Number of a capability name (without `CAP_`, upper case).
pub fn cap_number(name: &str) -> Option<u32> {
    CAP_NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// Name of a capability number, if wharf knows it.
pub fn cap_name(nr: u32) -> Option<&'static str> {
    CAP_NAMES.get(nr as usize).copied()
}

/// Highest capability number the running kernel supports, from
/// /proc/sys/kernel/cap_last_cap, capped to the table wharf knows. Falls back to probing
/// PR_CAPBSET_READ when /proc is not available.
pub fn last_cap() -> u32 {
    let known = (CAP_NAMES.len() - 1) as u32;
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap") {
        if let Ok(n) = s.trim().parse::<u32>() {
            return n.min(known);
        }
    }
    let mut last = 0;
    for nr in 0..=known {
        if bounding_read(nr).is_ok() {
            last = nr;
        } else {
            break;
        }
    }
    last
}

/// Whether `nr` is in the calling thread's bounding set. Err(EINVAL) when the kernel does not
/// know the capability.
pub fn bounding_read(nr: u32) -> io::Result<bool> {
    // SAFETY: PR_CAPBSET_READ takes an integer argument and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, nr as libc::c_ulong, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r == 1)
}

/// Remove `nr` from the calling thread's bounding set (needs CAP_SETPCAP).
pub fn bounding_drop(nr: u32) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes an integer argument and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, nr as libc::c_ulong, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clear the ambient capability set. Kernels before 4.3 have no ambient set: EINVAL is
/// treated as success because there is nothing to clear.
pub fn ambient_clear_all() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT with PR_CAP_AMBIENT_CLEAR_ALL takes integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Set or clear PR_SET_KEEPCAPS (keep permitted caps across setuid from 0 to non-0).
pub fn set_keepcaps(on: bool) -> io::Result<()> {
    // SAFETY: PR_SET_KEEPCAPS takes an integer argument and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The three capability sets of a thread as 64-bit masks (bit n = capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capget(2) for the calling thread.
pub fn get() -> io::Result<CapSets> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: hdr points to a valid v3 header and data to the two-element array v3 requires;
    // both outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| (u64::from(hi) << 32) | u64::from(lo);
    Ok(CapSets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// capset(2) for the calling thread.
pub fn set(sets: CapSets) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: hdr is a valid v3 header and data the two-element array v3 requires; the
    // kernel only reads data. Both outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's bounding set as a mask (bits 0..=last_cap()).
pub fn bounding_mask() -> u64 {
    let mut mask = 0u64;
    for nr in 0..=last_cap() {
        if let Ok(true) = bounding_read(nr) {
            mask |= 1 << nr;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips() {
        assert_eq!(cap_number("CHOWN"), Some(0));
        assert_eq!(cap_number("SYS_ADMIN"), Some(21));
        assert_eq!(cap_number("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_name(39), Some("BPF"));
        assert_eq!(cap_number("NOPE"), None);
    }

    #[test]
    fn reads_own_sets() {
        let s = get().expect("capget");
        assert_eq!(s.effective & !s.permitted, 0);
        assert!(last_cap() >= 36);
        assert!(bounding_read(0).is_ok());
    }
}
