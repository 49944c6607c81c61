//! Creating and running containers: request → create-time record (written once) → runtime
//! spec → start → wait → final state. Also the container queries (`ps`, `inspect`) and removal.

use crate::client::ClientLock;
use crate::create::{container_config, CreateRequest};
use crate::refusal::{StateConflict, ValidationError};
use crate::release::Then;
use crate::state::{Client, ContainerState, Status};
use crate::timefmt::now_rfc3339;
use crate::{etcfiles, names, Engine, EngineError};
use std::path::PathBuf;
use wharf_runtime::cgroup::Cgroup;
use wharf_runtime::spec::{self as rs, ContainerSpec};
use wharf_store::ContainerPaths;
use wharf_types::container::{ContainerRecord, MountKind, NetworkMode};
use wharf_types::error::HasKind;
use wharf_types::ContainerId;

/// wharf's default `--pids-limit` (podman's; docker has none): a fork bomb stays contained.
pub const DEFAULT_PIDS_LIMIT: i64 = 2048;

/// What a create tells its caller besides the record: docker's create response carries
/// `Warnings` (things it accepted but will not do); the front end shows them (the CLI on
/// stderr as `WARNING: …`). Typed like the refusals: a new warning is a new variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// `-p` with `--network host`: the container uses the host's ports themselves.
    #[error("Published ports are discarded when using host network mode")]
    PublishedPortsDiscarded,
    /// `--oom-kill-disable` without `-m`.
    #[error("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")]
    OomKillDisableWithoutMemory,
}

/// The warnings docker's daemon gives for a create (its `verifyContainerSettings`), from the
/// prepared request.
pub fn create_warnings(host: &wharf_types::container::HostConfig) -> Vec<Warning> {
    let mut w = Vec::new();
    if host.network_mode == NetworkMode::Host && !host.port_bindings.is_empty() {
        w.push(Warning::PublishedPortsDiscarded);
    }
    if host.resources.oom_kill_disable == Some(true) && host.memory <= 0 {
        w.push(Warning::OomKillDisableWithoutMemory);
    }
    w
}

/// A created container: its record and the create's warnings.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: ContainerRecord,
    pub warnings: Vec<Warning>,
}

/// A container's record together with its (reconciled) runtime state.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub record: ContainerRecord,
    pub state: ContainerState,
}

fn not_found(id: &ContainerId) -> EngineError {
    wharf_store::StoreError::ContainerNotFound(id.to_string()).into()
}

pub(crate) fn cgroup_path(id: &ContainerId) -> String {
    format!("wharf/{id}")
}

/// Parsed `--security-opt` values.
struct SecurityOpts {
    seccomp: rs::Seccomp,
    no_new_privileges: bool,
}

/// A container's confinement as its record says: the final capability set, the seccomp
/// profile (unconfined when privileged) and no_new_privs. One function for `start` and `exec`,
/// so an exec'd process can never get more than its container.
pub(crate) fn confinement(
    rec: &ContainerRecord,
) -> Result<(Vec<String>, rs::Seccomp, bool), EngineError> {
    let hc = &rec.host_config;
    let sec = parse_security_opts(&hc.security_opt)?;
    let caps = wharf_runtime::caps::resolve(&hc.cap_add, &hc.cap_drop, hc.privileged)?;
    let seccomp = if hc.privileged {
        rs::Seccomp::Unconfined
    } else {
        sec.seccomp
    };
    Ok((caps, seccomp, sec.no_new_privileges))
}

fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, EngineError> {
    let mut out = SecurityOpts {
        seccomp: rs::Seccomp::Default,
        no_new_privileges: true,
    };
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .or_else(|| o.split_once(':'))
            .unwrap_or((o.as_str(), ""));
        match (k, v) {
            ("seccomp", "unconfined") => out.seccomp = rs::Seccomp::Unconfined,
            ("seccomp", "") => return Err(ValidationError::SeccompEmpty.into()),
            // At create time the CLI replaced the file name with its contents (docker does the
            // same), so the record is self-contained.
            ("seccomp", profile) => out.seccomp = rs::Seccomp::Profile(profile.to_string()),
            ("no-new-privileges", "" | "true") => out.no_new_privileges = true,
            ("no-new-privileges", "false") => out.no_new_privileges = false,
            ("apparmor", "unconfined") | ("label", "disable") => {}
            ("apparmor", p) => {
                return Err(ValidationError::AppArmorUnsupported { profile: p.into() }.into())
            }
            ("label", l) => {
                return Err(ValidationError::SelinuxUnsupported { label: l.into() }.into())
            }
            _ => return Err(ValidationError::SecurityOpt { opt: o.clone() }.into()),
        }
    }
    Ok(out)
}

