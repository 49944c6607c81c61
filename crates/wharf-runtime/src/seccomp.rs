//! Seccomp: Docker-format JSON profiles (the built-in `resources/seccomp-default.json` and
//! `--security-opt seccomp=<file>` use the same parser) compiled to classic BPF, with an
//! on-disk cache of compiled programs.
//!
//! Owns: parsing, includes/excludes evaluation against the container's final capabilities,
//! BPF generation, the cache. Must not: load the filter (that is `wharf_sys::seccomp::load`,
//! called by init) or silently weaken a profile: anything it cannot express is an error.
//!
//! Why an own BPF emitter instead of `seccompiler`: seccompiler's filter has one match action
//! and one mismatch action, while Docker profiles mix actions (ALLOW rules plus `clone3 →
//! ERRNO(ENOSYS)` on top of an ERRNO(EPERM) default). Stacking several seccompiler filters does
//! not work either, since the kernel takes the most restrictive result across filters. The
//! emitter is ~150 lines and easy to test with the small BPF interpreter in the tests.
//!
//! Program shape (x86_64 only):
//! 1. `arch != AUDIT_ARCH_X86_64` → KILL_PROCESS; x32 syscalls (`nr & 0x40000000`) → ENOSYS.
//! 2. syscalls in ascending order; runs of consecutive numbers with the same unconditional
//!    action are one range test; a syscall with argument rules gets an inline block: each rule
//!    is an AND of 64-bit comparisons (hi and lo words) ending in its RET; a syscall's
//!    unconditional action (or the default) ends the block. Argument rules are tried before the
//!    unconditional rule of the same syscall, in profile order.
//! 3. RET default action.
//!
//! Unknown syscall names are skipped (as libseccomp does for names the architecture lacks);
//! rules whose action equals the default action are no-ops and skipped (as runc does).

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wharf_types::error::{ErrorKind, HasKind};

const DEFAULT_PROFILE: &str = include_str!("../../../resources/seccomp-default.json");
/// Bumped whenever the emitter changes, so old cache entries are not reused.
const COMPILER_VERSION: &str = "wharf-seccomp-bpf-1";
const ARCH: &str = "x86_64";
/// The Go architecture name Docker profiles use in includes/excludes `arches`.
const DOCKER_ARCH_NAMES: &[&str] = &["amd64", "x86_64", "SCMP_ARCH_X86_64"];
const EPERM: u16 = 1;
const ENOSYS: u16 = 38;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("invalid seccomp profile json")]
    Parse {
        #[source]
        source: serde_json::Error,
    },
    #[error("seccomp profile: {what}")]
    Invalid { what: String },
    #[error("seccomp profile: action {action} is not supported by wharf")]
    Unsupported { action: String },
    #[error("seccomp profile: action {action} is not supported by this kernel (it needs Linux {since}; /proc/sys/kernel/seccomp/actions_avail does not list it)")]
    KernelLacks {
        action: &'static str,
        since: &'static str,
    },
    #[error("seccomp profile compiles to {insns} instructions, more than the kernel's 4096")]
    TooLarge { insns: usize },
    #[error("seccomp cache {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for SeccompError {
    fn kind(&self) -> ErrorKind {
        match self {
            SeccompError::Parse { .. } | SeccompError::Invalid { .. } => ErrorKind::InvalidArgument,
            SeccompError::Unsupported { .. } => ErrorKind::NotImplemented,
            SeccompError::KernelLacks { .. } => ErrorKind::FailedPrecondition,
            SeccompError::TooLarge { .. } => ErrorKind::InvalidArgument,
            SeccompError::Cache { .. } => ErrorKind::Internal,
        }
    }
}

// ---------------------------------------------------------------- profile (Docker's format)

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u16>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    /// Legacy single-name form.
    name: Option<String>,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u16>,
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Trace(u16),
    Log,
}

