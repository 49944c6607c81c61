//! wharf's daemon.json (`/etc/wharf/daemon.json`, or the file named by `$WHARF_CONFIG`), read
//! once per process by [`crate::Engine::open`] — bounded, regular files only — and handed out
//! as values: the registry keys to the distribution client ([`RegistryConfig`]), and docker's
//! daemon defaults that the engine applies at create: `log-driver`/`log-opts` (for containers
//! created without `--log-driver`), `default-ulimits` (merged under `--ulimit`), `data-root`
//! (the store root when no `--root`/`WHARF_ROOT` is given). Keys wharf does not know are
//! ignored (docker's file has many; bundles read theirs from the same file). docs/daemon.md
//! documents every key.
//!
//! Must not: be read again per operation, accept a malformed file silently (every error names
//! the file).

use crate::EngineError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wharf_registry::client::RegistryConfig;
use wharf_types::container::{HostConfig, LogConfig, Ulimit};

/// The file read when `$WHARF_CONFIG` is not set.
pub const DEFAULT_PATH: &str = "/etc/wharf/daemon.json";
/// The environment variable naming another file.
pub const PATH_ENV: &str = "WHARF_CONFIG";
/// The largest daemon.json read.
pub const MAX_SIZE: u64 = 1 << 20;

/// The keys of daemon.json the engine acts on.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DaemonConfig {
    /// `registry-mirrors`, `insecure-registries`, `certs-dir`, `registry-idle-timeout`.
    #[serde(flatten)]
    pub registry: RegistryConfig,
    /// `log-driver`: the driver of containers created without `--log-driver`.
    #[serde(rename = "log-driver", default)]
    pub log_driver: Option<String>,
    /// `log-opts`: options of the default driver (a container's `--log-opt` wins per key).
    #[serde(rename = "log-opts", default)]
    pub log_opts: BTreeMap<String, String>,
    /// `default-ulimits`, docker's shape: `{"nofile": {"Name": "nofile", "Soft": N, "Hard": N}}`.
    #[serde(rename = "default-ulimits", default)]
    pub default_ulimits: BTreeMap<String, Ulimit>,
    /// `data-root`: the persistent root when none is given.
    #[serde(rename = "data-root", default)]
    pub data_root: Option<PathBuf>,
    /// `bundle-require-signature`: `bundle verify|apply` refuse a bundle not signed by one of
    /// `bundle-trusted-keys`.
    #[serde(rename = "bundle-require-signature", default)]
    pub bundle_require_signature: bool,
    /// `bundle-trusted-keys`: public key files whose signatures `bundle apply` accepts.
    #[serde(rename = "bundle-trusted-keys", default)]
    pub bundle_trusted_keys: Vec<PathBuf>,
    /// `bip`: the default bridge's gateway address and prefix (`172.17.0.1/16`).
    #[serde(default)]
    pub bip: Option<String>,
    /// `default-address-pools`: where networks without `--subnet` take theirs
    /// (`[{"base": "10.10.0.0/16", "size": 24}]`); docker's pools when absent.
    #[serde(rename = "default-address-pools", default)]
    pub default_address_pools: Vec<AddressPool>,
    /// `published-port-range` (wharf's): host ports `-P` and `-p CONTAINERPORT` take theirs
    /// from, `"49153-65535"` when absent (docker hard-codes its range).
    #[serde(rename = "published-port-range", default)]
    pub published_port_range: Option<String>,
    /// `mtu`: of the bridges' veths (the kernel's default when absent).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// `ipv6`: the default network `bridge` is dual-stack, its IPv6 subnet `fixed-cidr-v6`
    /// (or the first free IPv6 entry of `default-address-pools`). Off by default, as docker's.
    #[serde(default)]
    pub ipv6: bool,
    /// `fixed-cidr-v6`: the default network's IPv6 subnet when `ipv6` is on.
    #[serde(rename = "fixed-cidr-v6", default)]
    pub fixed_cidr_v6: Option<String>,
    /// The file this came from (`None`: defaults, no file).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// daemon.json's network keys, checked (`DaemonConfig::network_settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// `bip`: the default bridge's gateway and subnet.
    pub bip: Option<(std::net::IpAddr, wharf_types::net::Subnet)>,
    pub pools: Vec<wharf_types::net::Pool>,
    /// Inclusive.
    pub port_range: (u16, u16),
    pub mtu: Option<u32>,
    /// `ipv6`: the default network is dual-stack, with `fixed-cidr-v6` as its IPv6 subnet
    /// when given (else from the IPv6 pools).
    pub ipv6: bool,
    pub fixed_cidr_v6: Option<wharf_types::net::Subnet>,
}

