//! `POST /containers/create?name=`: docker's create body (`Config` with `HostConfig` and
//! `NetworkingConfig`) mapped field by field onto the engine's `CreateRequest`. Values
//! the CLI would give as strings (binds, ulimits, log options, DNS, hosts, network) go
//! where the CLI's go, so the engine parses and checks them the same way; typed ones
//! (ports, mounts, restart policy, resources) into their typed fields, which the engine
//! checks too. A field this module does not map is passed on as `unsupported` unless it
//! holds its zero value, and the engine refuses the request: nothing asked for is ignored.

use crate::body;
use crate::error::ApiError;
use crate::query::Query;
use crate::server::{blocking, Ctx};
use http::Response;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use wharf_engine::create::CreateRequest;
use wharf_engine::mounts::MountSpec;
use wharf_engine::Caller;
use wharf_types::container::{PortBinding, RestartPolicy};
use wharf_types::oci::HealthConfig;

/// Config fields with no effect on what runs (docker's client bookkeeping).
const CONFIG_IGNORED: &[&str] = &[
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ArgsEscaped",
    "OnBuild",
    "Shell",
];

/// HostConfig fields of docker's `Resources` that map 1:1 onto
/// `wharf_types::resources::Resources` (the engine checks them as the CLI's flags).
const HOST_RESOURCES: &[&str] = &[
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetCpus",
    "CpusetMems",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "OomKillDisable",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "Devices",
    "DeviceCgroupRules",
];

/// HostConfig fields that map 1:1 onto `wharf_types::resources::HostOptions`.
const HOST_OPTIONS: &[&str] = &[
    "IpcMode",
    "PidMode",
    "UTSMode",
    "UsernsMode",
    "CgroupnsMode",
    "CgroupParent",
    "ShmSize",
    "OomScoreAdj",
    "VolumesFrom",
    "Isolation",
    "Runtime",
];

/// HostConfig fields with no effect on what runs here.
const HOST_IGNORED: &[&str] = &["ContainerIDFile", "ConsoleSize"];

/// Fields that loosen confinement even when empty: present at all means "not the
/// defaults" (an empty `MaskedPaths` unmasks everything).
const HOST_PRESENT_MEANS_SET: &[&str] = &["MaskedPaths", "ReadonlyPaths"];

/// docker's "not set" sentinels that are not zero (`MemorySwappiness: -1`).
fn is_unset(field: &str, v: &Value) -> bool {
    match field {
        "MemorySwappiness" => v.as_i64() == Some(-1),
        "NetworkMode" | "CgroupnsMode" => false,
        _ => false,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_zero),
        Value::Object(o) => o.values().all(is_zero),
    }
}

fn shape(what: &'static str) -> ApiError {
    ApiError::JsonShape { what }
}

fn string(v: Option<&Value>, what: &'static str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(shape(what)),
    }
}

fn strings(v: Option<&Value>, what: &'static str) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| shape(what)))
            .collect(),
        Some(_) => Err(shape(what)),
    }
}

/// docker's `StrSlice`: an array, or one string.
fn str_slice(v: Option<&Value>, what: &'static str) -> Result<Option<Vec<String>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(a @ Value::Array(_)) => Ok(Some(strings(Some(a), what)?)),
        Some(_) => Err(shape(what)),
    }
}

fn boolean(v: Option<&Value>, what: &'static str) -> Result<bool, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(shape(what)),
    }
}

fn int(v: Option<&Value>, what: &'static str) -> Result<Option<i64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| shape(what)),
        Some(_) => Err(shape(what)),
    }
}

fn object<'a>(
    v: Option<&'a Value>,
    what: &'static str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(shape(what)),
    }
}

fn string_map(
    v: Option<&Value>,
    what: &'static str,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(o) = object(v, what)? {
        for (k, x) in o {
            out.insert(
                k.clone(),
                x.as_str().ok_or_else(|| shape(what))?.to_string(),
            );
        }
    }
    Ok(out)
}

