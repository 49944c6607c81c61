use super::*;
use crate::caps::tests::{in_child, run_child};

const SYS_ADMIN_CAPS: &[&str] = &["SYS_ADMIN"];

fn caps(v: &[&str]) -> Vec<String> {
    v.iter().map(|c| c.to_string()).collect()
}

/// A tiny classic-BPF interpreter for the instructions the emitter produces, evaluating
/// the program on a synthetic `seccomp_data`.
fn run(bpf: &[u8], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let insns: Vec<(u16, u8, u8, u32)> = bpf
        .chunks_exact(8)
        .map(|c| {
            (
                u16::from_ne_bytes([c[0], c[1]]),
                c[2],
                c[3],
                u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let (code, jt, jf, k) = insns[pc];
        pc += 1;
        let jump = |cond: bool| if cond { jt as usize } else { jf as usize };
        match code {
            LD_W_ABS => {
                let k = k as usize;
                acc = u32::from_ne_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
            }
            AND_K => acc &= k,
            JEQ_K => pc += jump(acc == k),
            JGT_K => pc += jump(acc > k),
            JGE_K => pc += jump(acc >= k),
            RET_K => return k,
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

const X86_64: u32 = 0xc000_003e;
const ALLOW: u32 = 0x7fff_0000;
const EPERM_RET: u32 = 0x0005_0001;
const ENOSYS_RET: u32 = 0x0005_0026;

fn nr(name: &str) -> u32 {
    wharf_sys::seccomp::syscall_number(name).expect("known syscall")
}

#[test]
fn default_profile_semantics() {
    let dflt = crate::caps::docker_default();
    let bpf = compile(DEFAULT_PROFILE, &dflt).expect("compile default");
    assert_eq!(bpf.len() % 8, 0);
    let r = |name: &str, args: [u64; 6]| run(&bpf, X86_64, nr(name), args);
    let z = [0u64; 6];
    assert_eq!(r("read", z), ALLOW);
    assert_eq!(r("getpid", z), ALLOW);
    assert_eq!(r("execve", z), ALLOW);
    assert_eq!(r("chroot", z), ALLOW, "SYS_CHROOT is a default cap");
    assert_eq!(r("mount", z), EPERM_RET);
    assert_eq!(r("umount2", z), EPERM_RET);
    assert_eq!(r("reboot", z), EPERM_RET);
    assert_eq!(r("unshare", z), EPERM_RET);
    assert_eq!(r("setns", z), EPERM_RET);
    assert_eq!(r("bpf", z), EPERM_RET);
    assert_eq!(r("init_module", z), EPERM_RET);
    assert_eq!(r("kexec_load", z), EPERM_RET);
    assert_eq!(r("open_by_handle_at", z), EPERM_RET);
    // moby denies io_uring since 2023
    assert_eq!(r("io_uring_setup", z), EPERM_RET);
    assert_eq!(r("io_uring_enter", z), EPERM_RET);
    assert_eq!(r("io_uring_register", z), EPERM_RET);
    assert_eq!(r("clone3", z), ENOSYS_RET);
    // clone: plain fork/thread flags yes, namespace flags no.
    let thread_flags = 0x003d_0f00u64;
    assert_eq!(r("clone", [thread_flags, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("clone", [0x1000_0000 | 17, 0, 0, 0, 0, 0]), EPERM_RET); // NEWUSER
    assert_eq!(r("clone", [0x0002_0000, 0, 0, 0, 0, 0]), EPERM_RET); // NEWNS
    assert_eq!(r("clone", [0x4000_0000, 0, 0, 0, 0, 0]), EPERM_RET); // NEWNET
                                                                     // socket: everything but AF_VSOCK; 64-bit compare (upper word set is not 40).
    assert_eq!(r("socket", [2, 1, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("socket", [40, 1, 0, 0, 0, 0]), EPERM_RET);
    assert_eq!(r("socket", [(1 << 32) | 40, 1, 0, 0, 0, 0]), ALLOW);
    // personality: only the listed values.
    assert_eq!(r("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("personality", [0, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("personality", [0x0020_0000, 0, 0, 0, 0, 0]), EPERM_RET); // READ_IMPLIES_EXEC
                                                                           // wrong arch is killed, x32 numbers denied, unknown numbers denied.
    assert_eq!(run(&bpf, 0x4000_0003, 0, z), 0x8000_0000);
    assert_eq!(run(&bpf, X86_64, 0x4000_0000, z), ENOSYS_RET);
    assert_eq!(run(&bpf, X86_64, 1000, z), EPERM_RET);
}

#[test]
fn caps_open_gated_groups() {
    let mut c = crate::caps::docker_default();
    c.extend(caps(SYS_ADMIN_CAPS));
    c.push("SYS_BOOT".into());
    c.push("CAP_SYS_PTRACE".into());
    let bpf = compile(DEFAULT_PROFILE, &c).expect("compile");
    let r = |name: &str, a0: u64| run(&bpf, X86_64, nr(name), [a0, 0, 0, 0, 0, 0]);
    assert_eq!(r("mount", 0), ALLOW);
    assert_eq!(r("unshare", 0), ALLOW);
    assert_eq!(r("clone", 0x1000_0000), ALLOW);
    assert_eq!(r("clone3", 0), ALLOW);
    assert_eq!(r("reboot", 0), ALLOW);
    assert_eq!(r("ptrace", 0), ALLOW);
    assert_eq!(r("init_module", 0), EPERM_RET);
    // Without SYS_CHROOT, chroot is gone.
    let bpf = compile(DEFAULT_PROFILE, &caps(&["CHOWN"])).expect("compile");
    assert_eq!(run(&bpf, X86_64, nr("chroot"), [0; 6]), EPERM_RET);
}

#[test]
fn comparison_ops_64bit() {
    let prof = |op: &str, v: u64, v2: u64| {
        format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["read"],
            "action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{{"index":2,"value":{v},
            "valueTwo":{v2},"op":"{op}"}}]}}]}}"#
        )
    };
    let hit = |op: &str, v: u64, v2: u64, arg: u64| {
        let bpf = compile(&prof(op, v, v2), &[]).expect("compile");
        run(&bpf, X86_64, 0, [0, 0, arg, 0, 0, 0]) == 0x0005_0005
    };
    let big = 0x1_0000_0005u64;
    for (op, f) in [
        (
            "SCMP_CMP_EQ",
            (|a: u64, b: u64| a == b) as fn(u64, u64) -> bool,
        ),
        ("SCMP_CMP_NE", |a, b| a != b),
        ("SCMP_CMP_LT", |a, b| a < b),
        ("SCMP_CMP_LE", |a, b| a <= b),
        ("SCMP_CMP_GT", |a, b| a > b),
        ("SCMP_CMP_GE", |a, b| a >= b),
    ] {
        for arg in [0, 4, 5, 6, big - 1, big, big + 1, 0x5, u64::MAX] {
            for v in [5u64, big] {
                assert_eq!(hit(op, v, 0, arg), f(arg, v), "{op} arg={arg:#x} v={v:#x}");
            }
        }
    }
    assert!(hit("SCMP_CMP_MASKED_EQ", 0xff00_0000_00ff, 0x12, 0xab12));
    assert!(!hit(
        "SCMP_CMP_MASKED_EQ",
        0xff00_0000_00ff,
        0x12,
        0x0100_0000_0012
    ));
}

#[test]
fn malformed_and_unsupported_profiles() {
    assert!(matches!(
        compile("{not json", &[]),
        Err(SeccompError::Parse { .. })
    ));
    assert!(matches!(
        compile(r#"{"syscalls":[]}"#, &[]),
        Err(SeccompError::Parse { .. })
    ));
    assert!(matches!(
        compile(r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#, &[]),
        Err(SeccompError::Unsupported { .. })
    ));
    assert!(matches!(
        compile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#, &[]),
        Err(SeccompError::Unsupported { .. })
    ));
    let bad_op = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
        "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#;
    assert!(matches!(
        compile(bad_op, &[]),
        Err(SeccompError::Invalid { .. })
    ));
    let bad_idx = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
        "action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#;
    assert!(matches!(
        compile(bad_idx, &[]),
        Err(SeccompError::Invalid { .. })
    ));
    // Unknown names are skipped, not errors.
    let unknown = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["chown32",
        "no_such_syscall","getpid"],"action":"SCMP_ACT_ALLOW"}]}"#;
    let bpf = compile(unknown, &[]).expect("unknown names skipped");
    assert_eq!(run(&bpf, X86_64, nr("getpid"), [0; 6]), ALLOW);
}

/// Loads the default filter in a child (the filter is per thread and irreversible) and
/// checks real syscalls against the kernel.
#[test]
fn default_filter_in_kernel() {
    const NAME: &str = "seccomp::tests::default_filter_in_kernel";
    if in_child(NAME) {
        std::process::exit(child_checks(false));
    }
    let st = run_child(NAME, std::process::Stdio::null())
        .wait()
        .expect("wait");
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn sys_admin_filter_in_kernel() {
    const NAME: &str = "seccomp::tests::sys_admin_filter_in_kernel";
    if in_child(NAME) {
        std::process::exit(child_checks(true));
    }
    let st = run_child(NAME, std::process::Stdio::null())
        .wait()
        .expect("wait");
    assert_eq!(st.code(), Some(0), "{st:?}");
}

const PY_PROBE: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
r = libc.syscall(L(169), L(0), L(0), L(0), L(0))
print("reboot", 0 if r >= 0 else ctypes.get_errno())
r = libc.syscall(L(56), L(0x10000000 | 17), L(0), L(0), L(0), L(0))
if r == 0:
    os._exit(0)
e = 0 if r >= 0 else ctypes.get_errno()
if r > 0:
    os.waitpid(r, 0)
print("clone_newuser", e)
r = libc.syscall(L(425), L(1), L(0))
print("io_uring_setup", 0 if r >= 0 else ctypes.get_errno())
for v in (0xffffffff, 0x20000, 0x8, 0, 0x400000):
    r = libc.syscall(L(135), ctypes.c_ulong(v))
    print("personality", hex(v), 0 if r >= 0 else ctypes.get_errno())
"#;

fn child_checks(sys_admin: bool) -> i32 {
    use nix::errno::Errno;
    let mut c = crate::caps::docker_default();
    if sys_admin {
        c.push("SYS_ADMIN".into());
    }
    let bpf = match compile(DEFAULT_PROFILE, &c) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("compile: {e}");
            return 10;
        }
    };
    if let Err(e) = wharf_sys::seccomp::set_no_new_privs() {
        eprintln!("nnp: {e}");
        return 11;
    }
    if let Err(e) = wharf_sys::seccomp::load(&bpf) {
        eprintln!("load: {e}");
        return 12;
    }
    let mut fails = 0;
    let mut check = |what: &str, ok: bool| {
        if !ok {
            eprintln!("FAILED: {what}");
            fails += 1;
        }
    };
    let m = nix::mount::mount(
        Some("none"),
        "/nonexistent-wharf-seccomp-test",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    if sys_admin {
        check("mount reaches the kernel", m == Err(Errno::ENOENT));
    } else {
        check("mount EPERM", m == Err(Errno::EPERM));
        // reboot(2) with a bad magic (EINVAL if it reaches the kernel, so never reboots)
        // and a raw clone(CLONE_NEWUSER|SIGCHLD): nix has no safe wrapper for either
        // in the enabled features and this crate forbids unsafe, so probe via python's
        // ctypes (the filter is inherited across execve).
        let probe = std::process::Command::new("/usr/bin/python3")
            .args(["-c", PY_PROBE])
            .output();
        let out = probe
            .map(|o| {
                if !o.status.success() {
                    eprintln!("python probe: {}", String::from_utf8_lossy(&o.stderr));
                }
                String::from_utf8_lossy(&o.stdout).into_owned()
            })
            .unwrap_or_else(|e| {
                eprintln!("python probe: {e}");
                String::new()
            });
        check("reboot EPERM", out.contains("reboot 1\n"));
        check("clone(NEWUSER) EPERM", out.contains("clone_newuser 1\n"));
        // EFAULT (NULL params) if it reached the kernel
        check("io_uring_setup EPERM", out.contains("io_uring_setup 1\n"));
        // personality: the query (0xffffffff) and the listed values pass the filter,
        // READ_IMPLIES_EXEC (0x400000) does not.
        for v in ["0xffffffff 0", "0x20000 0", "0x8 0", "0x0 0", "0x400000 1"] {
            check(v, out.contains(&format!("personality {v}\n")));
        }
        check(
            "unshare(NEWNS) EPERM",
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) == Err(Errno::EPERM),
        );
        check(
            "unshare(NEWUSER) EPERM",
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) == Err(Errno::EPERM),
        );
        let vs = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Vsock,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::empty(),
            None,
        );
        check("socket(AF_VSOCK) EPERM", vs.err() == Some(Errno::EPERM));
    }
    check(
        "getpid",
        nix::unistd::getpid().as_raw() == std::process::id() as i32,
    );
    let inet = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::empty(),
        None,
    );
    check("socket(AF_INET)", inet.is_ok());
    // Process creation still works: glibc tries clone3 (ENOSYS) then falls back to clone.
    let spawned = std::process::Command::new("/bin/true").status();
    check(
        "spawn /bin/true",
        spawned.map(|s| s.success()).unwrap_or(false),
    );
    let t = std::thread::spawn(|| 7).join();
    check("thread", t.ok() == Some(7));
    fails
}