/// One of `default-address-pools`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

/// What is wrong with a daemon.json: every refusal names the file, facts as fields.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid config file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {}: {source}", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid config file {}: log-driver must not be empty", .path.display())]
    EmptyLogDriver { path: PathBuf },
    #[error("invalid config file {}: log-opts: {source}", .path.display())]
    LogOpts {
        path: PathBuf,
        #[source]
        source: wharf_logs::LogError,
    },
    #[error("invalid config file {}: default-ulimits: key {key:?} names {names:?}", .path.display())]
    UlimitKey {
        path: PathBuf,
        key: String,
        names: String,
    },
    #[error("invalid config file {}: default-ulimits: {key}: soft limit {soft} is above the hard limit {hard}", .path.display())]
    UlimitOrder {
        path: PathBuf,
        key: String,
        soft: u64,
        hard: u64,
    },
    #[error("invalid config file {}: data-root {} is not an absolute path", .path.display(), .root.display())]
    DataRootRelative { path: PathBuf, root: PathBuf },
    #[error("invalid config file {}: {key}: {value:?} {problem}", .path.display())]
    Network {
        path: PathBuf,
        key: &'static str,
        value: String,
        problem: &'static str,
    },
}

impl wharf_types::error::HasKind for ConfigError {
    fn kind(&self) -> wharf_types::error::ErrorKind {
        wharf_types::error::ErrorKind::InvalidArgument
    }
}

impl DaemonConfig {
    /// `$WHARF_CONFIG`, else [`DEFAULT_PATH`].
    pub fn default_path() -> PathBuf {
        std::env::var_os(PATH_ENV)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }

    /// Reads and checks `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<DaemonConfig, EngineError> {
        let data = match wharf_sys::fs::read_small_file(None, path, MAX_SIZE) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(DaemonConfig::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
                .into())
            }
        };
        Self::parse(path, &data)
    }

    /// Parses and checks the content of `path`.
    pub fn parse(path: &Path, data: &[u8]) -> Result<DaemonConfig, EngineError> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(DaemonConfig {
                path: Some(path.to_path_buf()),
                ..Default::default()
            });
        }
        let p = || path.to_path_buf();
        let mut cfg: DaemonConfig = serde_json::from_slice(data)
            .map_err(|source| ConfigError::Json { path: p(), source })?;
        cfg.path = Some(path.to_path_buf());
        if let Some(d) = &cfg.log_driver {
            if d.is_empty() {
                return Err(ConfigError::EmptyLogDriver { path: p() }.into());
            }
        }
        let log = LogConfig {
            driver: cfg.default_log_driver().to_string(),
            config: cfg.log_opts.clone(),
        };
        wharf_logs::validate(&log).map_err(|source| ConfigError::LogOpts { path: p(), source })?;
        for (name, u) in &cfg.default_ulimits {
            let real = serde_json::to_value(u.resource)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if *name != real {
                return Err(ConfigError::UlimitKey {
                    path: p(),
                    key: name.clone(),
                    names: real,
                }
                .into());
            }
            if u.soft > u.hard {
                return Err(ConfigError::UlimitOrder {
                    path: p(),
                    key: name.clone(),
                    soft: u.soft,
                    hard: u.hard,
                }
                .into());
            }
        }
        if let Some(r) = &cfg.data_root {
            if !r.is_absolute() {
                return Err(ConfigError::DataRootRelative {
                    path: p(),
                    root: r.clone(),
                }
                .into());
            }
        }
        cfg.network_settings()
            .map_err(|(key, value, problem)| ConfigError::Network {
                path: p(),
                key,
                value,
                problem,
            })?;
        Ok(cfg)
    }

    /// The network keys, checked: (`bip` as gateway + subnet, the address pools, the
    /// published-port range, the MTU). Errors are (key, value, problem).
    #[allow(clippy::type_complexity)]
    pub fn network_settings(
        &self,
    ) -> Result<NetworkSettings, (&'static str, String, &'static str)> {
        use wharf_types::net::{default_pools, Pool, Subnet};
        let bip = match &self.bip {
            None => None,
            Some(b) => {
                let (ip, prefix) = b
                    .split_once('/')
                    .and_then(|(i, p)| {
                        Some((i.parse::<std::net::IpAddr>().ok()?, p.parse::<u8>().ok()?))
                    })
                    .ok_or(("bip", b.clone(), "is not ADDRESS/PREFIX"))?;
                let subnet = Subnet::containing(ip, prefix)
                    .filter(|s| {
                        s.is_ipv4()
                            && s.prefix() <= 30
                            && s.addr() != ip
                            && s.broadcast() != Some(ip)
                    })
                    .ok_or((
                        "bip",
                        b.clone(),
                        "is not a usable IPv4 gateway address with a prefix of at most 30",
                    ))?;
                Some((ip, subnet))
            }
        };
        let mut pools = Vec::new();
        for p in &self.default_address_pools {
            let base: Subnet = p
                .base
                .parse()
                .map_err(|_| ("default-address-pools", p.base.clone(), "is not a subnet"))?;
            let most = if base.is_ipv4() { 30 } else { 126 };
            if p.size < base.prefix() || p.size > most {
                return Err((
                    "default-address-pools",
                    format!("{}/{}", p.base, p.size),
                    "size must be between the base's prefix and 30 (IPv4) or 126 (IPv6)",
                ));
            }
            pools.push(Pool { base, size: p.size });
        }
        // IPv6 entries alone leave docker's IPv4 pools in place
        if !pools.iter().any(|p| p.base.is_ipv4()) {
            pools.extend(default_pools());
        }
        let fixed_cidr_v6 = match &self.fixed_cidr_v6 {
            None => None,
            Some(c) => Some(
                c.parse::<Subnet>()
                    .ok()
                    .filter(|s| !s.is_ipv4() && s.prefix() <= 126)
                    .ok_or((
                        "fixed-cidr-v6",
                        c.clone(),
                        "is not an IPv6 subnet with a prefix of at most 126",
                    ))?,
            ),
        };
        // dockerd refuses to start so: the default network would have no IPv6 subnet
        if self.ipv6 && fixed_cidr_v6.is_none() && !pools.iter().any(|p| !p.base.is_ipv4()) {
            return Err((
                "ipv6",
                "true".into(),
                "needs fixed-cidr-v6 (or an IPv6 entry in default-address-pools)",
            ));
        }
        let ports = match &self.published_port_range {
            None => (49153, 65535),
            Some(r) => r
                .split_once('-')
                .and_then(|(a, b)| {
                    Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                })
                .filter(|(a, b)| *a >= 1 && a <= b)
                .ok_or((
                    "published-port-range",
                    r.clone(),
                    "is not LOW-HIGH within 1-65535",
                ))?,
        };
        if let Some(m) = self.mtu {
            if !(68..=65535).contains(&m) {
                return Err(("mtu", m.to_string(), "must be between 68 and 65535"));
            }
        }
        Ok(NetworkSettings {
            bip,
            pools,
            port_range: ports,
            mtu: self.mtu,
            ipv6: self.ipv6,
            fixed_cidr_v6,
        })
    }

    /// The driver of a container that names none: `log-driver`, else json-file.
    pub fn default_log_driver(&self) -> &str {
        self.log_driver.as_deref().unwrap_or("json-file")
    }

    /// The persistent root: `given` when not empty, else `data-root`, else
    /// `/var/lib/wharf`.
    pub fn root(&self, given: &Path) -> PathBuf {
        if !given.as_os_str().is_empty() {
            return given.to_path_buf();
        }
        self.data_root
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::EngineOptions::DEFAULT_ROOT))
    }

    /// docker's merge of the daemon's log defaults: a request that names no driver gets
    /// `log-driver`; a request whose driver is the default one gets the `log-opts` it does
    /// not set itself. Applied before the flags are parsed (`--log-opt` wins per key).
    pub(crate) fn apply_log_defaults(&self, req: &mut crate::create::CreateRequest) {
        if req.flags.log_driver.is_none() && req.host.log_config == LogConfig::default() {
            req.host.log_config.driver = self.default_log_driver().to_string();
        }
        let driver = req
            .flags
            .log_driver
            .as_deref()
            .unwrap_or(&req.host.log_config.driver);
        if driver == self.default_log_driver() {
            for (k, v) in &self.log_opts {
                req.host
                    .log_config
                    .config
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
        }
    }

    /// `default-ulimits` under the request's own (`--ulimit` wins per resource).
    pub(crate) fn apply_ulimit_defaults(&self, host: &mut HostConfig) {
        for u in self.default_ulimits.values() {
            if !host.ulimits.iter().any(|h| h.resource == u.resource) {
                host.ulimits.push(*u);
            }
        }
    }
}

