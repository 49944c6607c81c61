//! The engine's enforcement points: small calls from create, start, exec and the image
//! paths into the rules, with the I/O the rules need (the image's names, a user's uid from
//! the passwd of the image, the container's writable layer or its running root).

use super::rules::{self, Decision, Refusal};
use super::Loaded;
use crate::create::CreateRequest;
use crate::{Engine, EngineError};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use wharf_types::container::{ContainerConfig, ContainerRecord, HostConfig};

const PASSWD_MAX: u64 = 1 << 20;
/// `[build] approved_dir`: at most this many entries are looked at, each file at most
/// [`APPROVED_FILE_MAX`] bytes (the Dockerfile parser's own cap).
const APPROVED_DIR_MAX_ENTRIES: usize = 4096;
const APPROVED_FILE_MAX: u64 = 10 << 20;

/// The sha256 of every regular file in `dir` (symlinks are not followed; anything else is
/// skipped). Bounded in entries and size; an unreadable directory is an error (fail closed).
fn approved_digests(dir: &Path) -> rules::ApprovedDir {
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, entry) in entries.enumerate() {
        if i >= APPROVED_DIR_MAX_ENTRIES {
            return Err(format!("more than {APPROVED_DIR_MAX_ENTRIES} entries"));
        }
        let entry = entry.map_err(|e| e.to_string())?;
        if !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        match wharf_sys::fs::read_small_file(None, &entry.path(), APPROVED_FILE_MAX) {
            Ok(Some(bytes)) => out.push(wharf_types::Digest::of(&bytes)),
            Ok(None) => {}
            Err(e) => return Err(format!("{}: {e}", entry.path().display())),
        }
    }
    Ok(out)
}

/// In one layer directory, `etc` and `etc/passwd` must not be symlinks: the layer alone
/// cannot say where overlay's merged view would lead them, and a guess could differ from what
/// init resolves (fail closed). `Ok(false)`: this layer has no passwd.
fn layer_has_plain_passwd(root: &Path) -> Result<bool, String> {
    for (p, dir) in [(root.join("etc"), true), (root.join("etc/passwd"), false)] {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{} is a symlink in an image layer", p.display()))
            }
            Ok(m) if dir && !m.is_dir() => {
                return Err(format!("{} is not a directory", p.display()))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    Ok(true)
}

/// Resolves a user name in the first of `roots` that has an `etc/passwd` (a writable layer
/// first, then the image's layers topmost first — `layers` — or a running container's root,
/// where symlinks resolve inside it as the container sees them). A file that is not a
/// regular file (an overlay whiteout, a FIFO), a symlink in a layer or a file too large is
/// an error: the caller refuses (fail closed).
fn resolve_in(roots: &[PathBuf], layers: bool, name: &str) -> Result<u32, String> {
    for root in roots {
        if layers && !layer_has_plain_passwd(root)? {
            continue;
        }
        let dir = match std::fs::File::open(root) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("open {}: {e}", root.display())),
        };
        match wharf_sys::fs::read_small_file(Some(dir.as_fd()), Path::new("etc/passwd"), PASSWD_MAX)
        {
            Ok(None) => continue,
            Ok(Some(b)) => {
                return rules::passwd_uid(&String::from_utf8_lossy(&b), name)
                    .unwrap_or_else(|| Err("no such user in the image's /etc/passwd".into()))
            }
            Err(e) => return Err(format!("{}/etc/passwd: {e}", root.display())),
        }
    }
    Err("the image has no /etc/passwd".into())
}

/// What `wharf policy check` reports: the rules that refuse (empty: allowed).
#[derive(Debug, Clone)]
pub struct Explanation {
    pub refusals: Vec<(String, String)>,
}

impl Engine {
    /// The policy this process read in `Engine::open`.
    pub fn policy(&self) -> &Loaded {
        &self.policy
    }

    /// Replaces the policy read in `Engine::open` (an in-process caller that loaded another
    /// file, e.g. a benchmark of the checks).
    pub fn set_policy(&mut self, policy: Loaded) {
        self.policy = policy;
    }

