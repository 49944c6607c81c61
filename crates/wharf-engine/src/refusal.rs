//! The engine's refusals, typed: a request it will not carry out ([`ValidationError`]: the
//! user's options, as docker's daemon checks them) and an operation the container's current
//! state does not allow ([`StateConflict`]). Each variant carries its facts as fields and
//! its message in docker's wording (the CLI tests compare several of them), and has its
//! `ErrorKind`, from which the exit code and HTTP status follow (`ErrorKind::exit_code`).
//! No variant holds a free-form message: a new refusal is a new variant.

use wharf_types::error::{ErrorKind, HasKind};

/// A request refused before anything was done.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    // ---- mounts: `-v`, `--mount`, `--tmpfs` (crate::mounts)
    #[error("invalid mount config for {spec:?}: mount path must be absolute")]
    MountTargetNotAbsolute { spec: String },
    #[error("invalid mount config for {spec:?}: destination must not contain '..'")]
    MountTargetDotDot { spec: String },
    #[error("invalid mount config for {spec:?}: destination can't be '/'")]
    MountTargetRoot { spec: String },
    /// A mount over the container's own procfs or sysfs (`fs`: "procfs" or "sysfs"; `what`:
    /// the protected area).
    #[error("invalid mount config for {spec:?}: {target} cannot be mounted over: {what} belong to the container's own {fs}")]
    MountOverKernelFs {
        spec: String,
        target: String,
        what: &'static str,
        fs: &'static str,
    },
    #[error("invalid volume specification: {spec:?}")]
    VolumeSpec { spec: String },
    #[error("invalid volume specification: {spec:?}: unknown option {option:?}")]
    VolumeOption { spec: String, option: String },
    #[error("invalid volume specification: {spec:?}: a host path must be absolute")]
    VolumeHostPathRelative { spec: String },
    #[error("invalid volume specification: {spec:?}: host path must not contain '..'")]
    VolumeHostPathDotDot { spec: String },
    #[error("invalid volume name {name:?}")]
    VolumeName { name: String },
    #[error("unsupported mount type {kind:?}")]
    MountType { kind: String },
    #[error("invalid field {field:?} in --mount {spec:?}")]
    MountField { field: String, spec: String },
    #[error("invalid mount config for {spec:?}: bind source must be an absolute path")]
    BindSourceNotAbsolute { spec: String },
    /// docker's daemon refuses a missing `--mount type=bind` source (only `-v` creates it).
    #[error(
        "invalid mount config for type \"bind\": bind source path does not exist: {source_path}"
    )]
    BindSourceMissing { source_path: String },
    #[error("invalid tmpfs option {option:?} in {spec:?}")]
    TmpfsOption { option: String, spec: String },

    // ---- create options (crate::validate, crate::create, crate::run)
    #[error("invalid restart policy {value:?}")]
    RestartPolicy { value: String },
    #[error("invalid --log-opt {opt:?}: expected key=value")]
    LogOpt { opt: String },
    #[error("network {name} not found")]
    NetworkNotFound { name: String },
    #[error("invalid memory limit: {bytes}")]
    MemoryNegative { bytes: i64 },
    #[error("minimum memory limit allowed is 6MB")]
    MemoryBelowMinimum { bytes: i64 },
    #[error("range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")]
    CpuRange { nano_cpus: i64, ncpu: usize },
    #[error("conflicting options: cannot specify both --restart and --rm")]
    RestartWithAutoRemove { restart: String },
    #[error("opening seccomp profile ({path}) failed: {error}")]
    SeccompProfileOpen { path: String, error: std::io::Error },
    #[error("decoding seccomp profile {path} failed: not utf-8")]
    SeccompProfileUtf8 { path: String },
    #[error("decoding seccomp profile {path} failed: {error}")]
    SeccompProfileJson {
        path: String,
        error: serde_json::Error,
    },
    #[error("invalid --security-opt seccomp: needs a profile file or 'unconfined'")]
    SeccompEmpty,
    #[error("invalid --security-opt {opt:?}")]
    SecurityOpt { opt: String },
    #[error("env file {path} is larger than {max} bytes")]
    EnvFileTooLarge { path: String, max: u64 },
    #[error("env file {path}: {error}")]
    EnvFile {
        path: String,
        error: wharf_types::parse::ParseError,
    },
    #[error("invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    ContainerName { name: String },
    #[error("no command specified: image {image} has no CMD or ENTRYPOINT and none was given")]
    NoCommand { image: String },
    #[error("the working directory {workdir:?} is invalid: it needs to be an absolute path")]
    WorkdirNotAbsolute { workdir: String },
    #[error("{field} in Healthcheck cannot be less than 1ms (got {ns}ns)")]
    HealthcheckDuration { field: &'static str, ns: i64 },
    #[error("Retries in Healthcheck cannot be negative")]
    HealthcheckRetries { retries: i64 },

    // ---- network options against the network mode (docker's runconfig errors)
    #[error("conflicting options: hostname and the network mode")]
    NetworkHostname,
    #[error("conflicting options: dns and the network mode")]
    NetworkDns,
    #[error("conflicting options: custom host-to-IP mapping and the network mode")]
    NetworkHosts,
    #[error("conflicting options: mac-address and the network mode")]
    NetworkMac,
    #[error("conflicting options: port publishing and the container type network mode")]
    NetworkPublish,
    #[error("conflicting options: port exposing and the container type network mode")]
    NetworkExpose,
    /// `-p`/`-P` with `--network none`: no interface to publish on.
    #[error("conflicting options: port publishing and the none network mode (the container has no network to publish on)")]
    PublishNoNetwork,
    #[error("network-scoped alias is supported only for containers in user defined networks")]
    NetworkAlias,
    /// `-p [::1]:8080:80`: bridge networks have IPv4 addresses only in this build.
    #[error("publishing on the IPv6 address {address} is not supported: bridge networks are IPv4 only in this build")]
    PublishIpv6 { address: String },
    /// `--network container:` naming the container being created.
    #[error("cannot join own network namespace: {name}")]
    NetworkSelf { name: String },
    /// daemon.json's `published-port-range` and the policy's `[run] published_ports` have
    /// no port in common: `-P` and `-p CTR` have nothing to choose from.
    #[error("no host port can be published: daemon.json's published-port-range {daemon} and the policy's allowed published ports {policy} do not overlap")]
    PortRangesDisjoint { daemon: String, policy: String },
    /// `--network container:X` at start: X must be running.
    #[error("cannot join network of a non running container: {id}")]
    NetworkContainerNotRunning { id: String },

    // ---- features this build does not have
    #[error("apparmor profile {profile:?} requested but wharf does not apply AppArmor profiles; refusing to start without it")]
    AppArmorUnsupported { profile: String },
    #[error("SELinux label {label:?} requested but wharf does not apply SELinux labels; refusing to start without it")]
    SelinuxUnsupported { label: String },
    #[error("top: ps options {args:?} are not supported (wharf shows ps -ef columns)")]
    TopOptionsUnsupported { args: String },
    #[error("cp to a tar stream on stdout is not supported yet")]
    CpStreamUnsupported,

    // ---- exec, kill, cp, events
    #[error("exec --privileged refused: container {id} is not privileged, and exec never gets more privilege than its container")]
    ExecPrivileged { id: String },
    #[error("exec needs a command to run")]
    ExecNoCommand,
    #[error("a detached exec takes no stdio: its output goes nowhere")]
    ExecDetachedStdio,
    #[error("an exec with a terminal gets a new pty (ExecStdio::Pty), not stdio fds")]
    ExecTtyWithFds,
    #[error("the working directory '{workdir}' is invalid, it needs to be an absolute path")]
    ExecWorkdirNotAbsolute { workdir: String },
    #[error("Invalid signal: {signal}")]
    Signal { signal: String },
    #[error("invalid port specification: {port:?}")]
    PortSpec { port: String },
    #[error("invalid condition: {value:?}")]
    WaitCondition { value: String },
    /// A field of an API request that wharf cannot honour (a host namespace, devices, a
    /// sysctl, ...): refused, never silently ignored, so nothing the request asked for is
    /// quietly looser or different.
    #[error("{field} is not supported by wharf (refused rather than ignored)")]
    UnsupportedField { field: String },
    #[error("copying between containers or between host paths is not supported: exactly one side must be CONTAINER:PATH")]
    CpSides,
    #[error("Could not find the file {path} in container {container}")]
    CpNotFound { path: String, container: String },
    #[error("too many levels of symbolic links resolving {path} in container {container}")]
    CpSymlinkLoop { path: String, container: String },
    #[error("cannot copy a directory to a file: {path}")]
    CpDirectoryToFile { path: String },
    #[error("destination directory {path} does not exist")]
    CpDestinationMissing { path: String },
    #[error("invalid destination {path}")]
    CpDestination { path: String },
    #[error("invalid value for \"{flag}\": {error}")]
    EventsTime {
        flag: String,
        error: wharf_logs::LogError,
    },
    #[error("bad format of filter (expected name=value): {filter}")]
    FilterFormat { filter: String },
    #[error("invalid filter '{name}'")]
    FilterName { name: String },
    #[error("invalid filter '{name}={value}'")]
    FilterValue { name: String, value: String },
    #[error("volume driver {driver:?} is not supported (only \"local\")")]
    VolumeDriver { driver: String },
    #[error("Renaming a container with the same name as its current name")]
    RenameSameName,

    // ---- networks (crate::networks)
    #[error("network driver {driver:?} is not supported (only \"bridge\")")]
    NetworkDriver { driver: String },
    #[error("invalid {flag} {value:?}: {error}")]
    NetworkSubnet {
        flag: &'static str,
        value: String,
        error: wharf_types::net::SubnetError,
    },
    #[error("invalid {flag} {value:?}: not an IP address")]
    NetworkAddress { flag: &'static str, value: String },
    /// The store refused the network for what one flag gave (an overlapping or too small
    /// `--subnet`, a `--gateway` or `--ip-range` outside it); the store's error says why.
    #[error("invalid {flag}")]
    NetworkFlag {
        flag: &'static str,
        #[source]
        source: wharf_store::network::NetworkError,
    },
    #[error("every ip-range or gateway must have a corresponding subnet (--subnet)")]
    NetworkNoSubnet,
    /// wharf's bridge networks have one IPv4 subnet, one gateway, one ip-range.
    #[error(
        "{flag} given {count} times: a network has one IPv4 subnet, one gateway and one ip-range"
    )]
    NetworkMultiple { flag: &'static str, count: usize },
    #[error("IPv6 networks are not supported yet ({what})")]
    NetworkIpv6 { what: String },
    #[error(
        "invalid --subnet {subnet}: it overlaps {host}, a subnet of the host's own interfaces"
    )]
    NetworkHostOverlap {
        subnet: wharf_types::net::Subnet,
        host: wharf_types::net::Subnet,
    },
    #[error("invalid --opt {key}={value}: {reason}")]
    NetworkOption {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("--opt {key}={value} is not supported yet")]
    NetworkOptionUnsupported { key: String, value: String },
    #[error("{name} is a pre-defined network and cannot be removed")]
    NetworkPredefined { name: String },
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    NetworkInUse { name: String, id: String },
    #[error(
        "container cannot be disconnected from {network} network or connected to {network} network"
    )]
    NetworkBuiltinConnect { network: String },
    #[error(
        "network {action} is not supported for a running container yet: stop {container} first"
    )]
    NetworkRunningContainer {
        action: &'static str,
        container: String,
    },
    #[error("network {action} of a stopped container is not supported yet: the container's record has no list of networks in this build")]
    NetworkStoppedContainer {
        action: &'static str,
        container: String,
    },
}

