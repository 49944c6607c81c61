//! docker's create body (`Config` + `HostConfig` + `NetworkingConfig`) from the SAME typed
//! request the local path builds (`cmd::run::build_request`). Every struct is destructured
//! without `..`: a field added to `CreateRequest`, `HostConfig` or `CreateFlags` does not
//! compile here until it is mapped, and a value the API cannot carry is an error
//! ([`RemoteError::Unexpressible`]), never dropped. Values go out as the user typed them
//! where docker's API takes strings (binds, DNS, hosts, links, log options); where it takes
//! typed values, the one parser of each (wharf-types, the engine's mount parsers) shapes
//! them, as docker's CLI does; the server validates everything again.
//! What only the client can do is done here, as docker's CLI does it: `--env-file` and a
//! bare `-e KEY` read on this side, a relative `-v ./src` made absolute, a seccomp profile
//! file sent as its content.

use super::RemoteError;
use serde_json::{json, Map, Value};
use wharf_engine::create::CreateRequest;
use wharf_engine::validate::CreateFlags;
use wharf_types::container::{EndpointConfig, HostConfig, MountConfig, MountKind};

fn parse_err<'a, E: std::error::Error + Send + Sync + 'static>(
    flag: &'static str,
    value: &'a str,
) -> impl FnOnce(E) -> RemoteError + 'a {
    move |e| RemoteError::Parse {
        flag,
        value: value.to_string(),
        source: Box::new(e),
    }
}

fn kv(s: &str) -> (String, String) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// A record mount → docker's `Mount` object.
fn mount_json(m: &MountConfig) -> Result<Value, RemoteError> {
    let MountConfig {
        kind,
        source,
        target,
        read_only,
        options,
        create_mountpoint,
    } = m;
    let mut o = json!({
        "Type": match kind { MountKind::Bind => "bind", MountKind::Volume => "volume", MountKind::Tmpfs => "tmpfs" },
        "Source": source,
        "Target": target,
        "ReadOnly": read_only,
    });
    if *kind == MountKind::Bind && *create_mountpoint {
        o["BindOptions"] = json!({"CreateMountpoint": true});
    }
    if !options.is_empty() {
        let mut t = Map::new();
        for opt in options.split(',').filter(|x| !x.is_empty()) {
            match opt.split_once('=') {
                Some(("size", v)) => {
                    let n = wharf_types::parse::size(v).map_err(parse_err("--tmpfs size", v))?;
                    t.insert("SizeBytes".into(), json!(n));
                }
                Some(("mode", v)) => {
                    let n = u32::from_str_radix(v, 8).map_err(parse_err("--tmpfs mode", v))?;
                    t.insert("Mode".into(), json!(n));
                }
                _ => {
                    return Err(RemoteError::Unexpressible {
                        flag: "a tmpfs option other than size and mode",
                    })
                }
            }
        }
        o["TmpfsOptions"] = Value::Object(t);
    }
    Ok(o)
}

/// `-v ./rel:/x`: docker's CLI makes a relative source absolute (docker 23+).
fn absolute_bind(spec: &str, cwd: Option<&std::path::Path>) -> String {
    match (spec.starts_with('.'), cwd, spec.split_once(':')) {
        (true, Some(cwd), Some((src, rest))) => format!("{}:{rest}", cwd.join(src).display()),
        _ => spec.to_string(),
    }
}

