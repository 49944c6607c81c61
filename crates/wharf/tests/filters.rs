//! `images --filter`, `ps --filter`, `ps -n`, `ps -s` through the real binary, with the same
//! objects made in dockerd as the oracle where it runs (same names out, same exit code).
//! Each test has its own store, so counts are its own.

mod common;

use common::dockerd::Dockerd;
use common::*;

/// `images` rows as `repo:tag` (one line each), in the tool's order.
fn image_rows(run: &dyn Fn(&[&str]) -> String, filters: &[&str]) -> String {
    let mut args = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    run(&args)
}

/// The same images in wharf and dockerd, in the same order: busybox, other:1 (a tag of it),
/// lab:1 (a label), a dangling import.
fn make_images(run: &dyn Fn(&[&str]) -> String, tar: &str) {
    run(&["import", tar, "busybox:latest"]);
    run(&["tag", "busybox", "other:1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run(&["import", "-c", "LABEL colour=red", tar, "lab:1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run(&["import", tar]);
}

const IMAGE_CASES: &[(&[&str], &str)] = &[
    (&["dangling=true"], "<none>:<none>\n"),
    (&["dangling=false"], "lab:1\nbusybox:latest\nother:1\n"),
    (&["reference=busy*"], "busybox:latest\n"),
    (&["reference=*:1"], "lab:1\nother:1\n"),
    (&["reference=other", "reference=lab"], "lab:1\nother:1\n"),
    (&["label=colour=red"], "lab:1\n"),
    (&["label=colour"], "lab:1\n"),
    (&["label=colour=blue"], ""),
    (&["before=lab:1"], "busybox:latest\nother:1\n"),
    (&["since=busybox", "dangling=false"], "lab:1\n"),
];

#[test]
fn images_filters_as_docker() {
    let w = Wharf::new();
    let tar = w.dir.path().join("busybox.tar");
    write_busybox_tar(&tar);
    let tar = tar.to_str().unwrap_or_default().to_string();
    make_images(&|a| w.ok(a), &tar);
    for (filters, want) in IMAGE_CASES {
        let got = image_rows(&|a| w.ok(a), filters);
        // docker lists the tags of one image in its own order: compare as sets per image
        let mut g: Vec<&str> = got.lines().collect();
        let mut e: Vec<&str> = want.lines().collect();
        g.sort_unstable();
        e.sort_unstable();
        assert_eq!(g, e, "wharf images {filters:?}: {got}");
    }
    // -q follows the filter
    let q = w.ok(&["images", "-q", "-f", "dangling=true"]);
    assert_eq!(q.lines().count(), 1, "{q}");
    // a bad filter: the daemon's refusal, exit 1
    for (f, msg) in [
        (
            "bogus=1",
            "Error response from daemon: invalid filter 'bogus'",
        ),
        (
            "dangling=maybe",
            "Error response from daemon: invalid filter 'dangling=maybe'",
        ),
    ] {
        let o = w.run(&["images", "-f", f]);
        assert_eq!(o.status.code(), Some(1), "{f}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{f}: {}", stderr(&o));
    }
    let o = w.run(&["images", "-f", "before=nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));

    let Some(dd) = Dockerd::start() else {
        eprintln!("docker part skipped: dockerd unavailable");
        return;
    };
    make_images(&|a| dd.ok(a), &tar);
    for (filters, want) in IMAGE_CASES {
        let got = image_rows(&|a| dd.ok(a), filters);
        let mut g: Vec<&str> = got.lines().collect();
        let mut e: Vec<&str> = want.lines().collect();
        g.sort_unstable();
        e.sort_unstable();
        assert_eq!(g, e, "docker images {filters:?}: {got}");
    }
    for f in ["bogus=1", "before=nosuch"] {
        let o = dd.docker(&["images", "-f", f]);
        assert_eq!(o.status.code(), Some(1), "docker {f}: {}", stderr(&o));
    }
}

/// `ps` names (sorted) for these arguments.
fn ps_names(run: &dyn Fn(&[&str]) -> String, args: &[&str]) -> Vec<String> {
    let mut a = vec!["ps", "--format", "{{.Names}}"];
    a.extend(args);
    let mut v: Vec<String> = run(&a).lines().map(str::to_string).collect();
    v.sort();
    v
}

/// f1 (label, a volume), f2 (no network), f3 (exited 3): created in this order.
fn make_containers(run: &dyn Fn(&[&str]) -> String) {
    run(&[
        "create",
        "--name",
        "f1",
        "--label",
        "tier=web",
        "-v",
        "fvol:/data",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    run(&[
        "create",
        "--name",
        "f2",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    run(&[
        "run",
        "--name",
        "f3",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
}

const PS_CASES: &[(&[&str], &[&str])] = &[
    (&["-a", "--filter", "label=tier=web"], &["f1"]),
    (&["-a", "--filter", "volume=fvol"], &["f1"]),
    (&["-a", "--filter", "volume=/data"], &["f1"]),
    (&["-a", "--filter", "network=none"], &["f1", "f2", "f3"]),
    (&["-a", "--filter", "before=f2"], &["f1"]),
    (&["-a", "--filter", "since=f1"], &["f2", "f3"]),
    (&["-a", "--filter", "health=none"], &["f1", "f2", "f3"]),
    (&["-a", "--filter", "health=healthy"], &[]),
    // exited does not list stopped containers without -a (status does)
    (&["--filter", "exited=3"], &[]),
    (&["-a", "--filter", "exited=3"], &["f3"]),
    (&["--filter", "status=created"], &["f1", "f2"]),
    (&["-a", "-f", "name=f1", "-f", "name=f2"], &["f1", "f2"]),
    (&["-n", "2"], &["f2", "f3"]),
    (&["-l"], &["f3"]),
    (&[], &[]),
];

#[test]
fn ps_filters_last_and_size_as_docker() {
    let w = Wharf::new().with_busybox();
    let _c = Cleanup(&w);
    make_containers(&|a| {
        let o = w.run(a);
        String::from_utf8_lossy(&o.stdout).into_owned()
    });
    for (args, want) in PS_CASES {
        assert_eq!(ps_names(&|a| w.ok(a), args), *want, "wharf ps {args:?}");
    }
    // -s: docker's SIZE column, "<rw> (virtual <image + rw>)"
    let out = w.ok(&["ps", "-a", "-s", "--filter", "name=f3"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.ends_with("NAMES     SIZE"), "{out}");
    let row = lines.next().unwrap_or_default();
    let size = row.rsplit("   ").next().unwrap_or_default().trim();
    assert!(
        size.starts_with("0B (virtual ") && size.ends_with("MB)"),
        "{size:?} in {out}"
    );
    let f = w.ok(&[
        "ps",
        "-a",
        "-s",
        "--format",
        "{{.Size}}",
        "--filter",
        "name=f3",
    ]);
    assert_eq!(f.trim(), size);
    // a filter docker does not know, a bad value, a missing bound
    for (f, msg) in [
        (
            "colour=red",
            "Error response from daemon: invalid filter 'colour'",
        ),
        (
            "health=great",
            "Error response from daemon: invalid filter 'health=great'",
        ),
        ("before=nosuch", "No such container: nosuch"),
    ] {
        let o = w.run(&["ps", "-a", "--filter", f]);
        assert_eq!(o.status.code(), Some(1), "{f}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{f}: {}", stderr(&o));
    }

    let Some(dd) = Dockerd::start() else {
        eprintln!("docker part skipped: dockerd unavailable");
        return;
    };
    let tar = w.dir.path().join("busybox.tar");
    dd.ok(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
    make_containers(&|a| {
        let o = dd.docker(a);
        String::from_utf8_lossy(&o.stdout).into_owned()
    });
    for (args, want) in PS_CASES {
        assert_eq!(ps_names(&|a| dd.ok(a), args), *want, "docker ps {args:?}");
    }
    let theirs = dd.ok(&["ps", "-a", "-s", "--filter", "name=f3"]);
    assert!(
        theirs
            .lines()
            .next()
            .unwrap_or_default()
            .ends_with("NAMES     SIZE"),
        "{theirs}"
    );
    for f in ["colour=red", "health=great", "before=nosuch"] {
        let o = dd.docker(&["ps", "-a", "--filter", f]);
        assert_eq!(o.status.code(), Some(1), "docker {f}: {}", stderr(&o));
    }
}
