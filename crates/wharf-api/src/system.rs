//! `/_ping`, `/version`, `/info`: the negotiation headers and docker's JSON shapes.

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::server::{blocking, Ctx};
use crate::version::{API_VERSION, MIN_API_VERSION};
use http::Response;
use serde_json::json;
use std::sync::Arc;
use wharf_engine::Caller;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET|HEAD /_ping`: "OK" (the version headers are on every response).
pub fn ping() -> Response<Body> {
    let mut r = body::text(200, "OK");
    let h = r.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        http::header::PRAGMA,
        http::HeaderValue::from_static("no-cache"),
    );
    r
}

/// `GET /version`.
pub async fn version() -> Result<Response<Body>, ApiError> {
    let facts = tokio::task::spawn_blocking(wharf_engine::system::host_facts)
        .await
        .map_err(ApiError::Task)?;
    let arch = wharf_types::oci::host_architecture();
    Ok(body::json(
        200,
        &json!({
            "Platform": {"Name": "wharf"},
            "Components": [{
                "Name": "Engine",
                "Version": VERSION,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": arch,
                    "KernelVersion": facts.kernel_version,
                    "GitCommit": "",
                    "GoVersion": "",
                    "BuildTime": "",
                },
            }],
            "Version": VERSION,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": facts.kernel_version,
            "BuildTime": "",
        }),
    ))
}

/// `GET /info`: counts from the engine, host facts.
pub async fn info(ctx: &Arc<Ctx>, caller: Caller) -> Result<Response<Body>, ApiError> {
    let v = blocking(ctx, caller, |e| {
        use wharf_engine::state::Status;
        let all = e.containers(true)?;
        let count = |s: Status| all.iter().filter(|c| c.state.status() == s).count();
        let images = e
            .list_images(&Default::default())?
            .iter()
            .map(|i| i.id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let f = wharf_engine::system::host_facts();
        Ok(json!({
            "ID": "",
            "Containers": all.len(),
            "ContainersRunning": count(Status::Running),
            "ContainersPaused": count(Status::Paused),
            "ContainersStopped": all.len() - count(Status::Running) - count(Status::Paused),
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "null"],
                "Authorization": null,
                "Log": ["json-file", "journald", "none", "splunk", "syslog"],
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
            "SystemTime": wharf_engine::timefmt::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": f.cgroup_version,
            "NEventsListener": 0,
            "KernelVersion": f.kernel_version,
            "OperatingSystem": f.operating_system,
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
            "NCPU": f.ncpu,
            "MemTotal": f.mem_total,
            "DockerRootDir": e.root().display().to_string(),
            "Name": f.hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": VERSION,
            "Runtimes": {"wharf": {"path": "wharf"}},
            "DefaultRuntime": "wharf",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "Warnings": [],
        }))
    })
    .await?;
    Ok(body::json(200, &v))
}