/// The create body and the `name` query value.
pub fn body(mut req: CreateRequest) -> anyhow::Result<(Value, Option<String>)> {
    // The resource and namespace flags through their one parser (as docker's CLI shapes
    // them into `HostConfig` before sending; `--label-file` is read on this side, as
    // docker's): they land in `host.resources`/`host.options`/`labels`, encoded below.
    let resource_flags = std::mem::take(&mut req.flags.resources);
    wharf_engine::resources::apply(&mut req, &resource_flags, false)?;
    let CreateRequest {
        image,
        name,
        args,
        entrypoint,
        env,
        workdir,
        user,
        hostname,
        domainname,
        tty,
        stdin,
        stdin_once,
        labels,
        stop_signal,
        stop_timeout,
        healthcheck,
        host,
        exposed_ports,
        mac_address,
        endpoint,
        flags,
    } = req;
    let HostConfig {
        mounts,
        network_mode,
        port_bindings,
        publish_all_ports,
        dns,
        dns_search,
        dns_options,
        extra_hosts,
        links,
        privileged,
        cap_add,
        cap_drop,
        security_opt,
        memory,
        nano_cpus,
        pids_limit,
        readonly_rootfs,
        auto_remove,
        init,
        ulimits,
        group_add,
        restart_policy,
        log_config,
        sysctls,
        resources,
        options,
    } = host;
    let CreateFlags {
        memory: f_memory,
        cpus: f_cpus,
        ulimits: f_ulimits,
        network: f_network,
        publish: f_publish,
        publish_all: f_publish_all,
        expose: f_expose,
        ip: f_ip,
        ip6: f_ip6,
        network_aliases: f_aliases,
        mac_address: f_mac,
        dns: f_dns,
        dns_search: f_dns_search,
        dns_options: f_dns_options,
        add_hosts: f_add_hosts,
        sysctls: f_sysctls,
        links: f_links,
        restart: f_restart,
        log_driver: f_log_driver,
        log_opts: f_log_opts,
        health_cmd: f_health_cmd,
        health_interval: f_health_interval,
        health_timeout: f_health_timeout,
        health_start_period: f_health_start_period,
        health_retries: f_health_retries,
        no_healthcheck: f_no_healthcheck,
        volumes: f_volumes,
        mounts: f_mounts,
        tmpfs: f_tmpfs,
        cwd: f_cwd,
        labels: f_labels,
        env_files: f_env_files,
        env: f_env,
        typed_mounts: f_typed_mounts,
        unsupported: f_unsupported,
        remote: _remote,
        resources: _applied_above,
    } = flags;
    if !f_typed_mounts.is_empty() || !f_unsupported.is_empty() {
        return Err(RemoteError::Unexpressible {
            flag: "an API-only create field",
        }
        .into());
    }

    // Config
    let mut env = env;
    env.extend(wharf_engine::validate::env_from_flags(
        &f_env_files,
        &f_env,
    )?);
    let mut labels: Map<String, Value> = labels.into_iter().map(|(k, v)| (k, json!(v))).collect();
    for l in &f_labels {
        let (k, v) = kv(l);
        labels.insert(k, json!(v));
    }
    let mut exposed: Map<String, Value> =
        exposed_ports.into_iter().map(|p| (p, json!({}))).collect();
    for e in &f_expose {
        for k in wharf_types::ports::expose_range(e).map_err(parse_err("--expose", e))? {
            exposed.insert(k.to_string(), json!({}));
        }
    }
    let mut volumes = Map::new();
    let mut binds = Vec::new();
    for v in &f_volumes {
        if v.contains(':') {
            binds.push(absolute_bind(v, f_cwd.as_deref()));
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }
    let mut health = healthcheck.map(serde_json::to_value).transpose()?;
    let dur = |flag: &'static str, v: &Option<String>| -> Result<Option<i64>, RemoteError> {
        v.as_deref()
            .map(|s| wharf_types::parse::go_duration(s).map_err(parse_err(flag, s)))
            .transpose()
    };
    let h_interval = dur("--health-interval", &f_health_interval)?;
    let h_timeout = dur("--health-timeout", &f_health_timeout)?;
    let h_start = dur("--health-start-period", &f_health_start_period)?;
    if f_no_healthcheck {
        health = Some(json!({"Test": ["NONE"]}));
    } else if f_health_cmd.is_some()
        || h_interval.is_some()
        || h_timeout.is_some()
        || h_start.is_some()
        || f_health_retries.is_some()
    {
        let mut h = health.unwrap_or_else(|| json!({}));
        if let Some(cmd) = &f_health_cmd {
            h["Test"] = json!(["CMD-SHELL", cmd]);
        }
        if let Some(d) = h_interval {
            h["Interval"] = json!(d);
        }
        if let Some(d) = h_timeout {
            h["Timeout"] = json!(d);
        }
        if let Some(d) = h_start {
            h["StartPeriod"] = json!(d);
        }
        if let Some(r) = f_health_retries {
            h["Retries"] = json!(r);
        }
        health = Some(h);
    }
    // docker's `--entrypoint x` is ["x"], `--entrypoint ""` is [""]
    let entrypoint = entrypoint.map(|e| json!([e]));

    // HostConfig
    let mut typed_mounts = Vec::new();
    for m in &mounts {
        typed_mounts.push(mount_json(m)?);
    }
    for m in &f_mounts {
        typed_mounts.push(mount_json(&wharf_engine::mounts::parse_mount_flag(m)?)?);
    }
    for t in &f_tmpfs {
        typed_mounts.push(mount_json(&wharf_engine::mounts::parse_tmpfs_flag(t)?)?);
    }
    let mut bindings: Map<String, Value> = Map::new();
    for (k, list) in port_bindings_typed(port_bindings) {
        bindings.insert(k, list);
    }
    for p in &f_publish {
        for m in wharf_types::ports::parse_publish(p).map_err(parse_err("--publish", p))? {
            let key = m.container.to_string();
            exposed.insert(key.clone(), json!({}));
            let host_port = match m.host_ports {
                Some((a, b)) if a == b => a.to_string(),
                Some((a, b)) => format!("{a}-{b}"),
                None => String::new(),
            };
            let b = json!({"HostIp": m.host_ip.map(|i| i.to_string()).unwrap_or_default(), "HostPort": host_port});
            if let Value::Array(a) = bindings.entry(key).or_insert_with(|| json!([])) {
                a.push(b);
            }
        }
    }
    let mut memory = memory;
    if let Some(m) = &f_memory {
        memory = wharf_types::parse::size(m).map_err(parse_err("--memory", m))?;
    }
    let mut nano_cpus = nano_cpus;
    if let Some(c) = &f_cpus {
        nano_cpus = wharf_types::parse::cpus(c).map_err(parse_err("--cpus", c))?;
    }
    let mut ulimits_json = serde_json::to_value(&ulimits)?;
    for u in &f_ulimits {
        let parsed = wharf_types::parse::ulimit(u).map_err(parse_err("--ulimit", u))?;
        if let Value::Array(a) = &mut ulimits_json {
            a.push(serde_json::to_value(parsed)?);
        }
    }
    let mut restart = serde_json::to_value(&restart_policy)?;
    if let Some(r) = &f_restart {
        // the server checks it; an unparsable value goes as its name, refused there
        restart = match wharf_types::container::RestartPolicy::parse(r) {
            Some(p) => serde_json::to_value(p)?,
            None => json!({"Name": r, "MaximumRetryCount": 0}),
        };
    }
    let mut log = serde_json::to_value(&log_config)?;
    if f_log_driver.is_some() || !f_log_opts.is_empty() {
        let mut cfg = Map::new();
        for o in &f_log_opts {
            let (k, v) = kv(o);
            cfg.insert(k, json!(v));
        }
        log = json!({"Type": f_log_driver.clone().unwrap_or_default(), "Config": cfg});
    }
    let mut sysctl_map: Map<String, Value> =
        sysctls.into_iter().map(|(k, v)| (k, json!(v))).collect();
    for s in &f_sysctls {
        let (k, v) = kv(s);
        sysctl_map.insert(k, json!(v));
    }
    let mut security_opt = security_opt;
    wharf_engine::validate::read_seccomp_profiles(&mut security_opt)?;
    let network = f_network
        .clone()
        .unwrap_or_else(|| network_mode.as_docker());
    let concat =
        |a: Vec<String>, b: &[String]| a.into_iter().chain(b.iter().cloned()).collect::<Vec<_>>();

    // NetworkingConfig
    let EndpointConfig {
        ipam_config,
        aliases,
        network_id: _,
        mac_address: ep_mac,
    } = endpoint;
    let mut ep = Map::new();
    let mut ipam = ipam_config
        .map(serde_json::to_value)
        .transpose()?
        .unwrap_or_else(|| json!({}));
    if let Some(ip) = &f_ip {
        ipam["IPv4Address"] = json!(ip);
    }
    if let Some(ip) = &f_ip6 {
        ipam["IPv6Address"] = json!(ip);
    }
    if ipam.as_object().is_some_and(|o| !o.is_empty()) {
        ep.insert("IPAMConfig".into(), ipam);
    }
    let aliases = concat(aliases, &f_aliases);
    if !aliases.is_empty() {
        ep.insert("Aliases".into(), json!(aliases));
    }
    let mac = f_mac
        .clone()
        .or((!ep_mac.is_empty()).then_some(ep_mac))
        .or((!mac_address.is_empty()).then_some(mac_address));
    if let Some(m) = &mac {
        ep.insert("MacAddress".into(), json!(m));
    }
    let networking = if ep.is_empty() {
        json!({"EndpointsConfig": {}})
    } else {
        json!({"EndpointsConfig": {network.clone(): ep}})
    };

    let host_config = json!({
        "Binds": binds,
        "Mounts": typed_mounts,
        "NetworkMode": network,
        "PortBindings": bindings,
        "PublishAllPorts": publish_all_ports || f_publish_all,
        "Dns": concat(dns, &f_dns),
        "DnsSearch": concat(dns_search, &f_dns_search),
        "DnsOptions": concat(dns_options, &f_dns_options),
        "ExtraHosts": concat(extra_hosts, &f_add_hosts),
        "Links": concat(links, &f_links),
        "Privileged": privileged,
        "CapAdd": cap_add,
        "CapDrop": cap_drop,
        "SecurityOpt": security_opt,
        "Memory": memory,
        "NanoCpus": nano_cpus,
        "PidsLimit": pids_limit,
        "ReadonlyRootfs": readonly_rootfs,
        "AutoRemove": auto_remove,
        "Init": init,
        "Ulimits": ulimits_json,
        "GroupAdd": group_add,
        "RestartPolicy": restart,
        "LogConfig": log,
        "Sysctls": sysctl_map,
    });
    // `Resources` and `HostOptions` serialize with docker's HostConfig key names.
    let mut host_config = host_config;
    for part in [
        serde_json::to_value(&resources)?,
        serde_json::to_value(&options)?,
    ] {
        if let (Value::Object(dst), Value::Object(src)) = (&mut host_config, part) {
            dst.extend(src);
        }
    }
    let body = json!({
        "Image": image,
        "Cmd": args,
        "Entrypoint": entrypoint,
        "Env": env,
        "WorkingDir": workdir.unwrap_or_default(),
        "User": user.unwrap_or_default(),
        "Hostname": hostname.unwrap_or_default(),
        "Domainname": domainname.unwrap_or_default(),
        "Tty": tty,
        "OpenStdin": stdin,
        "StdinOnce": stdin_once,
        "AttachStdin": stdin,
        "AttachStdout": true,
        "AttachStderr": true,
        "Labels": labels,
        "StopSignal": stop_signal.unwrap_or_default(),
        "StopTimeout": stop_timeout,
        "Healthcheck": health,
        "ExposedPorts": exposed,
        "Volumes": volumes,
        "HostConfig": host_config,
        "NetworkingConfig": networking,
    });
    Ok((strip_zero(body), name))
}

