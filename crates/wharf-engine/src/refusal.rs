//! The engine's refusals, typed: a request it will not carry out ([`ValidationError`]: the
//! user's options, as docker's daemon checks them) and an operation the container's current
//! state does not allow ([`StateConflict`]). Each variant carries its facts as fields and
//! its message in docker's wording (the CLI tests compare several of them), and has its
//! `ErrorKind`, from which the exit code and HTTP status follow (`ErrorKind::exit_code`).
//! No variant holds a free-form message: a new refusal is a new variant.

use std::net::IpAddr;
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
    /// `-p [::1]:8080:80` for a container on a network without IPv6: nothing in the kernel
    /// translates IPv6 to the container's IPv4 address (docker's userland proxy would).
    #[error("publishing on the IPv6 address {address} needs a network with IPv6: network {network} has none (network create --ipv6, or daemon.json's ipv6 and fixed-cidr-v6 for the default bridge)")]
    PublishIpv6 { address: String, network: String },
    /// `-p [::1]:…`: the kernel does not carry IPv6 loopback traffic to a container (IPv6
    /// has no `route_localnet`), and wharf runs no userland proxy.
    #[error("publishing on the IPv6 loopback address ::1 is not supported: the kernel does not route IPv6 loopback traffic into a container (publish on 127.0.0.1, or on the host's IPv6 address)")]
    PublishIpv6Loopback,
    /// `--ip6` on a network without IPv6.
    #[error(
        "invalid --ip6 {address}: network {network} has no IPv6 subnet (network create --ipv6)"
    )]
    Ip6WithoutIpv6 { address: String, network: String },
    /// `--network container:` naming the container being created.
    #[error("cannot join own network namespace: {name}")]
    NetworkSelf { name: String },
    /// daemon.json's `published-port-range` and the policy's `[run] published_ports` have
    /// no port in common: `-P` and `-p CTR` have nothing to choose from.
    #[error("no host port can be published: daemon.json's published-port-range {daemon} and the policy's allowed published ports {policy} do not overlap")]
    PortRangesDisjoint { daemon: String, policy: String },
    /// `--sysctl net.*` with `--network host`: it would change the host's (runc's words).
    #[error("sysctl {key:?} not allowed in host network namespace")]
    SysctlHostNetwork { key: String },
    /// `--sysctl net.*` with `--network container:X`: it would change X's namespace.
    #[error("sysctl {key:?} not allowed in a joined network namespace: --network container: shares another container's")]
    SysctlJoinedNetwork { key: String },
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
    /// A `run`/`create` flag (or its API field) wharf does not apply, with the reason.
    #[error("{flag} is not supported by wharf: {reason}")]
    FlagRefused { flag: String, reason: &'static str },
    #[error("invalid value {value:?} for {flag}: {reason}")]
    FlagValue {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot join IPC of a non running container: {name}")]
    IpcDonorNotRunning { name: String },
    #[error("non-shareable IPC (hint: use IpcMode:shareable for the donor container)")]
    IpcDonorNotShareable,
    #[error("Restart policy cannot be updated because AutoRemove is enabled for the container")]
    UpdateRestartAutoRemove,
    #[error("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")]
    UpdateMemoryAboveSwap,
    #[error("you must provide one or more flags when using this command")]
    UpdateNothing,
    /// docker's `Conflicting options: ...` refusals.
    #[error("Conflicting options: {what}")]
    FlagConflict { what: &'static str },
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
    #[error("extraction point {path} in container {container} is not a directory")]
    CpExtractNotDir { path: String, container: String },
    #[error("archive for {path} in container {container} is larger than {limit} bytes")]
    CpArchiveTooLarge {
        path: String,
        container: String,
        limit: u64,
    },
    /// A directory over a non-directory or the reverse, refused (`detail` names the entry).
    #[error("{detail}")]
    CpOverwrite { detail: String },
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
    /// wharf's bridge networks have one IPv4 subnet (and with `--ipv6` one IPv6 subnet), one
    /// gateway each, one ip-range.
    #[error(
        "{flag} given {count} times: a network has one IPv4 and one IPv6 subnet, one gateway in each and one IPv4 ip-range"
    )]
    NetworkMultiple { flag: &'static str, count: usize },
    #[error("{what} is not supported yet")]
    NetworkIpv6 { what: String },
    /// An IPv6 `--subnet` without `--ipv6` (docker would record it and use it nowhere).
    #[error("invalid --subnet {subnet}: an IPv6 subnet needs --ipv6")]
    NetworkIpv6Off { subnet: wharf_types::net::Subnet },
    /// `--gateway` in neither of the network's subnets.
    #[error("invalid --gateway {gateway}: it is in no --subnet of the network")]
    NetworkGatewayUnmatched { gateway: IpAddr },
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
    /// `--pull` (docker's words).
    #[error("invalid pull option: '{value}': must be one of \"always\", \"missing\" or \"never\"")]
    PullPolicy { value: String },
    /// `network connect` of a container in `host` or `container:` mode.
    #[error("container sharing network namespace with another container or host cannot be connected to any other network")]
    NetworkConnectShared,
    /// `network connect` of a container in `none` mode.
    #[error("container cannot be connected to multiple networks with one of the networks in private (none) mode")]
    NetworkConnectNone,
    #[error("endpoint with name {container} already exists in network {network}")]
    NetworkAlreadyConnected { container: String, network: String },
    #[error("container {id} is not connected to network {network}")]
    NetworkNotConnected { id: String, network: String },
    /// A container on [`crate::network::MAX_NETWORKS`] networks already.
    #[error("container {container} is on {count} networks already, the most wharf supports")]
    NetworkTooMany { container: String, count: usize },
    /// The record changed between reading and writing it (another connect/disconnect).
    #[error("the networks of container {container} changed meanwhile: run the command again")]
    NetworkRecordChanged { container: String },

    // ---- `--link` (docker's legacy links)
    #[error("bad format for links: {value}")]
    LinkFormat { value: String },
    #[error("could not get container for {name}")]
    LinkNotFound { name: String },
    /// `what`: docker's "host type networking" or "container type network".
    #[error("conflicting options: {what} can't be used with links. This would result in undefined behavior")]
    LinkNetworkMode { what: &'static str },
    /// docker's: `/db AS /web/db`.
    #[error("Cannot link to a non running container: /{target} AS /{container}/{alias}")]
    LinkNotRunning {
        target: String,
        container: String,
        alias: String,
    },
    #[error("Cannot link to /{target}, as it does not belong to the default network")]
    LinkNotOnDefault { target: String },
}

impl HasKind for ValidationError {
    fn kind(&self) -> ErrorKind {
        use ValidationError as V;
        match self {
            V::NetworkNotFound { .. } | V::CpNotFound { .. } => ErrorKind::NotFound,
            V::CpArchiveTooLarge { .. } => ErrorKind::TooLarge,
            V::RestartWithAutoRemove { .. }
            | V::NetworkContainerNotRunning { .. }
            | V::IpcDonorNotRunning { .. } => ErrorKind::Conflict,
            V::AppArmorUnsupported { .. }
            | V::SelinuxUnsupported { .. }
            | V::TopOptionsUnsupported { .. }
            | V::CpStreamUnsupported => ErrorKind::NotImplemented,
            V::NetworkHostOverlap { .. } | V::NetworkInUse { .. } => ErrorKind::Conflict,
            V::NetworkPredefined { .. } => ErrorKind::PermissionDenied,
            V::NetworkFlag { source, .. } => source.kind(),
            V::NetworkIpv6 { .. } | V::NetworkOptionUnsupported { .. } => ErrorKind::NotImplemented,
            V::NetworkConnectShared
            | V::NetworkConnectNone
            | V::NetworkTooMany { .. }
            | V::LinkFormat { .. }
            | V::LinkNetworkMode { .. } => ErrorKind::InvalidArgument,
            V::NetworkAlreadyConnected { .. }
            | V::NetworkRecordChanged { .. }
            | V::LinkNotRunning { .. }
            | V::LinkNotOnDefault { .. } => ErrorKind::Conflict,
            V::NetworkNotConnected { .. } => ErrorKind::FailedPrecondition,
            V::LinkNotFound { .. } => ErrorKind::NotFound,
            V::NetworkDriver { .. }
            | V::NetworkSubnet { .. }
            | V::NetworkAddress { .. }
            | V::NetworkNoSubnet
            | V::NetworkMultiple { .. }
            | V::NetworkIpv6Off { .. }
            | V::NetworkGatewayUnmatched { .. }
            | V::Ip6WithoutIpv6 { .. }
            | V::NetworkOption { .. }
            | V::NetworkBuiltinConnect { .. }
            | V::SysctlHostNetwork { .. }
            | V::SysctlJoinedNetwork { .. } => ErrorKind::InvalidArgument,
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
            | V::FlagRefused { .. }
            | V::FlagValue { .. }
            | V::FlagConflict { .. }
            | V::IpcDonorNotShareable
            | V::UpdateRestartAutoRemove
            | V::UpdateMemoryAboveSwap
            | V::UpdateNothing
            | V::CpSides
            | V::CpSymlinkLoop { .. }
            | V::CpDirectoryToFile { .. }
            | V::CpDestinationMissing { .. }
            | V::CpDestination { .. }
            | V::CpExtractNotDir { .. }
            | V::CpOverwrite { .. }
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
            | V::NetworkSelf { .. }
            | V::PullPolicy { .. } => ErrorKind::InvalidArgument,
            V::PublishIpv6 { .. } => ErrorKind::FailedPrecondition,
            V::PublishIpv6Loopback => ErrorKind::NotImplemented,
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
    /// `id`: the short id.
    #[error("container {id} was changed by another update at the same time: try again")]
    UpdateRaced { id: String },
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