    /// Every refusal of a container. The image's passwd and names are read only when a
    /// rule needs them (a user given by name under `non_root`; `[registries]`), so a start
    /// under a policy without those rules costs no I/O beyond the audit line.
    #[allow(clippy::too_many_arguments)]
    fn container_refusals(
        &self,
        p: &super::Policy,
        image_arg: &str,
        image_id: &wharf_types::Digest,
        image: Option<&wharf_store::Image>,
        config: &ContainerConfig,
        host: &HostConfig,
        upper: Option<&Path>,
    ) -> Vec<Refusal> {
        let resolve = |n: &str| {
            let mut roots: Vec<PathBuf> = upper.map(Path::to_path_buf).into_iter().collect();
            roots.extend(self.store.image_layers(image_id).unwrap_or_default());
            resolve_in(&roots, true, n)
        };
        let mut out = rules::check_container(p, config, host, &resolve);
        // `--network container:X` of a container in the host's namespace is the host's
        // network namespace too
        if let wharf_types::container::NetworkMode::Container(target) = &host.network_mode {
            let joined_host = self.store.container(target).is_ok_and(|t| {
                t.host_config.network_mode == wharf_types::container::NetworkMode::Host
            });
            if joined_host && !p.run.host_network {
                out.push((
                    "run.host_network",
                    format!("--network container:{target} joins a container in the host's network namespace, and the host's network namespace (--network host) is not allowed"),
                ));
            }
        }
        let r = &p.registries;
        if r.allow.is_none() && !r.require_digest && !r.require_signed {
            return out;
        }
        let resolved;
        let image = match image {
            Some(i) => i,
            None => match self.store.resolve_image(&image_id.to_string()) {
                Ok(i) => {
                    resolved = i;
                    &resolved
                }
                Err(e) => {
                    let rule = if r.allow.is_some() || r.require_digest {
                        "registries.allow"
                    } else {
                        "registries.require_signed"
                    };
                    out.push((rule, format!("image {image_id} cannot be checked: {e}")));
                    return out;
                }
            },
        };
        if r.allow.is_some() || r.require_digest {
            out.extend(self.image_refusals(p, image_arg, image));
        }
        if r.require_signed {
            let shown = if image_arg.is_empty() {
                image.id.to_string()
            } else {
                image_arg.to_string()
            };
            if let Some(why) =
                crate::trust::signature_refusal(&self.store, p, &shown, &image.manifest_digest)
            {
                out.push(("registries.require_signed", why));
            }
        }
        out
    }

    /// `[registries]` for a container's image: the name it was asked for, or, for an image
    /// ID, any of the image's names (an ID is pinned by content).
    fn image_refusals(
        &self,
        p: &super::Policy,
        image_arg: &str,
        image: &wharf_store::Image,
    ) -> Vec<Refusal> {
        let by_id = image.id.to_string() == image_arg
            || image.id.hex().starts_with(image_arg)
            || image_arg.is_empty();
        if !by_id {
            return rules::check_reference(p, image_arg, false);
        }
        let names = image.repo_digests.iter().chain(image.repo_tags.iter());
        if p.registries.allow.is_some()
            && image.repo_tags.is_empty()
            && image.repo_digests.is_empty()
        {
            return vec![(
                "registries.allow",
                format!(
                    "image {} has no name to check against the allowed registries",
                    image.id
                ),
            )];
        }
        let mut first = None;
        for n in names {
            let r = rules::check_reference(p, n, true);
            if r.is_empty() {
                return r;
            }
            first.get_or_insert(r);
        }
        first.unwrap_or_else(|| rules::check_reference(p, image_arg, true))
    }

    /// create / run: the request as the record will say it.
    pub(crate) fn policy_create(
        &self,
        req: &CreateRequest,
        image: &wharf_store::Image,
        config: &ContainerConfig,
    ) -> Result<(), EngineError> {
        Ok(self
            .policy
            .enforce(&self.caller, "create", &req.image, |p| {
                Decision::from_refusals(self.container_refusals(
                    p,
                    &req.image,
                    &image.id,
                    Some(image),
                    config,
                    &req.host,
                    None,
                ))
            })?)
    }

    /// start (foreground, monitor, restart): a record created before the policy changed is
    /// checked again, with the user resolved in its writable layer first.
    pub fn policy_start(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        self.policy
            .enforce(&self.caller, "start", rec.id.as_str(), |p| {
                Decision::from_refusals(self.record_refusals(p, rec))
            })?;
        Ok(())
    }