fn port_bindings_typed(
    pb: std::collections::BTreeMap<String, Vec<wharf_types::container::PortBinding>>,
) -> Vec<(String, Value)> {
    pb.into_iter()
        .map(|(k, v)| (k, serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect()
}

/// Drops null and empty fields of the body and of its `HostConfig` (what docker's CLI
/// leaves out with `omitempty`), so a server that refuses fields it does not know sees only
/// what was asked for. Values inside maps (`ExposedPorts`' `{}`, a label's `""`) are kept.
fn strip_zero(v: Value) -> Value {
    let Value::Object(o) = v else { return v };
    Value::Object(
        o.into_iter()
            .filter_map(|(k, v)| {
                let v = if k == "HostConfig" { strip_zero(v) } else { v };
                let empty = match &v {
                    Value::Null => true,
                    Value::String(s) => s.is_empty(),
                    Value::Array(a) => a.is_empty() && k != "Cmd",
                    Value::Object(o) => o.is_empty(),
                    _ => false,
                };
                (!empty).then_some((k, v))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &[&str]) -> crate::cli::RunArgs {
        use clap::Parser;
        let mut v = vec!["wharf", "run"];
        v.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(v).unwrap().command {
            crate::cli::Command::Run(r) => *r,
            _ => unreachable!(),
        }
    }

    /// The body the encoder makes maps back through the server's decoder onto the same
    /// request fields, with nothing left unsupported.
    #[test]
    fn round_trips_through_the_server_decoder() {
        let a = args(&[
            "-e",
            "A=1",
            "--label",
            "l=v",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "-p",
            "127.0.0.1:8080:80",
            "--expose",
            "9000",
            "-v",
            "/tmp:/host:ro",
            "-v",
            "/anon",
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m",
            "--tmpfs",
            "/run:size=2m",
            "--restart",
            "on-failure:3",
            "--ulimit",
            "nofile=100:200",
            "--dns",
            "1.1.1.1",
            "--add-host",
            "h:1.2.3.4",
            "--sysctl",
            "net.core.somaxconn=10",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=1m",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "--cap-add",
            "NET_ADMIN",
            "--read-only",
            "--init",
            "-w",
            "/w",
            "-u",
            "1:2",
            "-h",
            "hn",
            "--name",
            "n",
            "--network",
            "mynet",
            "--network-alias",
            "al",
            "--ip",
            "10.9.0.5",
            "busybox",
            "echo",
            "hi",
        ]);
        let req = crate::cmd::run::build_request(&a).unwrap();
        let (b, name) = body(req).unwrap();
        assert_eq!(name.as_deref(), Some("n"));
        let back = wharf_api::parse_create_body(name, b.to_string().as_bytes()).unwrap();
        assert!(
            back.flags.unsupported.is_empty(),
            "{:?} in {b}",
            back.flags.unsupported
        );
        assert_eq!(back.image, "busybox");
        assert_eq!(back.args, ["echo", "hi"]);
        assert!(back.env.contains(&"A=1".to_string()));
        assert_eq!(back.labels.get("l").map(String::as_str), Some("v"));
        assert_eq!(back.host.memory, 64 << 20);
        assert_eq!(back.host.nano_cpus, 500_000_000);
        assert!(back.host.readonly_rootfs && back.host.init);
        assert_eq!(back.host.port_bindings["80/tcp"][0].host_port, "8080");
        assert!(back.exposed_ports.contains("9000/tcp"));
        let mut volumes = back.flags.volumes.clone();
        volumes.sort();
        assert_eq!(volumes, ["/anon", "/tmp:/host:ro"]);
        assert_eq!(back.flags.typed_mounts.len(), 2);
        assert_eq!(back.host.restart_policy.maximum_retry_count, 3);
        assert_eq!(back.flags.ulimits, ["nofile=100:200"]);
        assert_eq!(back.flags.dns, ["1.1.1.1"]);
        assert_eq!(back.flags.add_hosts, ["h:1.2.3.4"]);
        assert_eq!(back.flags.sysctls, ["net.core.somaxconn=10"]);
        assert_eq!(back.flags.log_opts, ["max-size=1m"]);
        assert_eq!(
            back.healthcheck.as_ref().and_then(|h| h.interval),
            Some(5_000_000_000)
        );
        assert_eq!(back.flags.network.as_deref(), Some("mynet"));
        assert_eq!(back.flags.network_aliases, ["al"]);
        assert_eq!(back.flags.ip.as_deref(), Some("10.9.0.5"));
        assert_eq!(back.user.as_deref(), Some("1:2"));
        // the engine accepts what came back (its own checks, not the client's)
        if let Err(e) = wharf_engine::validate::prepare(back) {
            panic!("{e}");
        }
    }

    #[test]
    fn bad_values_are_errors_not_drops() {
        let req = crate::cmd::run::build_request(&args(&["-m", "lots", "busybox"])).unwrap();
        assert!(body(req).is_err());
        let req = crate::cmd::run::build_request(&args(&["busybox"])).unwrap();
        let (b, _) = body(req).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "bridge");
        assert!(b["HostConfig"].get("Memory").is_some());
    }
}