impl HasKind for ValidationError {
    fn kind(&self) -> ErrorKind {
        use ValidationError as V;
        match self {
            V::NetworkNotFound { .. } | V::CpNotFound { .. } => ErrorKind::NotFound,
            V::RestartWithAutoRemove { .. } | V::NetworkContainerNotRunning { .. } => {
                ErrorKind::Conflict
            }
            V::AppArmorUnsupported { .. }
            | V::SelinuxUnsupported { .. }
            | V::TopOptionsUnsupported { .. }
            | V::CpStreamUnsupported => ErrorKind::NotImplemented,
            V::NetworkHostOverlap { .. } | V::NetworkInUse { .. } => ErrorKind::Conflict,
            V::NetworkPredefined { .. } => ErrorKind::PermissionDenied,
            V::NetworkFlag { source, .. } => source.kind(),
            V::NetworkIpv6 { .. }
            | V::NetworkOptionUnsupported { .. }
            | V::NetworkRunningContainer { .. }
            | V::NetworkStoppedContainer { .. } => ErrorKind::NotImplemented,
            V::NetworkDriver { .. }
            | V::NetworkSubnet { .. }
            | V::NetworkAddress { .. }
            | V::NetworkNoSubnet
            | V::NetworkMultiple { .. }
            | V::NetworkOption { .. }
            | V::NetworkBuiltinConnect { .. } => ErrorKind::InvalidArgument,
            V::MountTargetNotAbsolute { .. }
            | V::MountTargetDotDot { .. }
            | V::MountTargetRoot { .. }
            | V::MountOverKernelFs { .. }
            | V::VolumeSpec { .. }
            | V::VolumeOption { .. }
            | V::VolumeHostPathRelative { .. }
            | V::VolumeHostPathDotDot { .. }
            | V::VolumeName { .. }
            | V::MountType { .. }
            | V::MountField { .. }
            | V::BindSourceNotAbsolute { .. }
            | V::BindSourceMissing { .. }
            | V::TmpfsOption { .. }
            | V::RestartPolicy { .. }
            | V::LogOpt { .. }
            | V::MemoryNegative { .. }
            | V::MemoryBelowMinimum { .. }
            | V::CpuRange { .. }
            | V::SeccompProfileOpen { .. }
            | V::SeccompProfileUtf8 { .. }
            | V::SeccompProfileJson { .. }
            | V::SeccompEmpty
            | V::SecurityOpt { .. }
            | V::ContainerName { .. }
            | V::EnvFileTooLarge { .. }
            | V::EnvFile { .. }
            | V::NoCommand { .. }
            | V::WorkdirNotAbsolute { .. }
            | V::HealthcheckDuration { .. }
            | V::HealthcheckRetries { .. }
            | V::ExecPrivileged { .. }
            | V::ExecNoCommand
            | V::ExecDetachedStdio
            | V::ExecTtyWithFds
            | V::ExecWorkdirNotAbsolute { .. }
            | V::Signal { .. }
            | V::WaitCondition { .. }
            | V::PortSpec { .. }
            | V::UnsupportedField { .. }
            | V::CpSides
            | V::CpSymlinkLoop { .. }
            | V::CpDirectoryToFile { .. }
            | V::CpDestinationMissing { .. }
            | V::CpDestination { .. }
            | V::EventsTime { .. }
            | V::FilterFormat { .. }
            | V::FilterName { .. }
            | V::FilterValue { .. }
            | V::VolumeDriver { .. }
            | V::RenameSameName
            | V::NetworkHostname
            | V::NetworkDns
            | V::NetworkHosts
            | V::NetworkMac
            | V::NetworkPublish
            | V::NetworkExpose
            | V::PublishNoNetwork
            | V::NetworkAlias
            | V::NetworkSelf { .. } => ErrorKind::InvalidArgument,
            V::PublishIpv6 { .. } => ErrorKind::NotImplemented,
            V::PortRangesDisjoint { .. } => ErrorKind::FailedPrecondition,
        }
    }
}

