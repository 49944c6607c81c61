//! docker's `inspect` objects' shape: the key order dockerd writes and its zero value for
//! each key wharf has no value of its own for (`HostConfig.ShmSize`, `Config.OnBuild`, …), so
//! scripts reading `docker inspect` find every key they know where they expect it. A value
//! wharf has always wins; a key docker lacks keeps its place after docker's. Checked key by
//! key against dockerd in `crates/wharf/tests/parity.rs`. Owns no data and decides nothing.

use serde_json::{json, Map, Value};

/// `actual`'s keys in the order of `template`'s, `template`'s value where `actual` has none,
/// then `actual`'s other keys in their order. A non-object `actual` is returned unchanged.
pub(crate) fn shaped(template: Value, actual: Value) -> Value {
    let (Value::Object(t), Value::Object(mut a)) = (template, actual.clone()) else {
        return actual;
    };
    let mut out = Map::new();
    for (k, zero) in t {
        let v = a.shift_remove(&k).unwrap_or(zero);
        out.insert(k, v);
    }
    out.extend(a);
    Value::Object(out)
}

/// `a`'s keys then `b`'s (one template in two `json!` calls: the macro's recursion limit).
fn concat(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (a, _) => a,
    }
}

/// The keys of a container's `Config` (docker's `container.Config`; `omitempty` keys absent).
pub(crate) fn container_config(actual: Value) -> Value {
    shaped(
        json!({
            "Hostname": "", "Domainname": "", "User": "",
            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
            "ExposedPorts": null, "Tty": false, "OpenStdin": false, "StdinOnce": false,
            "Env": null, "Cmd": null, "Healthcheck": null, "ArgsEscaped": null, "Image": "",
            "Volumes": null, "WorkingDir": "", "Entrypoint": null, "NetworkDisabled": null,
            "MacAddress": null, "OnBuild": null, "Labels": null, "StopSignal": null,
            "StopTimeout": null, "Shell": null,
        }),
        actual,
    )
    .as_object()
    .map(|o| {
        // docker's omitempty keys stay absent when wharf has no value for them
        let omit = [
            "ExposedPorts",
            "Healthcheck",
            "ArgsEscaped",
            "NetworkDisabled",
            "MacAddress",
            "StopSignal",
            "StopTimeout",
            "Shell",
        ];
        Value::Object(
            o.iter()
                .filter(|(k, v)| !(v.is_null() && omit.contains(&k.as_str())))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    })
    .unwrap_or(Value::Null)
}

/// An image's `Config` (and `ContainerConfig`): docker's keys even when the image has none.
pub(crate) fn image_config(actual: Value) -> Value {
    let actual = if actual.is_null() { json!({}) } else { actual };
    container_config(actual)
}

/// A container's `HostConfig` (docker's `container.HostConfig`, Resources inlined).
pub(crate) fn host_config(actual: Value) -> Value {
    shaped(
        concat(
            json!({
            "Binds": null, "ContainerIDFile": "",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": "default", "PortBindings": {},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null,
            "CapAdd": null, "CapDrop": null, "CgroupnsMode": "private",
            "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null,
            "IpcMode": "private", "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "",
            "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
            "SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
            "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "",
            }),
            json!({
            "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
            "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
            "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
            "DeviceCgroupRules": null, "DeviceRequests": null, "KernelMemory": 0,
            "KernelMemoryTCP": 0, "MemoryReservation": 0,
            "MemorySwap": 0, "MemorySwappiness": null, "OomKillDisable": false,
            "PidsLimit": null, "Ulimits": [], "CpuCount": 0, "CpuPercent": 0,
            "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "Mounts": null,
            "MaskedPaths": null, "ReadonlyPaths": null, "Init": null,
            }),
        ),
        actual,
    )
    .as_object()
    .map(|o| {
        // omitempty in docker: `Mounts` when empty, `Init` when unset (wharf's `false`)
        Value::Object(
            o.iter()
                .filter(|(k, v)| match k.as_str() {
                    "Mounts" => v.as_array().is_some_and(|a| !a.is_empty()),
                    "Init" => v.as_bool() == Some(true),
                    _ => true,
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    })
    .unwrap_or(Value::Null)
}

/// A container's `NetworkSettings` and each of its `Networks` endpoints.
pub(crate) fn network_settings(actual: Value) -> Value {
    let mut v = shaped(
        json!({
            "Bridge": "", "SandboxID": "", "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
            "SandboxKey": "", "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {},
        }),
        actual,
    );
    if let Some(Value::Object(nets)) = v.get_mut("Networks") {
        for ep in nets.values_mut() {
            *ep = shaped(
                json!({
                    "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "",
                    "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                    "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                    "MacAddress": "", "DriverOpts": null,
                }),
                std::mem::take(ep),
            );
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn docker_order_wharf_values_extra_keys_last() {
        let v = shaped(
            json!({"A": 0, "B": "", "C": null}),
            json!({"Z": 1, "C": [1], "A": 5}),
        );
        assert_eq!(keys(&v), ["A", "B", "C", "Z"]);
        assert_eq!(v["A"], 5);
        assert_eq!(v["B"], "");
        assert_eq!(v["C"], json!([1]));
    }

    #[test]
    fn empty_image_config_has_dockers_keys() {
        let c = image_config(Value::Null);
        assert_eq!(keys(&c)[..3], ["Hostname", "Domainname", "User"]);
        assert!(c.get("OnBuild").is_some() && c.get("Labels").is_some());
        assert!(c.get("Healthcheck").is_none(), "omitempty keys stay out");
    }

    #[test]
    fn host_config_omits_unset_init_and_empty_mounts() {
        let h = host_config(json!({"Mounts": [], "Privileged": true}));
        assert!(h.get("Mounts").is_none() && h.get("Init").is_none());
        assert_eq!(h["Privileged"], true);
        assert_eq!(h["ShmSize"], 67108864);
        assert!(host_config(json!({"Init": false})).get("Init").is_none());
        let h = host_config(json!({"Init": true}));
        assert_eq!(keys(&h).last(), Some(&"Init"));
    }
}