#[test]
fn user_profile_allow_default_with_errno_rule() {
    const NAME: &str = "seccomp::tests::user_profile_allow_default_with_errno_rule";
    let prof = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
        "comment":"no directories"}]}"#;
    if in_child(NAME) {
        let dir = std::env::temp_dir().join(format!("wharf-seccomp-{}", std::process::id()));
        let ok = wharf_sys::seccomp::set_no_new_privs().is_ok()
            && compile(prof, &[])
                .ok()
                .is_some_and(|b| wharf_sys::seccomp::load(&b).is_ok());
        let mk = std::fs::create_dir(&dir);
        let _ = std::fs::remove_dir(&dir);
        let code = if !ok {
            2
        } else if mk.as_ref().err().and_then(|e| e.raw_os_error()) == Some(13) {
            0
        } else {
            3
        };
        std::process::exit(code);
    }
    let st = run_child(NAME, std::process::Stdio::null())
        .wait()
        .expect("wait");
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn prepare_caches_and_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = crate::caps::docker_default();
    let t0 = std::time::Instant::now();
    let first = prepare(&crate::spec::Seccomp::Default, &c, dir.path())
        .expect("prepare")
        .expect("some");
    let compile_time = t0.elapsed();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("readdir")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(files.len(), 1, "one cache entry, no temp files left");
    let t1 = std::time::Instant::now();
    let second = prepare(&crate::spec::Seccomp::Default, &c, dir.path())
        .expect("prepare")
        .expect("some");
    let load_time = t1.elapsed();
    assert_eq!(first, second);
    eprintln!(
        "seccomp default profile: compile+store {compile_time:?}, cache load {load_time:?}, {} insns",
        first.len() / 8
    );
    // Order of caps does not change the key; different caps do.
    let mut rev = c.clone();
    rev.reverse();
    prepare(&crate::spec::Seccomp::Default, &rev, dir.path()).expect("prepare");
    assert_eq!(std::fs::read_dir(dir.path()).expect("readdir").count(), 1);
    prepare(
        &crate::spec::Seccomp::Default,
        &caps(&["SYS_ADMIN"]),
        dir.path(),
    )
    .expect("prepare");
    assert_eq!(std::fs::read_dir(dir.path()).expect("readdir").count(), 2);
    // A corrupted entry is detected and replaced.
    let entry = files[0].path();
    std::fs::write(&entry, [0u8; 16]).expect("corrupt");
    let again = prepare(&crate::spec::Seccomp::Default, &c, dir.path())
        .expect("prepare")
        .expect("some");
    assert_eq!(again, first);
    assert_eq!(
        prepare(&crate::spec::Seccomp::Unconfined, &c, dir.path()).expect("unconfined"),
        None
    );
    assert!(prepare(&crate::spec::Seccomp::Profile("{".into()), &c, dir.path()).is_err());
}