impl Engine {
    /// An image's layer directories as overlay's `lowerdir` shows them (for `inspect`); empty
    /// when the image's layers are not available.
    pub fn lower_dirs(&self, image: &wharf_types::Digest) -> String {
        self.store
            .image_layers(image)
            .map(|l| {
                l.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default()
    }

    /// Creates a container (record + directories), returning its record and the create's
    /// warnings. Nothing runs yet.
    pub fn create_container(&self, req: CreateRequest) -> Result<Created, EngineError> {
        self.create(req, false).map(|(created, _)| created)
    }

    /// [`Engine::create_container`]; with `client`, the caller becomes the container's
    /// foreground client (`crate::client`) before its record exists.
    pub(crate) fn create(
        &self,
        req: CreateRequest,
        client: bool,
    ) -> Result<(Created, Option<ClientLock>), EngineError> {
        let mut req = req;
        // daemon.json's defaults: log driver/options under the flags, ulimits under --ulimit
        self.daemon.apply_log_defaults(&mut req);
        let mut req = crate::validate::prepare(req)?;
        self.daemon.apply_ulimit_defaults(&mut req.host);
        let (record, lock) = self.create_with(req, None, client, &mut || self.unused_name())?;
        let warnings = create_warnings(&record.host_config);
        Ok((Created { record, warnings }, lock))
    }

    /// A `wharf build` RUN step's container: made from `image` (the build's unnamed
    /// intermediate) while its record and the admin policy see `req.image`, the reference
    /// the stage was built FROM (what the registries rules can judge). Engine-internal: a
    /// front end cannot name an image other than the one it runs.
    pub(crate) fn create_build_container(
        &self,
        req: CreateRequest,
        image: &wharf_types::Digest,
    ) -> Result<ContainerRecord, EngineError> {
        let mut req = crate::validate::prepare(req)?;
        self.daemon.apply_ulimit_defaults(&mut req.host);
        let (record, _) = self.create_with(req, Some(image), false, &mut || self.unused_name())?;
        Ok(record)
    }

    /// [`Engine::create`] with generated names from `next_name`; `image_id`: made from that
    /// image rather than `req.image` ([`Engine::create_build_container`]).
    fn create_with(
        &self,
        mut req: CreateRequest,
        image_id: Option<&wharf_types::Digest>,
        client: bool,
        next_name: &mut dyn FnMut() -> Result<String, EngineError>,
    ) -> Result<(ContainerRecord, Option<ClientLock>), EngineError> {
        let image = match image_id {
            Some(id) => self.store.resolve_image(&id.to_string())?,
            None => self.store.resolve_image(&req.image)?,
        };
        // validate security options before anything is written
        parse_security_opts(&req.host.security_opt)?;
        wharf_runtime::caps::resolve(&req.host.cap_add, &req.host.cap_drop, req.host.privileged)?;
        for m in &req.host.mounts {
            crate::mounts::check_destination(&m.target, &m.kind, &m.target)?;
        }
        let id = ContainerId::from_bytes(
            names::random_bytes::<32>().map_err(|e| EngineError::io("read", "/dev/urandom", e))?,
        );
        let (name, generated) = match req.name.take() {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(&n).to_string();
                if !wharf_types::id::validate_container_name(&n) {
                    return Err(ValidationError::ContainerName { name: n }.into());
                }
                (n, false)
            }
            None => (next_name()?, true),
        };
        // which network (it must exist) or container (joined: its hostname is this one's)
        let net = self.network_for_create(&req)?;
        req.host.network_mode = net.mode.clone();
        req.host.links = self.links_for_create(&req.host.links, &name)?;
        let volumes_from = self.volumes_from(&req.host.options.volumes_from, &req.host.mounts)?;
        req.host.mounts.extend(volumes_from);
        let uts_host = req.host.options.uts_mode == "host";
        let hostname = match (&req.hostname, &req.host.network_mode, net.hostname) {
            (Some(h), _, _) => h.clone(),
            (None, _, _) if uts_host => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| id.short().to_string()),
            (None, NetworkMode::Host, _) => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| id.short().to_string()),
            (None, NetworkMode::Container(_), Some(h)) => h,
            (None, _, _) => id.short().to_string(),
        };
        let config = container_config(&req, &image.config.config, &hostname)?;
        self.policy_create(&req, &image, &config)?;
        // anonymous volumes get their names now, so the record says what they are; removed
        // again if the record is not written (a name conflict, say)
        let mut anon = AnonVolumes {
            engine: self,
            names: Vec::new(),
        };
        // no prune takes them before the record that uses them is written
        let _no_prune = if req
            .host
            .mounts
            .iter()
            .any(|m| m.kind == MountKind::Volume && m.source.is_empty())
        {
            Some(self.lock_volumes(false)?)
        } else {
            None
        };
        for m in &mut req.host.mounts {
            if m.kind == MountKind::Volume && m.source.is_empty() {
                let v = self.create_anonymous_volume()?;
                anon.names.push(v.name.clone());
                m.source = v.name;
            }
        }
        let lock = if client {
            Some(self.lock_client(&id)?)
        } else {
            None
        };
        let mut record = ContainerRecord {
            id,
            name,
            created: now_rfc3339(),
            image: image.id.clone(),
            config,
            host_config: req.host,
            networking_config: net.networking,
        };
        // The store claims the name under its lock; a generated name another create took
        // since `unused_name` looked is replaced by a fresh one (a given name is the caller's).
        let mut attempts = 0;
        let paths = loop {
            match self.store.create_container(&record) {
                Err(wharf_store::StoreError::NameInUse { .. }) if generated && attempts < 32 => {
                    attempts += 1;
                    record.name = next_name()?;
                    record.host_config.links =
                        crate::network::config::relink(&record.host_config.links, &record.name);
                }
                r => break r?,
            }
        };
        anon.names.clear();
        let hc = &record.host_config;
        // `host-gateway` off a bridge: the default network's gateway (docker's default for
        // it); on a bridge the file is written again at start with the address
        let host_gateway = if hc.network_mode.is_bridge()
            || !hc
                .extra_hosts
                .iter()
                .any(|h| h.ends_with(wharf_types::netopts::HOST_GATEWAY))
        {
            None
        } else {
            self.default_network().ok().map(|n| n.gateway)
        };
        let files = etcfiles::EtcFiles {
            network: &hc.network_mode,
            hostname: &record.config.hostname,
            addresses: &[],
            links: &[],
            host_gateway,
            resolver: None,
            dns: &hc.dns,
            dns_search: &hc.dns_search,
            dns_options: &hc.dns_options,
            extra_hosts: &hc.extra_hosts,
        };
        etcfiles::write_all(&paths.dir, &files)
            .map_err(|e| EngineError::io("write", &paths.dir, e))?;
        self.emit_container(&record, "create", &[]);
        Ok((record, lock))
    }

    fn unused_name(&self) -> Result<String, EngineError> {
        let taken: Vec<String> = self
            .store
            .containers()?
            .into_iter()
            .map(|c| c.name)
            .collect();
        for _ in 0..64 {
            let seed = names::random_bytes::<2>()
                .map_err(|e| EngineError::io("read", "/dev/urandom", e))?;
            let n = names::random_name(seed);
            if !taken.contains(&n) {
                return Ok(n);
            }
        }
        let suffix =
            names::random_bytes::<4>().map_err(|e| EngineError::io("read", "/dev/urandom", e))?;
        Ok(format!(
            "wharf_{:02x}{:02x}{:02x}{:02x}",
            suffix[0], suffix[1], suffix[2], suffix[3]
        ))
    }

    /// Builds the runtime spec for a record.
    pub(crate) fn runtime_spec(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
    ) -> Result<ContainerSpec, EngineError> {
        let hc = &rec.host_config;
        let (capabilities, seccomp, no_new_privileges) = confinement(rec)?;
        let lower = self.store.image_layers(&rec.image)?;
        let mut mounts = Vec::new();
        for (file, dest) in [
            ("hosts", "/etc/hosts"),
            ("hostname", "/etc/hostname"),
            ("resolv.conf", "/etc/resolv.conf"),
        ] {
            mounts.push(rs::Mount {
                kind: rs::MountKind::Bind,
                source: paths.dir.join(file),
                destination: dest.to_string(),
                readonly: hc.readonly_rootfs,
                options: String::new(),
            });
        }
        for m in &hc.mounts {
            let (kind, source) = match m.kind {
                MountKind::Bind => {
                    let src = PathBuf::from(&m.source);
                    if !m.create_mountpoint {
                        crate::validate::bind_source_exists(&m.source)?;
                    } else if !src.exists() {
                        // docker's -v creates a missing host directory
                        std::fs::create_dir_all(&src)
                            .map_err(|e| EngineError::io("create bind source", &src, e))?;
                    }
                    (rs::MountKind::Bind, src)
                }
                MountKind::Volume => (
                    rs::MountKind::Bind,
                    self.volume_for_mount(&m.source)?.mountpoint,
                ),
                MountKind::Tmpfs => (rs::MountKind::Tmpfs, PathBuf::new()),
            };
            mounts.push(rs::Mount {
                kind,
                source,
                destination: m.target.clone(),
                readonly: m.read_only,
                options: m.options.clone(),
            });
        }
        let (masked_paths, readonly_paths) = if hc.privileged {
            (Vec::new(), Vec::new())
        } else {
            (
                wharf_runtime::defaults::masked_paths(),
                wharf_runtime::defaults::readonly_paths(),
            )
        };
        // The default limit is a default, not a protection the user asked for: where the
        // kernel has no pids controller (RHEL 7 before 7.3) it is left out; an explicit
        // --pids-limit still fails closed in the runtime.
        let pids_limit = match hc.pids_limit {
            None if wharf_runtime::cgroup::controller_available("pids") => Some(DEFAULT_PIDS_LIMIT),
            None => {
                if self.opts.debug {
                    eprintln!(
                        "wharf: the host has no pids cgroup controller: default pids limit ({DEFAULT_PIDS_LIMIT}) not applied"
                    );
                }
                None
            }
            Some(n) if n <= 0 => None,
            Some(n) => Some(n),
        };
        let (resources, devices) = crate::resources::runtime_resources(hc)?;
        let mut spec = ContainerSpec {
            id: rec.id.to_string(),
            rootfs: rs::RootfsSpec {
                lower,
                upper: paths.upper.clone(),
                work: paths.work.clone(),
                target: paths.merged.clone(),
                readonly: hc.readonly_rootfs,
                nosuid: false,
            },
            process: rs::ProcessSpec {
                args: rec
                    .config
                    .entrypoint
                    .iter()
                    .chain(rec.config.cmd.iter())
                    .cloned()
                    .collect(),
                env: rec.config.env.clone(),
                cwd: rec.config.working_dir.clone(),
                user: rec.config.user.clone(),
                additional_groups: hc.group_add.clone(),
                terminal: rec.config.tty,
                stdin: rec.config.open_stdin,
            },
            hostname: rec.config.hostname.clone(),
            mounts,
            // bridge and `container:` networks are set up right before a start
            // (`Engine::attach_network`); a spec built for anything else has none
            network: match hc.network_mode {
                NetworkMode::Host => rs::Network::Host,
                _ => rs::Network::None,
            },
            security: rs::SecuritySpec {
                capabilities,
                no_new_privileges,
                seccomp,
                masked_paths,
                readonly_paths,
                privileged: hc.privileged,
            },
            cgroup: rs::CgroupSpec {
                path: cgroup_path(&rec.id),
                memory: (hc.memory > 0).then_some(hc.memory),
                nano_cpus: (hc.nano_cpus > 0).then_some(hc.nano_cpus),
                pids_limit,
                resources,
            },
            rlimits: hc
                .ulimits
                .iter()
                .map(|u| rs::Rlimit {
                    resource: u.resource,
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
            init: hc.init,
            debug: self.opts.debug,
            sysctl: hc.sysctls.clone(),
            domainname: rec.config.domainname.clone(),
            host_uts: hc.options.uts_mode == "host",
            host_pid: hc.options.pid_mode == "host",
            oom_score_adj: (hc.options.oom_score_adj != 0)
                .then(|| i32::try_from(hc.options.oom_score_adj).unwrap_or(0)),
            shm_size: u64::try_from(hc.options.shm_size).ok().filter(|s| *s > 0),
            devices,
            // set right before a start (`Engine::ipc_for_start`: it may mount /dev/shm)
            ipc: rs::Ipc::Private,
        };
        self.policy.harden(&mut spec);
        Ok(spec)
    }

    /// Starts a just-created container in the foreground and waits for it: the CLI's `run`
    /// without `-d`, holding its client lock. Returns the container's exit code (docker's
    /// rules: the command's code, 128+N when killed by signal N). `auto_remove` containers
    /// are removed afterwards. Its pid 1 dies with the calling thread (see
    /// `wharf_runtime::start::start`), so a killed CLI takes the container with it and the
    /// next command to look reconciles it (`crate::client`).
    fn start_foreground(
        &self,
        rec: &ContainerRecord,
        client: ClientLock,
    ) -> Result<i32, EngineError> {
        let r = self.start_foreground_locked(rec);
        client.release();
        r
    }

    fn start_foreground_locked(&self, rec: &ContainerRecord) -> Result<i32, EngineError> {
        let paths = self.store.container_paths(&rec.id);
        let mut state: ContainerState = self
            .store
            .read_container_state(&rec.id)?
            .unwrap_or_default();
        if (state.status() == Status::Running && state.process_alive()) || state.monitor_alive() {
            return Err(StateConflict::AlreadyRunning {
                id: rec.id.short().to_string(),
            }
            .into());
        }
        // the failed start is recorded on the state as it was before (not running), and
        // leaves nothing behind but the record (with `--rm` not even that); the start error
        // is what the caller must see, a teardown error after it is best effort
        let fail = |mut before: ContainerState, e: EngineError| {
            before.error = e.to_string();
            let _ = self.store.write_container_state(&rec.id, &before);
            let _ = self.release(rec, Then::after_exit(rec));
            Err(e)
        };
        // docker keeps the log of an attached run too: the driver opens before anything runs
        // (one that cannot open fails the start, as for a detached one)
        let mut log = None;
        let result = state
            .check_start()
            .map_err(EngineError::from)
            .and_then(|()| self.policy_start(rec))
            .and_then(|()| {
                log = Some(
                    crate::monitor::Log::open(rec, &paths.dir).map_err(EngineError::LogDriver)?,
                );
                Ok(())
            })
            .and_then(|()| self.runtime_spec(rec, &paths))
            .and_then(|mut spec| {
                spec.ipc = self.ipc_for_start(rec)?;
                self.attach_network(rec, &paths, &mut spec)?;
                Ok(spec)
            })
            .and_then(|spec| {
                let opts = wharf_runtime::start::StartOptions {
                    seccomp_cache_dir: self.seccomp_cache_dir(),
                    capture_output: true,
                };
                wharf_runtime::start::create(&spec, &opts).map_err(EngineError::Start)
            });
        let created = match result {
            Ok(c) => c,
            Err(e) => return fail(state, e),
        };
        // pid 1 waits for the go: the state names it before the command can run (and so
        // before anything the command does can be seen)
        let before = state.clone();
        // checked before the start; an error here drops (kills) the container
        state.set_running(created.pid(), now_rfc3339())?;
        state.monitor_pid = 0;
        state.monitor_start_time = 0;
        state.restart_count = 0;
        state.manually_stopped = false;
        // the state write is best effort: a concurrent `rm -f` may have removed the container.
        // It stays durable (its two fsyncs overlap init's setup, which runs meanwhile): after a
        // power cut "running" under the old boot id is reconciled as exited (a `--rm` one
        // removed); a state lost with the cut would leave the record "Created" for ever.
        let _ = self.store.write_container_state(&rec.id, &state);
        let running = match created.start() {
            Ok(r) => r,
            Err(e) => return fail(before, EngineError::Start(e)),
        };
        self.emit_container(rec, "start", &[]);
        // waits (copying the output to the caller and the log), then removes the cgroup
        // (after reading its OOM flag)
        let finished = match &mut log {
            Some(log) => {
                let r = running.wait_foreground_tee(&mut |s, d| log.push(usize::from(s), d));
                log.close();
                r?
            }
            None => running.wait_foreground_full()?,
        };
        let (code, oom) = (finished.status.code(), finished.oom_killed);
        if oom {
            self.emit_container(rec, "oom", &[]);
        }
        self.emit_container(rec, "die", &[("exitCode", code.to_string())]);
        let mut recorded = Ok(());
        if !rec.host_config.auto_remove {
            recorded = state.set_exited(code, oom, now_rfc3339());
            if let Err(e) = &recorded {
                state.set_dead(format!(
                    "container state no longer matches its process: {e}"
                ));
            }
            let _ = self.store.write_container_state(&rec.id, &state);
        }
        // best effort, like the state write: the container ran, its exit code is the result
        // (a concurrent `rm -f` may have released and removed it already)
        let _ = self.release(rec, Then::after_exit(rec));
        recorded?;
        Ok(code)
    }

    /// `run` in the foreground: create, start, wait. The create's warnings go to `warn`
    /// before the start (docker's CLI prints them before the container's output).
    pub fn run_foreground(
        &self,
        req: CreateRequest,
        warn: &mut dyn FnMut(&Warning),
    ) -> Result<i32, EngineError> {
        self.run_foreground_with(req, warn, &mut |_| Ok(()))
    }

    /// [`Engine::run_foreground`], calling `created` with the new record before the start
    /// (the CLI's `--cidfile`); its error removes the container and is returned.
    pub fn run_foreground_with(
        &self,
        req: CreateRequest,
        warn: &mut dyn FnMut(&Warning),
        created_hook: &mut dyn FnMut(&ContainerRecord) -> Result<(), EngineError>,
    ) -> Result<i32, EngineError> {
        let (created, client) = self.create(req, true)?;
        created.warnings.iter().for_each(&mut *warn);
        let rec = created.record;
        if let Err(e) = created_hook(&rec) {
            if let Some(c) = client {
                c.release();
            }
            let _ = self.remove_container(rec.id.as_str(), true, false);
            return Err(e);
        }
        let client = client.ok_or_else(|| not_found(&rec.id))?;
        self.start_foreground(&rec, client)
    }

    /// `rmi`: docker's conflicts, with the containers' real state (a running user cannot be
    /// forced away).
    pub fn remove_image(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<wharf_store::RemoveEvent>, EngineError> {
        let removed = self
            .store
            .remove_image_with(name, force, &|id| self.is_running(id))?;
        for r in &removed {
            match r {
                wharf_store::RemoveEvent::Untagged(n) => self.emit("image", "untag", n, &[]),
                wharf_store::RemoveEvent::Deleted(d) => {
                    self.emit("image", "delete", &d.to_string(), &[])
                }
            }
        }
        Ok(removed)
    }

    /// Whether a container's process runs, read-only (no reconcile write: callers may hold
    /// the store's metadata lock).
    pub(crate) fn is_running(&self, id: &ContainerId) -> bool {
        let Ok(st) = self.load_state(id) else {
            return false;
        };
        matches!(
            st.status(),
            Status::Running | Status::Paused | Status::Restarting
        ) && (st.monitor_alive() || st.process_alive())
    }

    fn load_state(&self, id: &ContainerId) -> Result<ContainerState, EngineError> {
        Ok(self.store.read_container_state(id)?.unwrap_or_default())
    }

    /// The foreground client of a container that has no monitor and is not known to be done.
    fn client_of(&self, id: &ContainerId, st: &ContainerState) -> Client {
        let open = matches!(
            st.status(),
            Status::Created | Status::Running | Status::Paused | Status::Restarting
        );
        if open && st.monitor_pid == 0 {
            self.client(id)
        } else {
            Client::Unknown
        }
    }

    /// The record with its reconciled state. A container found dead (monitor or foreground
    /// client killed, host rebooted) is recorded as exited, its cgroup and run directory
    /// removed, and an `auto_remove` one removed (then `NotFound`): whichever command
    /// notices first does it.
    fn info(&self, record: ContainerRecord) -> Result<ContainerInfo, EngineError> {
        let id = record.id.clone();
        let mut state = self.load_state(&id)?;
        if state.reconcile(now_rfc3339(), self.client_of(&id, &state)) {
            // read again: a monitor or client may have recorded the real exit meanwhile
            let mut again = self.load_state(&id)?;
            if again.reconcile(now_rfc3339(), self.client_of(&id, &again)) {
                let then = Then::after_exit(&record);
                match self.release(&record, then) {
                    Ok(()) if then != Then::Keep => return Err(not_found(&id)),
                    // removed meanwhile by whoever noticed first
                    Err(e) if e.kind() == wharf_types::ErrorKind::NotFound => {
                        return Err(not_found(&id))
                    }
                    // best effort for a reader (`ps` must not fail on one container): shown
                    // exited; `rm` releases again
                    Ok(()) | Err(_) => {}
                }
                let _ = self.store.write_container_state(&id, &again);
            }
            state = again;
        }
        // paused is the freezer's state, not a field the monitor writes
        if state.status() == Status::Running && Cgroup::open(&cgroup_path(&record.id)).is_frozen() {
            state.observe_frozen();
        }
        Ok(ContainerInfo { record, state })
    }

    /// All containers (running ones only unless `all`), newest first.
    pub fn containers(&self, all: bool) -> Result<Vec<ContainerInfo>, EngineError> {
        let mut out = Vec::new();
        for rec in self.store.containers()? {
            let info = match self.info(rec) {
                Ok(i) => i,
                // removed meanwhile (`--rm`, by another command or just now by `info`)
                Err(e) if e.kind() == wharf_types::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if all
                || matches!(
                    info.state.status(),
                    Status::Running | Status::Paused | Status::Restarting
                )
            {
                out.push(info);
            }
        }
        out.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(out)
    }

    pub fn container(&self, name_or_id: &str) -> Result<ContainerInfo, EngineError> {
        let rec = self.store.container(name_or_id)?;
        self.info(rec)
    }

    /// `rm [-f] [-v]`: refuses a running container unless forced; forced removal kills it
    /// first. Removes the cgroup, the container's directories and its record; with
    /// `volumes`, its anonymous volumes (never a named one).
    pub fn remove_container(
        &self,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<ContainerId, EngineError> {
        let info = self.container(name_or_id)?;
        let id = info.record.id.clone();
        let monitored = info.state.monitor_alive();
        self.stop_for_removal(&info, force)?;
        match self.release(&info.record, Then::Remove { volumes }) {
            // a `--rm` monitor removed it while we waited (and said so)
            Err(e) if monitored && e.kind() == wharf_types::ErrorKind::NotFound => Ok(id),
            Err(e) => Err(e),
            Ok(()) => Ok(id),
        }
    }

    /// `rm`: refuses a running container unless forced, else kills it and waits until its
    /// process (and monitor) are gone.
    fn stop_for_removal(&self, info: &ContainerInfo, force: bool) -> Result<(), EngineError> {
        let id = info.record.id.clone();
        let monitored = info.state.monitor_alive();
        if monitored && !force {
            return Err(StateConflict::RemoveRunning {
                name: info.record.name.clone(),
            }
            .into());
        }
        if monitored {
            self.kill_monitored(info)?;
        } else if info.state.process_alive() {
            if !force {
                return Err(StateConflict::RemoveRunning {
                    name: info.record.name.clone(),
                }
                .into());
            }
            let pid = nix::unistd::Pid::from_raw(info.state.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while info.state.process_alive() {
                if std::time::Instant::now() > deadline {
                    return Err(EngineError::StopFailed {
                        id: id.to_string(),
                        waited_secs: 10,
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        Ok(())
    }
}

/// Anonymous volumes made for a create that has not written its record yet: removed on drop
/// unless `names` was cleared.
struct AnonVolumes<'a> {
    engine: &'a Engine,
    names: Vec<String>,
}

impl Drop for AnonVolumes<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.engine.remove_volume(n, true);
        }
    }
}

/// Docker's `inspect` object for a container.
pub fn inspect_json(engine: &Engine, info: &ContainerInfo) -> serde_json::Value {
    let rec = &info.record;
    let st = &info.state;
    let paths = engine.store.container_paths(&rec.id);
    let argv: Vec<&String> = rec
        .config
        .entrypoint
        .iter()
        .chain(rec.config.cmd.iter())
        .collect();
    let lower = engine.lower_dirs(&rec.image);
    let mounts: Vec<serde_json::Value> = rec
        .host_config
        .mounts
        .iter()
        .map(|m| {
            let source = match m.kind {
                MountKind::Volume => engine
                    .store
                    .volume(&m.source)
                    .map(|v| v.mountpoint.display().to_string())
                    .unwrap_or_default(),
                _ => m.source.clone(),
            };
            serde_json::json!({
                "Type": m.kind,
                "Name": if m.kind == MountKind::Volume { m.source.clone() } else { String::new() },
                "Source": source,
                "Destination": m.target,
                "RW": !m.read_only,
            })
        })
        .collect();
    let mut state = serde_json::json!({
        "Status": st.status().as_str(),
        "Running": st.status() == Status::Running,
        "Paused": st.status() == Status::Paused,
        "Restarting": st.status() == Status::Restarting,
        "OOMKilled": st.oom_killed,
        "Dead": st.status() == Status::Dead,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at,
        "FinishedAt": st.finished_at,
    });
    if let (Some(h), Some(obj)) = (&st.health, state.as_object_mut()) {
        obj.insert("Health".into(), serde_json::to_value(h).unwrap_or_default());
    }
    let mut host = crate::inspect_shape::host_config(
        serde_json::to_value(&rec.host_config).unwrap_or_default(),
    );
    if let Some(h) = host.as_object_mut() {
        // what the runtime applies (docker lists its defaults; none when privileged)
        for (k, v) in [
            ("MaskedPaths", wharf_runtime::defaults::masked_paths()),
            ("ReadonlyPaths", wharf_runtime::defaults::readonly_paths()),
        ] {
            if h.get(k).is_none_or(serde_json::Value::is_null) && !rec.host_config.privileged {
                h.insert(k.into(), serde_json::json!(v));
            }
        }
    }
    let log_path = if matches!(rec.host_config.log_config.driver.as_str(), "" | "json-file") {
        wharf_logs::json_log_path(&paths.dir, &rec.id.to_string())
            .display()
            .to_string()
    } else {
        String::new()
    };
    serde_json::json!({
        "Id": rec.id.to_string(),
        "Created": rec.created,
        "Path": argv.first().map(|s| s.as_str()).unwrap_or(""),
        "Args": argv.iter().skip(1).collect::<Vec<_>>(),
        "State": state,
        "Image": rec.image.to_string(),
        "ResolvConfPath": paths.dir.join("resolv.conf"),
        "HostnamePath": paths.dir.join("hostname"),
        "HostsPath": paths.dir.join("hosts"),
        "LogPath": log_path,
        "Name": format!("/{}", rec.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host,
        "GraphDriver": {
            "Data": {
                "LowerDir": lower,
                "MergedDir": paths.merged,
                "UpperDir": paths.upper,
                "WorkDir": paths.work,
            },
            "Name": "overlay",
        },
        "Mounts": mounts,
        "Config": crate::inspect_shape::container_config(
            serde_json::to_value(&rec.config).unwrap_or_default()
        ),
        "NetworkSettings": crate::inspect_shape::network_settings(
            engine.network_settings_json(info)
        ),
    })
}

/// [`inspect_json`] with `inspect --size`: docker's `SizeRw` and `SizeRootFs`, after
/// `GraphDriver` as dockerd places them.
pub fn inspect_json_sized(engine: &Engine, info: &ContainerInfo) -> serde_json::Value {
    let v = inspect_json(engine, info);
    let (rw, rootfs) = engine.container_size(info);
    let serde_json::Value::Object(o) = v else {
        return v;
    };
    let mut out = serde_json::Map::new();
    for (k, val) in o {
        let after_graph = k == "GraphDriver";
        out.insert(k, val);
        if after_graph {
            out.insert("SizeRw".into(), rw.into());
            out.insert("SizeRootFs".into(), rootfs.into());
        }
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated name that another create claimed meanwhile is replaced; a given one is not.
    #[test]
    fn generated_name_conflict_is_retried() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = Engine::open(crate::EngineOptions {
            root: tmp.path().join("root"),
            run_root: tmp.path().join("run"),
            debug: false,
        })
        .unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("etc/marker").unwrap();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let opts = wharf_store::ImportOptions {
            reference: Some("img:1".parse().unwrap()),
            ..Default::default()
        };
        engine.store.import(&tar[..], &opts).unwrap();
        let req = |name: Option<&str>| CreateRequest {
            image: "img:1".into(),
            name: name.map(str::to_string),
            args: vec!["true".into()],
            ..Default::default()
        };
        let busy = engine.create_container(req(Some("busy"))).unwrap().record;
        // the name source hands out the taken name first, as a racing create would see it
        let mut names = vec!["free".to_string(), "busy".to_string()];
        let (rec, _) = engine
            .create_with(req(None), None, false, &mut || Ok(names.pop().unwrap()))
            .unwrap();
        assert_eq!(rec.name, "free");
        assert_ne!(rec.id, busy.id);
        let e = engine.create_container(req(Some("busy"))).unwrap_err();
        assert_eq!(e.kind(), wharf_types::ErrorKind::AlreadyExists);
    }

    #[test]
    fn security_opts() {
        let s = parse_security_opts(&[]).unwrap();
        assert!(s.no_new_privileges);
        assert_eq!(s.seccomp, rs::Seccomp::Default);
        let s = parse_security_opts(&[
            "seccomp=unconfined".into(),
            "no-new-privileges=false".into(),
        ])
        .unwrap();
        assert_eq!(s.seccomp, rs::Seccomp::Unconfined);
        assert!(!s.no_new_privileges);
        assert!(parse_security_opts(&["apparmor=docker-default".into()]).is_err());
        assert!(parse_security_opts(&["bogus".into()]).is_err());
        assert!(parse_security_opts(&["seccomp=".into()]).is_err());
    }
}