    /// `update`: the container with its new limits, as a start would judge it.
    pub(crate) fn policy_update(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        self.policy
            .enforce(&self.caller, "update", rec.id.as_str(), |p| {
                Decision::from_refusals(self.record_refusals(p, rec))
            })?;
        Ok(())
    }

    fn record_refusals(&self, p: &super::Policy, rec: &ContainerRecord) -> Vec<Refusal> {
        let upper = self.store.container_paths(&rec.id).upper;
        self.container_refusals(
            p,
            &rec.config.image,
            &rec.image,
            None,
            &rec.config,
            &rec.host_config,
            Some(&upper),
        )
    }

    /// `[run] published_ports`: the range every published host port must be in (`None`:
    /// no such rule).
    pub(crate) fn policy_port_range(&self) -> Option<(u16, u16)> {
        match &self.policy {
            super::Loaded::Active(p) => p.run.published_ports.map(|r| (r.low, r.high)),
            _ => None,
        }
    }

    /// start: the host ports this start took, checked against `[run] published_ports`
    /// (one audited decision; nothing asked or logged without the rule or without ports).
    /// `why_empty` refuses outright: no port can be allocated inside the allowed range.
    pub(crate) fn policy_ports(
        &self,
        rec: &ContainerRecord,
        ports: &[(String, u16)],
        why_empty: Option<String>,
    ) -> Result<(), EngineError> {
        if self.policy_port_range().is_none() || (ports.is_empty() && why_empty.is_none()) {
            return Ok(());
        }
        self.policy.enforce(
            &self.caller,
            "start",
            rec.id.as_str(),
            |p| match why_empty {
                Some(message) => Decision::Refused {
                    rule: "run.published_ports".into(),
                    message,
                },
                None => Decision::from_refusals(rules::check_host_ports(p, ports)),
            },
        )?;
        Ok(())
    }

    /// exec: the container is checked again (one started before the policy changed gets no
    /// new process), and the exec's user against the running container's own passwd
    /// (`/proc/<pid>/root`). One decision, audited as `exec`.
    pub(crate) fn policy_exec(
        &self,
        rec: &ContainerRecord,
        pid: i32,
        user: &str,
    ) -> Result<(), EngineError> {
        self.policy
            .enforce(&self.caller, "exec", rec.id.as_str(), |p| {
                let mut out = self.record_refusals(p, rec);
                let roots = [PathBuf::from(format!("/proc/{pid}/root"))];
                let resolve = |n: &str| resolve_in(&roots, false, n);
                out.extend(rules::check_user(p, user, &resolve));
                Decision::from_refusals(out)
            })?;
        Ok(())
    }

    /// pull, push, load, import, bundle apply: `[registries]` for one image reference.
    /// `pinned`: the content is addressed by other means (a verified archive or bundle), so
    /// `require_digest` does not apply.
    pub fn policy_image(
        &self,
        action: &str,
        reference: &str,
        pinned: bool,
    ) -> Result<(), EngineError> {
        Ok(self.policy.enforce(&self.caller, action, reference, |p| {
            Decision::from_refusals(rules::check_reference(p, reference, pinned))
        })?)
    }

    /// build: `[build]` for the Dockerfile whose bytes have `digest` (audited as `build` with
    /// the digest as its target), before any step runs.
    pub fn policy_build(&self, dockerfile: &wharf_types::Digest) -> Result<(), EngineError> {
        self.policy
            .enforce(&self.caller, "build", &dockerfile.to_string(), |p| {
                let dir = p.build.approved_dir.as_deref().map(approved_digests);
                Decision::from_refusals(rules::check_build(p, dockerfile, dir.as_ref()))
            })?;
        Ok(())
    }

    /// `wharf policy check --dockerfile FILE`: the `[build]` refusals of a Dockerfile's
    /// bytes (nothing logged).
    pub fn policy_explain_build(&self, dockerfile: &[u8]) -> Result<Explanation, EngineError> {
        let p = match &self.policy {
            Loaded::None => {
                return Ok(Explanation {
                    refusals: Vec::new(),
                })
            }
            Loaded::Broken(e) => return Err(e.clone().into()),
            Loaded::Active(p) => p,
        };
        let digest = wharf_types::Digest::of(dockerfile);
        let dir = p.build.approved_dir.as_deref().map(approved_digests);
        let refusals = rules::check_build(p, &digest, dir.as_ref())
            .into_iter()
            .map(|(r, m)| (r.to_string(), m))
            .collect();
        Ok(Explanation { refusals })
    }