/// Kernels before 4.14 kill a task whose filter returns an action they do not know: a profile
/// with SCMP_ACT_LOG is refused there with the reason; KILL_PROCESS becomes kill-thread.
#[test]
fn actions_fitted_to_the_kernel() {
    let profile = |a: &str| {
        format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getpid"],"action":"{a}"}}]}}"#
        )
    };
    let old = ""; // no actions_avail file: 3.10 .. 4.13
    let new = "kill_process kill_thread trap errno user_notif trace log allow";
    for (avail, log_ok) in [(old, false), (new, true)] {
        let (d, mut map) = resolve_profile(&profile("SCMP_ACT_LOG"), &[], (6, 1)).unwrap();
        let r = fit_actions(d, &mut map, avail);
        assert_eq!(r.is_ok(), log_ok, "{avail:?}: {r:?}");
        if let Err(e) = r {
            let msg = e.to_string();
            assert!(
                msg.contains("SCMP_ACT_LOG") && msg.contains("4.14"),
                "{msg}"
            );
        }
        let (d, mut map) = resolve_profile(&profile("SCMP_ACT_KILL_PROCESS"), &[], (6, 1)).unwrap();
        fit_actions(d, &mut map, avail).unwrap();
        let bpf = emit(Action::Allow, &map).unwrap();
        let ret = run(&bpf, X86_64, nr("getpid"), [0; 6]);
        assert_eq!(ret, if log_ok { 0x8000_0000 } else { 0 }, "{avail:?}");
    }
    // The default action too.
    let (d, mut map) = resolve_profile(r#"{"defaultAction":"SCMP_ACT_LOG"}"#, &[], (6, 1)).unwrap();
    assert!(fit_actions(d, &mut map, old).is_err());
}
