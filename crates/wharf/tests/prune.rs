//! `image prune`, `container prune`, `system prune`, `system df` in a test's own store: what
//! each removes and keeps (dangling vs `-a`, images and networks in use, filters), docker's
//! output, and the space given back.

mod common;

use common::{stderr, stdout, Wharf};

fn image_ids(w: &Wharf) -> Vec<String> {
    w.ok(&["images", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn reclaimed(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total in {out}"))
        .to_string()
}

#[test]
fn image_prune_dangling_then_all_keeps_what_containers_use() {
    let w = Wharf::new().with_busybox();
    let tar = w.dir.path().join("busybox.tar");
    let tar = tar.to_str().unwrap();
    // a dangling image (no name) and a second tagged one with a label
    let dangling = w
        .ok(&["import", "--change", "LABEL tier=tmp", tar])
        .trim()
        .to_string();
    let labelled = w
        .ok(&["import", "--change", "LABEL tier=keep", tar, "keep:1"])
        .trim()
        .to_string();
    let ctr = w
        .ok(&["create", "--network", "none", "busybox", "true"])
        .trim()
        .to_string();

    let out = w.ok(&["image", "prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert_ne!(
        reclaimed(&out),
        "0B",
        "the unpacked layer is given back: {out}"
    );
    let ids = image_ids(&w);
    assert!(
        !ids.contains(&dangling) && ids.contains(&labelled),
        "{ids:?}"
    );

    // -a with a label filter: only images that pass it; busybox is used by a container
    let out = w.ok(&[
        "image",
        "prune",
        "-a",
        "-f",
        "--filter",
        "label=tier=nothing",
    ]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let out = w.ok(&["image", "prune", "-a", "-f", "--filter", "until=1h"]);
    assert_eq!(
        out, "Total reclaimed space: 0B\n",
        "made just now: not before an hour ago"
    );
    let out = w.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: keep:1\n"), "{out}");
    assert!(!out.contains("busybox"), "busybox is used by {ctr}: {out}");
    assert_eq!(image_ids(&w).len(), 1);
    // a bad filter is named, nothing removed
    let o = w.run(&["image", "prune", "-a", "-f", "--filter", "colour=red"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
    w.ok(&["rm", &ctr]);
}

#[test]
fn container_prune_filters_and_reclaims_the_writable_layer() {
    let w = Wharf::new().with_busybox();
    let keep = w
        .ok(&[
            "create",
            "--network",
            "none",
            "-l",
            "keep=yes",
            "busybox",
            "true",
        ])
        .trim()
        .to_string();
    w.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/blob bs=1k count=64 2>/dev/null",
    ]);
    let out = w.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_eq!(out.lines().nth(1).map(str::len), Some(64), "{out}");
    assert_eq!(reclaimed(&out), "65.54kB", "{out}");
    let left = w.ok(&["ps", "-aq", "--no-trunc"]);
    assert_eq!(left.trim(), keep);
    w.ok(&["rm", &keep]);
}

#[test]
fn system_prune_and_df() {
    let w = Wharf::new().with_busybox();
    let tar = w.dir.path().join("busybox.tar");
    w.ok(&["import", tar.to_str().unwrap(), "spare:1"]);
    let net = format!("prune-net-{}", std::process::id());
    w.ok(&["network", "create", &net]);
    let live = w
        .ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"])
        .trim()
        .to_string();
    w.ok(&["run", "--network", "none", "-v", "/anon", "busybox", "true"]);

    let df = w.ok(&["system", "df"]);
    let rows: Vec<Vec<&str>> = df
        .lines()
        .skip(1)
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        df.lines().next(),
        Some("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE")
    );
    assert_eq!(&rows[0][..3], ["Images", "2", "1"], "{df}");
    assert_eq!(&rows[1][..3], ["Containers", "2", "1"], "{df}");
    // a stopped container still holds its volume (docker counts links of any container)
    assert_eq!(&rows[2][..3], ["Local Volumes", "1", "1"], "{df}");
    assert_eq!(rows[3], ["Build Cache", "0", "0", "0B", "0B"], "{df}");
    let json = w.ok(&["system", "df", "--format", "{{json .}}"]);
    assert_eq!(json.lines().count(), 4, "{json}");

    // the prompt: "N" removes nothing
    let o = w.run_stdin(&["system", "prune", "-a", "--volumes"], b"N\n");
    assert!(o.status.success());
    assert!(stderr(&o).contains("  - all anonymous volumes not used by at least one container"));
    assert!(stdout(&o).is_empty());
    let out = w.ok(&["system", "prune", "-a", "--volumes", "-f"]);
    assert!(out.contains("Deleted Containers:\n"), "{out}");
    assert!(
        out.contains(&format!("Deleted Networks:\n{net}\n")),
        "{out}"
    );
    assert!(out.contains("Deleted Volumes:\n"), "{out}");
    assert!(out.contains("untagged: spare:1"), "{out}");
    assert!(!out.contains("busybox"), "busybox runs: {out}");
    // what runs stays, with its image
    assert_eq!(w.ok(&["ps", "-aq", "--no-trunc"]).trim(), live);
    assert_eq!(image_ids(&w).len(), 1);
    assert!(w.ok(&["volume", "ls", "-q"]).trim().is_empty());
    let o = w.run(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    w.ok(&["rm", "-f", &live]);
}