/// docker's create body → the engine's request.
pub fn request(name: Option<String>, body: &Value) -> Result<CreateRequest, ApiError> {
    let cfg = body.as_object().ok_or_else(|| shape("a JSON object"))?;
    let mut req = CreateRequest {
        name: name.filter(|n| !n.is_empty()),
        ..Default::default()
    };
    req.flags.remote = true;
    let mut unsupported = Vec::new();
    for (k, v) in cfg {
        match k.as_str() {
            "Image" => req.image = string(Some(v), "Image: a string")?.unwrap_or_default(),
            "Hostname" => {
                req.hostname = string(Some(v), "Hostname: a string")?.filter(|h| !h.is_empty())
            }
            "User" => req.user = string(Some(v), "User: a string")?.filter(|u| !u.is_empty()),
            "Env" => req.env = strings(Some(v), "Env: an array of strings")?,
            "Cmd" => req.args = str_slice(Some(v), "Cmd: an array of strings")?.unwrap_or_default(),
            "Entrypoint" => {
                if let Some(ep) = str_slice(Some(v), "Entrypoint: an array of strings")? {
                    // docker's `--entrypoint ""` is `[""]`; `[]` is "not given"
                    if let Some((first, rest)) = ep.split_first() {
                        req.entrypoint = Some(first.clone());
                        let mut args = rest.to_vec();
                        args.append(&mut req.args);
                        req.args = args;
                    }
                }
            }
            "WorkingDir" => {
                req.workdir = string(Some(v), "WorkingDir: a string")?.filter(|w| !w.is_empty())
            }
            "Tty" => req.tty = boolean(Some(v), "Tty: a boolean")?,
            "OpenStdin" => req.stdin = boolean(Some(v), "OpenStdin: a boolean")?,
            "StdinOnce" => req.stdin_once = boolean(Some(v), "StdinOnce: a boolean")?,
            "Labels" => req.labels = string_map(Some(v), "Labels: an object of strings")?,
            "StopSignal" => {
                req.stop_signal = string(Some(v), "StopSignal: a string")?.filter(|s| !s.is_empty())
            }
            "StopTimeout" => req.stop_timeout = int(Some(v), "StopTimeout: an integer")?,
            "ExposedPorts" => {
                if let Some(o) = object(Some(v), "ExposedPorts: an object")? {
                    req.exposed_ports.extend(o.keys().cloned());
                }
            }
            "Volumes" => {
                if let Some(o) = object(Some(v), "Volumes: an object")? {
                    // anonymous volumes, as `-v /path`
                    req.flags.volumes.extend(o.keys().cloned());
                }
            }
            "Healthcheck" => req.healthcheck = healthcheck(v)?,
            "MacAddress" => {
                req.flags.mac_address =
                    string(Some(v), "MacAddress: a string")?.filter(|m| !m.is_empty())
            }
            "Domainname" => {
                req.domainname = string(Some(v), "Domainname: a string")?.filter(|d| !d.is_empty())
            }
            "HostConfig" => host_config(&mut req, v, &mut unsupported)?,
            "NetworkingConfig" => networking(&mut req, v, &mut unsupported)?,
            k if CONFIG_IGNORED.contains(&k) => {}
            k => {
                if !is_zero(v) {
                    unsupported.push(k.to_string());
                }
            }
        }
    }
    req.flags.unsupported = unsupported;
    Ok(req)
}

fn healthcheck(v: &Value) -> Result<Option<HealthConfig>, ApiError> {
    let Some(o) = object(Some(v), "Healthcheck: an object")? else {
        return Ok(None);
    };
    let dur = |k: &'static str| int(o.get(k), "Healthcheck durations: integers (ns)");
    let h = HealthConfig {
        test: strings(o.get("Test"), "Healthcheck.Test: an array of strings")?,
        interval: dur("Interval")?.filter(|d| *d != 0),
        timeout: dur("Timeout")?.filter(|d| *d != 0),
        start_period: dur("StartPeriod")?.filter(|d| *d != 0),
        retries: int(o.get("Retries"), "Healthcheck.Retries: an integer")?.filter(|r| *r != 0),
    };
    Ok((h != HealthConfig::default()).then_some(h))
}

