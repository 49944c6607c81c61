//! docker's `/info` and `/version` data, built once for every front end: the Engine API's
//! `GET /info`/`GET /version` serve it as JSON, the CLI's `info`/`version` render it (text or
//! `--format` over the same JSON). Counts come from the engine's records, host facts from
//! [`crate::system::host_facts`], settings from daemon.json. Must not print or know HTTP.

use crate::images::ImageError;
use crate::state::Status;
use crate::Engine;
use serde_json::{json, Value};

/// wharf's version: the server's (`ServerVersion`, `Version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The log drivers wharf has (docker's `Plugins.Log`).
const LOG_DRIVERS: [&str; 5] = ["journald", "json-file", "none", "splunk", "syslog"];

/// docker's `/info` object (the `system.Info` shape) for this engine and host.
pub fn info(e: &Engine) -> Result<Value, ImageError> {
    let all = e.containers(true)?;
    let count = |s: Status| all.iter().filter(|c| c.state.status() == s).count();
    let running = count(Status::Running);
    let paused = count(Status::Paused);
    let images = e
        .list_images(&Default::default())?
        .iter()
        .map(|i| i.id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let f = crate::system::host_facts();
    let cfg = e.daemon_config();
    let mut v = json!({
        "ID": "",
        "Containers": all.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": all.len() - running - paused,
        "Images": images,
        "Driver": "overlay2",
        // wharf refuses a store without d_type (wharf-store), so this is always true
        "DriverStatus": [["Supports d_type", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": null,
            "Log": LOG_DRIVERS,
        },
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "Debug": e.options().debug,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": crate::timefmt::now_rfc3339(),
        "LoggingDriver": cfg.default_log_driver(),
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": f.cgroup_version,
        "NEventsListener": 0,
    });
    // two halves: one `json!` of all of docker's keys exceeds the macro recursion limit
    let host = json!({
        "KernelVersion": f.kernel_version,
        "OperatingSystem": f.operating_system,
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(&cfg.registry),
        "NCPU": f.ncpu,
        "MemTotal": f.mem_total,
        "DockerRootDir": e.root().display().to_string(),
        "Name": f.hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": {"wharf": {"path": "wharf"}},
        "DefaultRuntime": "wharf",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": security_options(f.cgroup_version),
        "Warnings": [],
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, host) {
        a.extend(b);
    }
    crate::compat::fill(&mut v, crate::compat::info());
    Ok(v)
}

fn security_options(cgroup_version: &str) -> Vec<&'static str> {
    let mut v = vec!["name=seccomp,profile=builtin"];
    if cgroup_version == "2" {
        v.push("name=cgroupns");
    }
    v
}

/// docker's `RegistryConfig` from daemon.json: an insecure entry that is a CIDR goes to
/// `InsecureRegistryCIDRs`, a host to `IndexConfigs` with `Secure: false`; mirrors as given.
fn registry_config(r: &wharf_registry::client::RegistryConfig) -> Value {
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": r.registry_mirrors, "Secure": true, "Official": true}),
    );
    let mut cidrs = Vec::new();
    for i in &r.insecure_registries {
        if i.contains('/') {
            cidrs.push(i.clone());
        } else {
            index.insert(
                i.clone(),
                json!({"Name": i, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "IndexConfigs": index,
        "InsecureRegistryCIDRs": cidrs,
        "Mirrors": r.registry_mirrors,
    })
}

/// docker's `/version` object (the `types.Version` shape) for an API of `api_version`
/// (oldest `min_api_version`), the server's versions being the front end's to say.
pub fn version(api_version: &str, min_api_version: &str) -> Value {
    let f = crate::system::host_facts();
    let arch = wharf_types::oci::host_architecture();
    json!({
        "Platform": {"Name": "wharf"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": api_version,
                "MinAPIVersion": min_api_version,
                "Os": "linux",
                "Arch": arch,
                "KernelVersion": f.kernel_version,
                "GitCommit": "",
                "GoVersion": "",
                "BuildTime": "",
                "Experimental": "false",
            },
        }],
        "Version": VERSION,
        "ApiVersion": api_version,
        "MinAPIVersion": min_api_version,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": f.kernel_version,
        "BuildTime": "",
    })
}