impl Action {
    fn parse(s: &str, errno: Option<u16>, default_errno: u16) -> Result<Action, SeccompError> {
        Ok(match s {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(default_errno)),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_TRACE" => Action::Trace(errno.unwrap_or(0)),
            "SCMP_ACT_LOG" => Action::Log,
            other => {
                return Err(SeccompError::Unsupported {
                    action: other.to_string(),
                })
            }
        })
    }

    fn ret(self) -> u32 {
        match self {
            Action::Allow => 0x7fff_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::KillThread => 0,
            Action::KillProcess => 0x8000_0000,
            Action::Trap => 0x0003_0000,
            Action::Trace(d) => 0x7ff0_0000 | u32::from(d),
            Action::Log => 0x7ffc_0000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

#[derive(Debug, Clone, Copy)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

/// Rules for one syscall after includes/excludes: argument rules in order, then the
/// unconditional action if any.
#[derive(Debug, Default)]
struct SyscallRules {
    conditional: Vec<(Vec<Cond>, Action)>,
    unconditional: Option<Action>,
}

fn norm_cap(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").unwrap_or(&up).to_string()
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.trim().split('.');
    Some((
        it.next()?.parse().ok()?,
        it.next().unwrap_or("0").parse().ok()?,
    ))
}

/// Whether a rule applies for these caps/kernel (moby's logic: all included caps present,
/// no excluded cap present, arch in includes / not in excludes, kernel >= minKernel).
fn applies(rule: &Rule, caps: &[String], kernel: (u32, u32)) -> Result<bool, SeccompError> {
    let has = |c: &String| caps.contains(&norm_cap(c));
    let is_arch = |a: &String| DOCKER_ARCH_NAMES.contains(&a.as_str());
    if let Some(inc) = &rule.includes {
        if let Some(cs) = &inc.caps {
            if !cs.iter().all(has) {
                return Ok(false);
            }
        }
        if let Some(arches) = &inc.arches {
            if !arches.is_empty() && !arches.iter().any(is_arch) {
                return Ok(false);
            }
        }
        if let Some(mk) = &inc.min_kernel {
            let want = parse_kernel(mk).ok_or_else(|| SeccompError::Invalid {
                what: format!("bad minKernel {mk:?}"),
            })?;
            if kernel < want {
                return Ok(false);
            }
        }
    }
    if let Some(exc) = &rule.excludes {
        if exc.caps.as_ref().is_some_and(|cs| cs.iter().any(has)) {
            return Ok(false);
        }
        if exc.arches.as_ref().is_some_and(|a| a.iter().any(is_arch)) {
            return Ok(false);
        }
        if let Some(mk) = &exc.min_kernel {
            let want = parse_kernel(mk).ok_or_else(|| SeccompError::Invalid {
                what: format!("bad minKernel {mk:?}"),
            })?;
            if kernel >= want {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn parse_cond(a: &Arg) -> Result<Cond, SeccompError> {
    if a.index > 5 {
        return Err(SeccompError::Invalid {
            what: format!("argument index {} out of range 0..=5", a.index),
        });
    }
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => {
            return Err(SeccompError::Invalid {
                what: format!("unknown comparison {other:?}"),
            })
        }
    };
    Ok(Cond {
        index: a.index,
        op,
        value: a.value,
        value_two: a.value_two,
    })
}

/// Parse a profile and resolve it against caps and kernel into per-syscall rules.
fn resolve_profile(
    json: &str,
    caps: &[String],
    kernel: (u32, u32),
) -> Result<(Action, BTreeMap<u32, SyscallRules>), SeccompError> {
    let p: Profile = serde_json::from_str(json).map_err(|source| SeccompError::Parse { source })?;
    let default_errno = p.default_errno_ret.unwrap_or(EPERM);
    let default = Action::parse(&p.default_action, p.default_errno_ret, EPERM)?;
    let caps: Vec<String> = caps.iter().map(|c| norm_cap(c)).collect();
    let mut map: BTreeMap<u32, SyscallRules> = BTreeMap::new();
    for rule in p.syscalls.iter().flatten() {
        let action = Action::parse(&rule.action, rule.errno_ret, default_errno)?;
        let conds = rule
            .args
            .iter()
            .flatten()
            .map(parse_cond)
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<&String> = rule
            .names
            .iter()
            .flatten()
            .chain(rule.name.iter())
            .collect();
        if names.is_empty() {
            return Err(SeccompError::Invalid {
                what: "a syscalls entry has no names".into(),
            });
        }
        if !applies(rule, &caps, kernel)? || action == default {
            continue;
        }
        for name in names {
            let Some(nr) = wharf_sys::seccomp::syscall_number(name) else {
                continue; // not a syscall on this architecture
            };
            let e = map.entry(nr).or_default();
            if conds.is_empty() {
                match e.unconditional {
                    Some(prev) if prev != action => {
                        return Err(SeccompError::Invalid {
                            what: format!("conflicting actions for syscall {name}"),
                        })
                    }
                    _ => e.unconditional = Some(action),
                }
            } else {
                e.conditional.push((conds.clone(), action));
            }
        }
    }
    Ok((default, map))
}

// ---------------------------------------------------------------- BPF emitter

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

#[derive(Clone, Copy)]
enum T {
    Next,
    L(usize),
}

struct Insn {
    code: u16,
    jt: T,
    jf: T,
    k: u32,
}

#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn stmt(&mut self, code: u16, k: u32) {
        self.insns.push(Insn {
            code,
            jt: T::Next,
            jf: T::Next,
            k,
        });
    }
    fn jmp(&mut self, code: u16, k: u32, jt: T, jf: T) {
        self.insns.push(Insn { code, jt, jf, k });
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn finish(self) -> Result<Vec<u8>, SeccompError> {
        if self.insns.len() > wharf_sys::seccomp::MAX_INSNS {
            return Err(SeccompError::TooLarge {
                insns: self.insns.len(),
            });
        }
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for (i, ins) in self.insns.iter().enumerate() {
            let off = |t: T| -> Result<u8, SeccompError> {
                match t {
                    T::Next => Ok(0),
                    T::L(l) => {
                        let pos = self.labels[l].unwrap_or(0);
                        u8::try_from(pos.wrapping_sub(i + 1)).map_err(|_| SeccompError::Invalid {
                            what: "a syscall's rules are too large for one BPF jump".into(),
                        })
                    }
                }
            };
            out.extend_from_slice(&ins.code.to_ne_bytes());
            out.push(off(ins.jt)?);
            out.push(off(ins.jf)?);
            out.extend_from_slice(&ins.k.to_ne_bytes());
        }
        Ok(out)
    }
}

/// Emit code that falls through when `c` holds and jumps to `fail` otherwise.
fn emit_cond(a: &mut Asm, c: &Cond, fail: usize) {
    let lo_off = OFF_ARGS + 8 * c.index;
    let hi_off = lo_off + 4;
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let pass = a.label();
    let f = T::L(fail);
    let p = T::L(pass);
    a.stmt(LD_W_ABS, hi_off);
    match c.op {
        Op::Eq => {
            a.jmp(JEQ_K, vh, T::Next, f);
            a.stmt(LD_W_ABS, lo_off);
            a.jmp(JEQ_K, vl, T::Next, f);
        }
        Op::Ne => {
            a.jmp(JEQ_K, vh, T::Next, p);
            a.stmt(LD_W_ABS, lo_off);
            a.jmp(JEQ_K, vl, f, T::Next);
        }
        Op::MaskedEq => {
            let (dh, dl) = ((c.value_two >> 32) as u32, c.value_two as u32);
            a.stmt(AND_K, vh);
            a.jmp(JEQ_K, dh, T::Next, f);
            a.stmt(LD_W_ABS, lo_off);
            a.stmt(AND_K, vl);
            a.jmp(JEQ_K, dl, T::Next, f);
        }
        Op::Gt | Op::Ge => {
            a.jmp(JGT_K, vh, p, T::Next);
            a.jmp(JEQ_K, vh, T::Next, f);
            a.stmt(LD_W_ABS, lo_off);
            let code = if matches!(c.op, Op::Gt) { JGT_K } else { JGE_K };
            a.jmp(code, vl, p, f);
        }
        Op::Lt | Op::Le => {
            a.jmp(JGT_K, vh, f, T::Next);
            a.jmp(JEQ_K, vh, T::Next, p);
            a.stmt(LD_W_ABS, lo_off);
            // Lt = !(>=), Le = !(>)
            let code = if matches!(c.op, Op::Lt) { JGE_K } else { JGT_K };
            a.jmp(code, vl, f, p);
        }
    }
    a.bind(pass);
}

fn emit(default: Action, map: &BTreeMap<u32, SyscallRules>) -> Result<Vec<u8>, SeccompError> {
    let mut a = Asm::default();
    // Architecture: anything but native x86_64 is killed (its numbers mean other syscalls).
    a.stmt(LD_W_ABS, OFF_ARCH);
    let arch_ok = a.label();
    a.jmp(
        JEQ_K,
        wharf_sys::seccomp::AUDIT_ARCH_X86_64,
        T::L(arch_ok),
        T::Next,
    );
    a.stmt(RET_K, Action::KillProcess.ret());
    a.bind(arch_ok);
    a.stmt(LD_W_ABS, OFF_NR);
    let native = a.label();
    a.jmp(
        JGE_K,
        wharf_sys::seccomp::X32_SYSCALL_BIT,
        T::Next,
        T::L(native),
    );
    a.stmt(RET_K, Action::Errno(ENOSYS).ret());
    a.bind(native);

    let entries: Vec<(&u32, &SyscallRules)> = map.iter().collect();
    let mut i = 0;
    while i < entries.len() {
        let (&nr, rules) = entries[i];
        if rules.conditional.is_empty() {
            let Some(act) = rules.unconditional else {
                i += 1;
                continue;
            };
            // Extend a run of consecutive numbers with the same unconditional action.
            let mut hi = nr;
            let mut j = i + 1;
            while j < entries.len() {
                let (&n2, r2) = entries[j];
                if n2 == hi + 1 && r2.conditional.is_empty() && r2.unconditional == Some(act) {
                    hi = n2;
                    j += 1;
                } else {
                    break;
                }
            }
            let skip = a.label();
            if hi == nr {
                a.jmp(JEQ_K, nr, T::Next, T::L(skip));
            } else {
                a.jmp(JGE_K, nr, T::Next, T::L(skip));
                a.jmp(JGT_K, hi, T::L(skip), T::Next);
            }
            a.stmt(RET_K, act.ret());
            a.bind(skip);
            i = j;
            continue;
        }
        let skip = a.label();
        a.jmp(JEQ_K, nr, T::Next, T::L(skip));
        for (conds, act) in &rules.conditional {
            let next_rule = a.label();
            for c in conds {
                emit_cond(&mut a, c, next_rule);
            }
            a.stmt(RET_K, act.ret());
            a.bind(next_rule);
        }
        a.stmt(RET_K, rules.unconditional.unwrap_or(default).ret());
        a.bind(skip);
        i += 1;
    }
    a.stmt(RET_K, default.ret());
    a.finish()
}

/// Compile a Docker-format profile for a container with `caps` on this kernel.
pub fn compile(profile_json: &str, caps: &[String]) -> Result<Vec<u8>, SeccompError> {
    let (default, mut map) =
        resolve_profile(profile_json, caps, wharf_sys::features::kernel_version())?;
    let default = fit_actions(default, &mut map, &kernel_actions())?;
    emit(default, &map)
}

/// The filter return actions this kernel knows, from /proc/sys/kernel/seccomp/actions_avail
/// (4.14+). Older kernels have no such file and know kill (thread), trap, errno, trace and
/// allow; `WHARF_DISABLE=seccomplog` reads it as such a kernel.
fn kernel_actions() -> String {
    if wharf_sys::features::force_disabled(wharf_sys::features::Feature::SeccompLog) {
        return String::new();
    }
    std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default()
}

/// Whether this kernel's seccomp knows `action` (`log`, `kill_process`, ... as named in
/// `actions_avail`).
pub fn kernel_has_action(action: &str) -> bool {
    kernel_actions().split_whitespace().any(|a| a == action)
}

/// Make the resolved actions loadable on a kernel whose `actions_avail` is `avail`: an
/// unknown action value makes such a kernel KILL the caller, so SCMP_ACT_LOG (4.14) is
/// refused with the reason, and SCMP_ACT_KILL_PROCESS (4.14) becomes kill-thread (what the
/// kernel's own masking of it would do, said here on purpose).
fn fit_actions(
    default: Action,
    map: &mut BTreeMap<u32, SyscallRules>,
    avail: &str,
) -> Result<Action, SeccompError> {
    let has = |a: &str| avail.split_whitespace().any(|x| x == a);
    let (log, kill_process) = (has("log"), has("kill_process"));
    let fit = |a: Action| -> Result<Action, SeccompError> {
        match a {
            Action::Log if !log => Err(SeccompError::KernelLacks {
                action: "SCMP_ACT_LOG",
                since: "4.14",
            }),
            Action::KillProcess if !kill_process => Ok(Action::KillThread),
            a => Ok(a),
        }
    };
    for rules in map.values_mut() {
        for (_, a) in rules.conditional.iter_mut() {
            *a = fit(*a)?;
        }
        if let Some(a) = rules.unconditional.as_mut() {
            *a = fit(*a)?;
        }
    }
    fit(default)
}

/// The built-in default profile (Docker-shaped, see resources/seccomp-default.json).
pub fn default_profile() -> &'static str {
    DEFAULT_PROFILE
}

// ---------------------------------------------------------------- cache

const HASH_LEN: usize = 32;
const MAX_CACHE_FILE: usize = wharf_sys::seccomp::MAX_INSNS * 8 + HASH_LEN;

fn cache_key(profile: &str, caps: &[String]) -> String {
    let mut caps: Vec<String> = caps.iter().map(|c| norm_cap(c)).collect();
    caps.sort();
    caps.dedup();
    let (maj, min) = wharf_sys::features::kernel_version();
    let mut h = Sha256::new();
    for part in [
        COMPILER_VERSION,
        ARCH,
        &format!("{maj}.{min} {}", kernel_actions().trim()),
        &caps.join(","),
        profile,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Cache file = program followed by sha256(program), so a torn or corrupted file is detected.
fn read_cache(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() as usize > MAX_CACHE_FILE {
        return None;
    }
    let data = std::fs::read(path).ok()?;
    if data.len() <= HASH_LEN || data.len() > MAX_CACHE_FILE || data.len() % 8 != 0 {
        return None;
    }
    let (bpf, sum) = data.split_at(data.len() - HASH_LEN);
    if Sha256::digest(bpf).as_slice() != sum {
        return None;
    }
    Some(bpf.to_vec())
}

fn write_cache(dir: &Path, path: &Path, bpf: &[u8]) -> Result<(), SeccompError> {
    let err = |source| SeccompError::Cache {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut data = Vec::with_capacity(bpf.len() + HASH_LEN);
    data.extend_from_slice(bpf);
    data.extend_from_slice(&Sha256::digest(bpf));
    wharf_sys::atomic::write_file(path, &data, 0o644).map_err(err)
}

/// Compile (or load from the on-disk cache `cache_dir`, keyed by sha256 of profile + caps +
/// arch + kernel version + compiler version) the BPF program for `s`. None for Unconfined.
/// Runs in the PARENT before clone, never in init. A failure to write the cache is an error
/// (the cache dir is wharf's own state; a broken one should be noticed), a bad cache entry is
/// silently recompiled.
pub fn prepare(
    s: &crate::spec::Seccomp,
    caps: &[String],
    cache_dir: &Path,
) -> Result<Option<Vec<u8>>, SeccompError> {
    let profile = match s {
        crate::spec::Seccomp::Unconfined => return Ok(None),
        crate::spec::Seccomp::Default => DEFAULT_PROFILE,
        crate::spec::Seccomp::Profile(p) => p.as_str(),
    };
    let path = cache_dir.join(format!("{}.bpf", cache_key(profile, caps)));
    if let Some(bpf) = read_cache(&path) {
        return Ok(Some(bpf));
    }
    let bpf = compile(profile, caps)?;
    write_cache(cache_dir, &path, &bpf)?;
    Ok(Some(bpf))
}

#[cfg(test)]
mod tests;