fn host_config(
    req: &mut CreateRequest,
    v: &Value,
    unsupported: &mut Vec<String>,
) -> Result<(), ApiError> {
    let Some(hc) = object(Some(v), "HostConfig: an object")? else {
        return Ok(());
    };
    // docker's typed resource and namespace fields, as wharf-types has them (null = unset;
    // MemorySwappiness -1 = unset)
    let typed = |keys: &[&str]| -> Map<String, Value> {
        hc.iter()
            .filter(|(k, v)| keys.contains(&k.as_str()) && !v.is_null())
            .filter(|(k, v)| !is_unset(k, v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    req.host.resources = serde_json::from_value(Value::Object(typed(HOST_RESOURCES)))
        .map_err(|_| shape("HostConfig resources: docker's types"))?;
    req.host.options = serde_json::from_value(Value::Object(typed(HOST_OPTIONS)))
        .map_err(|_| shape("HostConfig namespace options: docker's types"))?;
    let f = &mut req.flags;
    let h = &mut req.host;
    for (k, v) in hc {
        match k.as_str() {
            k if HOST_RESOURCES.contains(&k) || HOST_OPTIONS.contains(&k) => {}
            "Binds" => f
                .volumes
                .extend(strings(Some(v), "Binds: an array of strings")?),
            "Mounts" => {
                if let Value::Array(ms) = v {
                    for m in ms {
                        f.typed_mounts.push(mount(m, unsupported)?);
                    }
                } else if !v.is_null() {
                    return Err(shape("Mounts: an array"));
                }
            }
            "PortBindings" => {
                if let Some(o) = object(Some(v), "PortBindings: an object")? {
                    for (port, list) in o {
                        let list: Vec<PortBinding> = if list.is_null() {
                            Vec::new()
                        } else {
                            serde_json::from_value(list.clone()).map_err(ApiError::Json)?
                        };
                        req.exposed_ports.insert(port.clone());
                        let slot = h.port_bindings.entry(port.clone()).or_default();
                        if list.is_empty() {
                            slot.push(PortBinding::default());
                        }
                        slot.extend(list);
                    }
                }
            }
            "PublishAllPorts" => {
                h.publish_all_ports = boolean(Some(v), "PublishAllPorts: a boolean")?
            }
            "NetworkMode" => {
                f.network = string(Some(v), "NetworkMode: a string")?.filter(|n| !n.is_empty())
            }
            "RestartPolicy" => {
                if let Some(o) = object(Some(v), "RestartPolicy: an object")? {
                    h.restart_policy = RestartPolicy {
                        name: string(o.get("Name"), "RestartPolicy.Name: a string")?
                            .unwrap_or_default(),
                        maximum_retry_count: int(
                            o.get("MaximumRetryCount"),
                            "RestartPolicy.MaximumRetryCount: an integer",
                        )?
                        .unwrap_or(0),
                    };
                }
            }
            "AutoRemove" => h.auto_remove = boolean(Some(v), "AutoRemove: a boolean")?,
            "Memory" => h.memory = int(Some(v), "Memory: an integer")?.unwrap_or(0),
            "NanoCpus" => h.nano_cpus = int(Some(v), "NanoCpus: an integer")?.unwrap_or(0),
            "CapAdd" => h.cap_add = strings(Some(v), "CapAdd: an array of strings")?,
            "CapDrop" => h.cap_drop = strings(Some(v), "CapDrop: an array of strings")?,
            "Privileged" => h.privileged = boolean(Some(v), "Privileged: a boolean")?,
            "SecurityOpt" => h.security_opt = strings(Some(v), "SecurityOpt: an array of strings")?,
            "ReadonlyRootfs" => h.readonly_rootfs = boolean(Some(v), "ReadonlyRootfs: a boolean")?,
            "Init" => h.init = boolean(Some(v), "Init: a boolean")?,
            "PidsLimit" => h.pids_limit = int(Some(v), "PidsLimit: an integer")?,
            "GroupAdd" => h.group_add = strings(Some(v), "GroupAdd: an array of strings")?,
            "Dns" => f.dns = strings(Some(v), "Dns: an array of strings")?,
            "DnsSearch" => f.dns_search = strings(Some(v), "DnsSearch: an array of strings")?,
            "DnsOptions" => f.dns_options = strings(Some(v), "DnsOptions: an array of strings")?,
            "ExtraHosts" => f.add_hosts = strings(Some(v), "ExtraHosts: an array of strings")?,
            "Sysctls" => {
                for (k, val) in string_map(Some(v), "Sysctls: an object of strings")? {
                    f.sysctls.push(format!("{k}={val}"));
                }
            }
            "Links" => f.links = strings(Some(v), "Links: an array of strings")?,
            "Ulimits" => {
                if let Value::Array(us) = v {
                    for u in us {
                        let name =
                            string(u.get("Name"), "Ulimits[].Name: a string")?.unwrap_or_default();
                        let soft = int(u.get("Soft"), "Ulimits[].Soft: an integer")?.unwrap_or(0);
                        let hard =
                            int(u.get("Hard"), "Ulimits[].Hard: an integer")?.unwrap_or(soft);
                        f.ulimits.push(format!("{name}={soft}:{hard}"));
                    }
                } else if !v.is_null() {
                    return Err(shape("Ulimits: an array"));
                }
            }
            "LogConfig" => {
                if let Some(o) = object(Some(v), "LogConfig: an object")? {
                    f.log_driver = string(o.get("Type"), "LogConfig.Type: a string")?
                        .filter(|t| !t.is_empty());
                    for (k, val) in
                        string_map(o.get("Config"), "LogConfig.Config: an object of strings")?
                    {
                        f.log_opts.push(format!("{k}={val}"));
                    }
                }
            }
            "VolumeDriver" => {
                if !matches!(v.as_str(), Some("" | "local") | None)
                    || !(v.is_string() || v.is_null())
                {
                    unsupported.push("HostConfig.VolumeDriver".into());
                }
            }
            k if HOST_IGNORED.contains(&k) => {}
            k if HOST_PRESENT_MEANS_SET.contains(&k) => {
                if !v.is_null() {
                    unsupported.push(format!("HostConfig.{k}"));
                }
            }
            k => {
                if !is_zero(v) && !is_unset(k, v) {
                    unsupported.push(format!("HostConfig.{k}"));
                }
            }
        }
    }
    Ok(())
}

fn mount(m: &Value, unsupported: &mut Vec<String>) -> Result<MountSpec, ApiError> {
    let o = object(Some(m), "Mounts[]: an object")?.ok_or_else(|| shape("Mounts[]: an object"))?;
    let mut spec = MountSpec {
        kind: string(o.get("Type"), "Mounts[].Type: a string")?.unwrap_or_else(|| "volume".into()),
        source: string(o.get("Source"), "Mounts[].Source: a string")?.unwrap_or_default(),
        target: string(o.get("Target"), "Mounts[].Target: a string")?.unwrap_or_default(),
        read_only: boolean(o.get("ReadOnly"), "Mounts[].ReadOnly: a boolean")?,
        ..Default::default()
    };
    for (k, v) in o {
        match k.as_str() {
            "Type" | "Source" | "Target" | "ReadOnly" | "Consistency" => {}
            "TmpfsOptions" => {
                if let Some(t) = object(Some(v), "Mounts[].TmpfsOptions: an object")? {
                    for (tk, tv) in t {
                        match tk.as_str() {
                            "SizeBytes" => {
                                spec.tmpfs_size =
                                    int(Some(tv), "TmpfsOptions.SizeBytes: an integer")?
                                        .unwrap_or(0)
                            }
                            "Mode" => {
                                spec.tmpfs_mode = int(Some(tv), "TmpfsOptions.Mode: an integer")?
                                    .and_then(|m| u32::try_from(m).ok())
                                    .unwrap_or(0)
                            }
                            other if !is_zero(tv) => {
                                unsupported.push(format!("Mounts[].TmpfsOptions.{other}"))
                            }
                            _ => {}
                        }
                    }
                }
            }
            "VolumeOptions" => {
                if let Some(t) = object(Some(v), "Mounts[].VolumeOptions: an object")? {
                    for (tk, tv) in t {
                        if tk != "Labels" && !is_zero(tv) {
                            unsupported.push(format!("Mounts[].VolumeOptions.{tk}"));
                        }
                    }
                }
            }
            other if !is_zero(v) => unsupported.push(format!("Mounts[].{other}")),
            _ => {}
        }
    }
    Ok(spec)
}

fn networking(
    req: &mut CreateRequest,
    v: &Value,
    unsupported: &mut Vec<String>,
) -> Result<(), ApiError> {
    let Some(n) = object(Some(v), "NetworkingConfig: an object")? else {
        return Ok(());
    };
    for (k, v) in n {
        if k != "EndpointsConfig" {
            if !is_zero(v) {
                unsupported.push(format!("NetworkingConfig.{k}"));
            }
            continue;
        }
        let Some(eps) = object(Some(v), "EndpointsConfig: an object")? else {
            continue;
        };
        for (_net, ep) in eps {
            let Some(ep) = object(Some(ep), "EndpointsConfig: objects")? else {
                continue;
            };
            for (ek, ev) in ep {
                match ek.as_str() {
                    "Aliases" => req
                        .flags
                        .network_aliases
                        .extend(strings(Some(ev), "Aliases: an array of strings")?),
                    "IPAMConfig" => {
                        if let Some(ipam) = object(Some(ev), "IPAMConfig: an object")? {
                            req.flags.ip =
                                string(ipam.get("IPv4Address"), "IPv4Address: a string")?
                                    .filter(|s| !s.is_empty());
                            req.flags.ip6 =
                                string(ipam.get("IPv6Address"), "IPv6Address: a string")?
                                    .filter(|s| !s.is_empty());
                        }
                    }
                    "MacAddress" => {
                        if let Some(m) =
                            string(Some(ev), "MacAddress: a string")?.filter(|s| !s.is_empty())
                        {
                            req.flags.mac_address = Some(m);
                        }
                    }
                    // docker's bookkeeping of a known endpoint
                    "NetworkID" | "EndpointID" | "Gateway" | "IPAddress" | "IPPrefixLen"
                    | "DNSNames" => {}
                    other if !is_zero(ev) => unsupported.push(format!("EndpointsConfig.{other}")),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// The route.
pub async fn create(
    req: http::Request<hyper::body::Incoming>,
    q: &Query,
    ctx: &Arc<Ctx>,
    caller: Caller,
) -> Result<Response<body::Body>, ApiError> {
    let name = q.get("name").map(str::to_string);
    let v = crate::router::json_body(req, ctx).await?;
    let creq = request(name, &v)?;
    let created = blocking(ctx, caller, move |e| Ok(e.create_container(creq)?)).await?;
    let warnings: Vec<String> = created.warnings.iter().map(|w| w.to_string()).collect();
    Ok(body::json(
        201,
        &json!({"Id": created.record.id.as_str(), "Warnings": warnings}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What docker CLI 28 sends for `docker run --rm busybox echo hi` maps cleanly.
    #[test]
    fn docker_cli_body_maps() {
        let body: Value = serde_json::from_str(r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":[],"Cmd":["echo","hi"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},
        "HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"bridge","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[24,80],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":[],"MaskedPaths":null,"ReadonlyPaths":null},
        "NetworkingConfig":{"EndpointsConfig":{}}}"#).unwrap();
        let r = request(Some("x".into()), &body).unwrap();
        assert_eq!(r.image, "busybox");
        assert_eq!(r.args, ["echo", "hi"]);
        assert!(r.host.auto_remove && r.flags.remote);
        assert!(r.flags.unsupported.is_empty(), "{:?}", r.flags.unsupported);
        assert_eq!(r.flags.network.as_deref(), Some("bridge"));
    }

    /// Hostile bodies: wrong types, odd values, deep nesting: an error or a request, never
    /// a panic; what maps is then refused or accepted by the engine's checks.
    #[test]
    fn hostile_bodies() {
        for b in [
            "null",
            "[]",
            "\"x\"",
            r#"{"Image":"busybox","Cmd":{"a":1}}"#,
            r#"{"Image":"busybox","Entrypoint":[""]}"#,
            r#"{"Image":"busybox","HostConfig":{"Memory":1e400}}"#,
            r#"{"Image":"busybox","HostConfig":{"Memory":-1}}"#,
            r#"{"Image":"busybox","HostConfig":{"PortBindings":{"x/tcp":[{"HostPort":"99999"}]}}}"#,
            r#"{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":7}}}"#,
            r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/proc"}]}}"#,
            r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":-5}}]}}"#,
            r#"{"Image":"busybox","HostConfig":{"Binds":["/:/host:rw,rslave"]}}"#,
            r#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":-3}}}"#,
            r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":-1}]}}"#,
            r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"gelf","Config":{"x":1}}}}"#,
            r#"{"Image":"busybox","Healthcheck":{"Test":["CMD"],"Interval":-1}}"#,
            &format!("{}{}", "[".repeat(4096), "]".repeat(4096)),
        ] {
            if let Ok(r) = crate::parse_create_body(None, b.as_bytes()) {
                let _ = wharf_engine::validate::prepare(r);
            }
        }
        let r = crate::parse_create_body(None, br#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/proc"}]}}"#).unwrap();
        assert!(wharf_engine::validate::prepare(r).is_err());
        assert!(crate::parse_query_filters("filters=%7B%22a%22%3A5%7D").is_err());
    }

    /// Sysctls and Links reach the engine's flags (its checks apply: docker's namespaced set).
    #[test]
    fn sysctls_and_links_are_mapped() {
        let body = json!({"Image": "busybox", "HostConfig": {
            "Sysctls": {"net.core.somaxconn": "1024"}, "Links": ["db:database"]}});
        let r = request(None, &body).unwrap();
        assert!(r.flags.unsupported.is_empty(), "{:?}", r.flags.unsupported);
        assert_eq!(r.flags.sysctls, ["net.core.somaxconn=1024"]);
        assert_eq!(r.flags.links, ["db:database"]);
        let bad = json!({"Image": "busybox", "HostConfig": {"Sysctls": {"kernel.hostname": "x"}}});
        assert!(wharf_engine::validate::prepare(request(None, &bad).unwrap()).is_err());
    }

    /// docker's resource and namespace fields reach the typed HostConfig; the engine applies
    /// them as the CLI's flags, and refuses the modes wharf does not implement by name.
    #[test]
    fn resources_and_modes_are_mapped() {
        let body = json!({"Image": "busybox", "Domainname": "ex.org", "HostConfig": {
            "CpuShares": 512, "MemorySwappiness": -1, "OomKillDisable": null, "Memory": 67108864,
            "MemorySwap": 134217728, "BlkioWeightDevice": [], "Devices": [
                {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}],
            "ShmSize": 8388608, "IpcMode": "private", "UTSMode": "host", "OomScoreAdj": 10,
            "VolumesFrom": ["data:ro"]}});
        let r = request(None, &body).unwrap();
        assert!(r.flags.unsupported.is_empty(), "{:?}", r.flags.unsupported);
        assert_eq!(r.domainname.as_deref(), Some("ex.org"));
        let h = &r.host;
        assert_eq!(
            (h.resources.cpu_shares, h.resources.memory_swap),
            (512, 134217728)
        );
        assert_eq!(h.resources.memory_swappiness, None);
        assert_eq!(h.resources.devices[0].path_on_host, "/dev/fuse");
        assert_eq!((h.options.shm_size, h.options.oom_score_adj), (8388608, 10));
        assert_eq!(h.options.uts_mode, "host");
        assert_eq!(h.options.volumes_from, ["data:ro"]);
        for (field, value, want) in [
            (
                "PidMode",
                json!("container:x"),
                "--pid container:x is not supported by wharf",
            ),
            (
                "IpcMode",
                json!("none"),
                "--ipc none is not supported by wharf",
            ),
            (
                "UsernsMode",
                json!("private"),
                "--userns private is not supported by wharf",
            ),
            (
                "CgroupParent",
                json!("/"),
                "--cgroup-parent is not supported by wharf",
            ),
            (
                "Runtime",
                json!("kata"),
                "--runtime kata is not supported by wharf",
            ),
        ] {
            let body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {field: value}});
            let e = wharf_engine::validate::prepare(request(None, &body).unwrap()).unwrap_err();
            assert!(e.to_string().contains(want), "{field}: {e}");
        }
        let bad = json!({"Image": "busybox", "HostConfig": {"CpuShares": "lots"}});
        assert!(request(None, &bad).is_err());
    }

    /// Fields that would run the container looser than asked are passed on as unsupported
    /// (the engine refuses them), never dropped.
    #[test]
    fn loosening_fields_are_not_dropped() {
        for (field, value) in [
            ("MaskedPaths", json!([])),
            ("KernelMemory", json!(1 << 20)),
            ("CpuRealtimeRuntime", json!(100)),
            ("SomethingNew", json!(true)),
        ] {
            let body = json!({"Image": "busybox", "HostConfig": {field: value}});
            let r = request(None, &body).unwrap();
            assert_eq!(
                r.flags.unsupported,
                [format!("HostConfig.{field}")],
                "{field}"
            );
        }
        let r = request(
            None,
            &json!({"Image": "busybox", "HostConfig": {"Privileged": true, "CapAdd": ["ALL"]}}),
        )
        .unwrap();
        assert!(r.host.privileged && r.host.cap_add == ["ALL"]);
        assert!(request(None, &json!({"Image": 3})).is_err());
        assert!(request(None, &json!([1])).is_err());
    }
}