/// An operation the container's current state does not allow (docker's 409s).
#[derive(Debug, thiserror::Error)]
pub enum StateConflict {
    /// `id` as docker prints it (full id).
    #[error("Container {id} is not running")]
    NotRunning { id: String },
    #[error("Container {id} is paused, unpause the container before exec")]
    ExecPaused { id: String },
    /// `id`: the short id.
    #[error("container {id} is already running")]
    AlreadyRunning { id: String },
    #[error("cannot start a paused container, try unpause instead")]
    StartPaused { id: String },
    #[error("cannot remove container \"/{name}\": container is running: stop the container before removing or force remove")]
    RemoveRunning { name: String },
    #[error("Cannot kill container: {name}: Container {id} is not running")]
    KillNotRunning { name: String, id: String },
    #[error("Cannot kill container: {name}: {error}")]
    KillFailed { name: String, error: std::io::Error },
    #[error("Container {id} is already paused")]
    AlreadyPaused { id: String },
    #[error("Container {id} is not paused")]
    NotPaused { id: String },
    #[error("You cannot attach to a stopped container, start it first")]
    AttachStopped { id: String },
    #[error("You cannot attach to a paused container, unpause it first")]
    AttachPaused { id: String },
    /// `id`: the short id.
    #[error("container {id} runs in the foreground of another wharf: nothing to attach to")]
    AttachForeground { id: String },
}

impl HasKind for StateConflict {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_codes() {
        let e = ValidationError::BindSourceMissing {
            source_path: "/nonexistent".into(),
        };
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent"
        );
        assert_eq!(
            ValidationError::RestartWithAutoRemove {
                restart: "always".into()
            }
            .kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            ValidationError::NetworkPublish.to_string(),
            "conflicting options: port publishing and the container type network mode"
        );
        let c = StateConflict::NotRunning { id: "abc".into() };
        assert_eq!(
            (c.kind(), c.to_string().as_str()),
            (ErrorKind::Conflict, "Container abc is not running")
        );
        assert_eq!(c.kind().http_status(), 409);
    }
}