    /// load and bundle apply: the names an archive brought are checked after its content
    /// verified; a refused name is undone: given back to the image it named before the load,
    /// or removed (and with it an image it alone named), so nothing outside the allowed
    /// registries becomes runnable.
    pub fn policy_loaded(
        &self,
        action: &str,
        loaded: &[wharf_store::archive::LoadedImage],
    ) -> Result<(), EngineError> {
        let mut refused = None;
        for l in loaded {
            for tag in &l.tags {
                if let Err(e) = self.policy_image(action, tag, true) {
                    let before = l.retagged.iter().find(|(t, _)| t == tag);
                    let restored = match (before, wharf_types::ImageRef::parse(tag)) {
                        (Some((_, old)), Ok(r)) => self.store.tag(&old.to_string(), &r).is_ok(),
                        _ => false,
                    };
                    if !restored {
                        let _ = self.remove_image(tag, false);
                    }
                    refused.get_or_insert(e);
                }
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// `wharf policy check [run flags] IMAGE`: every rule that would refuse this request, in
    /// the file's order; nothing is created and nothing is logged.
    pub fn policy_explain(&self, req: &CreateRequest) -> Result<Explanation, EngineError> {
        let p = match &self.policy {
            Loaded::None => {
                return Ok(Explanation {
                    refusals: Vec::new(),
                })
            }
            Loaded::Broken(e) => return Err(e.clone().into()),
            Loaded::Active(p) => p,
        };
        let image = self.store.resolve_image(&req.image)?;
        // the same parsing and validation a create does (sizes, limits, seccomp files, ...)
        let mut req = crate::validate::prepare(req.clone())?;
        // the command does not matter to any rule; an image without one is still checked
        if req.args.is_empty() && req.entrypoint.is_none() {
            req.args = vec!["sh".into()];
        }
        let req = &req;
        let hostname = req.hostname.clone().unwrap_or_default();
        let config = crate::create::container_config(req, &image.config.config, &hostname)?;
        let refusals = self
            .container_refusals(
                p,
                &req.image,
                &image.id,
                Some(&image),
                &config,
                &req.host,
                None,
            )
            .into_iter()
            .map(|(r, m)| (r.to_string(), m))
            .collect();
        Ok(Explanation { refusals })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_in_layers() {
        let t = tempfile::tempdir().unwrap();
        let (upper, top, base) = (t.path().join("u"), t.path().join("t"), t.path().join("b"));
        for d in [&upper, &top, &base] {
            std::fs::create_dir_all(d.join("etc")).unwrap();
        }
        std::fs::write(base.join("etc/passwd"), "app:x:1000:1000::/:/bin/sh\n").unwrap();
        std::fs::write(base.join("etc/passwd.real"), "app:x:0:0::/:/bin/sh\n").unwrap();
        let roots = [upper.clone(), top.clone(), base.clone()];
        assert_eq!(resolve_in(&roots, true, "app"), Ok(1000));
        assert!(resolve_in(&roots, true, "nobody").is_err());
        // a symlinked passwd in an upper layer would be resolved by overlay in the merged
        // view (here: to uid 0): refused, never looked past
        std::os::unix::fs::symlink("/etc/passwd.real", top.join("etc/passwd")).unwrap();
        assert!(resolve_in(&roots, true, "app").is_err());
        std::fs::remove_file(top.join("etc/passwd")).unwrap();
        std::fs::remove_dir(top.join("etc")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", top.join("etc")).unwrap();
        assert!(resolve_in(&roots, true, "app").is_err());
        // the writable layer's passwd comes first
        std::fs::write(upper.join("etc/passwd"), "app:x:0:0::/:/bin/sh\n").unwrap();
        assert_eq!(resolve_in(&roots, true, "app"), Ok(0));
        // a FIFO is an error, not a hang
        let fifo = t.path().join("f");
        std::fs::create_dir_all(fifo.join("etc")).unwrap();
        nix::unistd::mkfifo(&fifo.join("etc/passwd"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(resolve_in(&[fifo], true, "app").is_err());
        assert!(resolve_in(&[], true, "app").is_err());
    }
}