/// The persistent root a front end means without opening an engine (`system check`,
/// `registry serve --engine-store`): `given`, else daemon.json's `data-root`, else the default.
pub fn resolve_root(given: Option<&Path>) -> Result<PathBuf, EngineError> {
    let cfg = DaemonConfig::load(&DaemonConfig::default_path())?;
    Ok(cfg.root(given.unwrap_or(Path::new(""))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DaemonConfig, EngineError> {
        DaemonConfig::parse(Path::new("/etc/wharf/daemon.json"), s.as_bytes())
    }

    #[test]
    fn keys() {
        let c = parse(
            r#"{"registry-mirrors": ["http://m:5000"], "insecure-registries": ["r:5000"],
                "log-driver": "none", "log-opts": {},
                "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}},
                "data-root": "/srv/wharf", "bip": "10.0.0.1/24"}"#,
        )
        .unwrap();
        assert_eq!(c.registry.registry_mirrors, vec!["http://m:5000"]);
        assert!(c.registry.is_insecure("r:5000"));
        assert_eq!(c.default_log_driver(), "none");
        assert_eq!(c.default_ulimits["nofile"].soft, 1024);
        assert_eq!(c.root(Path::new("")), PathBuf::from("/srv/wharf"));
        assert_eq!(c.root(Path::new("/x")), PathBuf::from("/x"));
        assert_eq!(
            parse("").unwrap().root(Path::new("")),
            PathBuf::from("/var/lib/wharf")
        );
    }

    #[test]
    fn ipv6_keys() {
        let n = parse(
            r#"{"ipv6": true, "fixed-cidr-v6": "fd00:17::/64",
                "default-address-pools": [{"base": "fd30::/48", "size": 64}]}"#,
        )
        .unwrap()
        .network_settings()
        .unwrap();
        assert!(n.ipv6);
        assert_eq!(
            n.fixed_cidr_v6.map(|s| s.to_string()).as_deref(),
            Some("fd00:17::/64")
        );
        // the IPv6 pool is added to docker's IPv4 ones
        assert!(n.pools.iter().any(|p| !p.base.is_ipv4() && p.size == 64));
        assert!(n.pools.iter().any(|p| p.base.is_ipv4()));
        let off = parse("{}").unwrap().network_settings().unwrap();
        assert!(!off.ipv6 && off.fixed_cidr_v6.is_none());
        for bad in [
            r#"{"fixed-cidr-v6": "10.0.0.0/8"}"#,
            r#"{"fixed-cidr-v6": "fd00::/127"}"#,
            r#"{"default-address-pools": [{"base": "fd30::/48", "size": 127}]}"#,
            r#"{"ipv6": true}"#,
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                ["fixed-cidr-v6", "default-address-pools", "ipv6"]
                    .iter()
                    .any(|k| e.contains(k)),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn malformed_names_the_file() {
        for bad in [
            "{nope",
            r#"{"log-driver": 3}"#,
            r#"{"log-driver": "nosuch"}"#,
            r#"{"log-opts": {"max-size": "huge"}}"#,
            r#"{"default-ulimits": {"nofile": {"Name": "nproc", "Hard": 1, "Soft": 1}}}"#,
            r#"{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1, "Soft": 2}}}"#,
            r#"{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": -1, "Soft": 2}}}"#,
            r#"{"data-root": "rel/dir"}"#,
            r#"{"registry-mirrors": "http://m"}"#,
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("invalid config file /etc/wharf/daemon.json: "),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn log_defaults_merge_like_docker() {
        let c = parse(
            r#"{"log-driver": "json-file", "log-opts": {"max-size": "1m", "max-file": "2"}}"#,
        )
        .unwrap();
        let mut req = crate::create::CreateRequest::default();
        req.flags.log_opts = vec!["max-size=5m".into()];
        c.apply_log_defaults(&mut req);
        let flags = req.flags.clone();
        crate::validate::apply_flags(&mut req, &flags).unwrap();
        assert_eq!(req.host.log_config.config["max-size"], "5m");
        assert_eq!(req.host.log_config.config["max-file"], "2");
        // another driver: the default's options do not follow it
        let mut req = crate::create::CreateRequest::default();
        req.flags.log_driver = Some("none".into());
        c.apply_log_defaults(&mut req);
        let flags = req.flags.clone();
        crate::validate::apply_flags(&mut req, &flags).unwrap();
        assert_eq!(req.host.log_config.driver, "none");
        assert!(req.host.log_config.config.is_empty());
        // no driver named: the daemon's
        let n = parse(r#"{"log-driver": "none"}"#).unwrap();
        let mut req = crate::create::CreateRequest::default();
        n.apply_log_defaults(&mut req);
        assert_eq!(req.host.log_config.driver, "none");
    }
}
