//! `info` and `version` through the real binary: docker's `Client:`/`Server:` text (each
//! line wharf prints is one docker prints, checked against dockerd where it runs), the counts
//! of this test's own store, and `--format` over docker's JSON shapes.

mod common;

use common::dockerd::Dockerd;
use common::*;
use serde_json::Value;

/// The label of each line (`" Containers:"`, `"  Running:"`, `"Server:"`), values dropped.
fn labels(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.find(':') {
            Some(i) => l[..=i].to_string(),
            None => l.to_string(),
        })
        .collect()
}

#[test]
fn info_counts_own_objects_and_has_dockers_shape() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    w.ok(&["create", "--name", "info1", "busybox", "true"]);
    let out = w.ok(&["info"]);
    for want in [
        "Client:\n Version:    ",
        "\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: 1\n  Running: 0\n  Paused: 0\n  Stopped: 1\n Images: 1\n Server Version: ",
        "\n Storage Driver: overlay2\n",
        "\n Logging Driver: json-file\n",
        "\n Cgroup Driver: cgroupfs\n",
        "\n OSType: linux\n",
        "\n Swarm: inactive\n",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let root = format!("\n Docker Root Dir: {}\n", w.root().display());
    assert!(out.contains(&root), "{out}");
    // `system info` is the same command
    let sys = w.ok(&["system", "info"]);
    assert_eq!(labels(&sys), labels(&out));
    // --format over docker's info JSON with ClientInfo
    assert_eq!(
        w.ok(&[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersStopped}} {{.Images}} {{.Driver}} {{.ClientInfo.Context}}"
        ]),
        "1 1 1 overlay2 default\n"
    );
    let v: Value = serde_json::from_str(&w.ok(&["info", "-f", "json"])).unwrap();
    assert_eq!(v["OSType"], "linux");
    assert_eq!(v["Containers"], 1);
    assert!(v["NCPU"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(v["MemTotal"].as_u64().unwrap_or(0) > 0, "{v}");
    // a template error is the CLI's error: exit 1
    let o = w.run(&["info", "--format", "{{.Containers"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    let Some(dd) = Dockerd::start() else {
        eprintln!("docker part skipped: dockerd unavailable");
        return;
    };
    let theirs = dd.ok(&["info"]);
    let theirs = labels(&theirs);
    for l in labels(&out) {
        assert!(
            theirs.contains(&l),
            "wharf's {l:?} is not docker's: {theirs:?}"
        );
    }
    for key in [
        "Containers",
        "ContainersRunning",
        "Images",
        "Driver",
        "LoggingDriver",
        "CgroupVersion",
        "KernelVersion",
        "NCPU",
        "MemTotal",
        "DockerRootDir",
        "RegistryConfig",
    ] {
        let f = format!("{{{{json .{key}}}}}");
        let ours = w.ok(&["info", "--format", &f]);
        let docker = dd.ok(&["info", "--format", &f]);
        assert!(
            !ours.trim().is_empty() && !docker.trim().is_empty(),
            "{key}"
        );
        let (o, d): (Value, Value) = (
            serde_json::from_str(&ours).unwrap(),
            serde_json::from_str(&docker).unwrap(),
        );
        assert_eq!(
            std::mem::discriminant(&o),
            std::mem::discriminant(&d),
            "{key}: {o} vs {d}"
        );
    }
    // same host: same kernel, CPUs, memory
    for key in [
        "KernelVersion",
        "NCPU",
        "MemTotal",
        "OSType",
        "Architecture",
    ] {
        let f = format!("{{{{.{key}}}}}");
        assert_eq!(
            w.ok(&["info", "-f", &f]),
            dd.ok(&["info", "-f", &f]),
            "{key}"
        );
    }
}

#[test]
fn version_has_client_and_server_blocks() {
    let w = Wharf::new();
    let out = w.ok(&["version"]);
    assert!(out.starts_with("Client:\n Version:           "), "{out}");
    assert!(out.contains("\n API version:       1."), "{out}");
    assert!(
        out.contains("\n\nServer: wharf\n Engine:\n  Version:          "),
        "{out}"
    );
    assert!(out.contains("(minimum version 1.24)"), "{out}");
    assert_eq!(
        w.ok(&["version", "--format", "{{.Server.Os}}/{{.Client.Context}}"]),
        "linux/default\n"
    );
    let v: Value = serde_json::from_str(&w.ok(&["version", "-f", "{{json .}}"])).unwrap();
    assert_eq!(v["Server"]["Components"][0]["Name"], "Engine");
    assert_eq!(v["Client"]["Version"], v["Server"]["Version"]);

    let Some(dd) = Dockerd::start() else {
        eprintln!("docker part skipped: dockerd unavailable");
        return;
    };
    let theirs = labels(&dd.ok(&["version"]));
    for l in labels(&out) {
        let l = if l.starts_with("Server:") {
            "Server:".into()
        } else {
            l
        };
        assert!(
            theirs.contains(&l),
            "wharf's {l:?} is not docker's: {theirs:?}"
        );
    }
    // the same JSON keys at the top and in the engine component
    let d: Value = serde_json::from_str(&dd.ok(&["version", "--format", "{{json .}}"])).unwrap();
    for k in ["Client", "Server"] {
        assert!(d[k].is_object() && v[k].is_object(), "{k}");
    }
    for k in [
        "Version",
        "ApiVersion",
        "MinAPIVersion",
        "Os",
        "Arch",
        "KernelVersion",
    ] {
        assert!(v["Server"][k].is_string(), "{k}: {v}");
        assert!(d["Server"][k].is_string(), "{k}: {d}");
    }
}
