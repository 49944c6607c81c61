//! The volume service through typed requests: create/ls/inspect/rm/prune with docker's rules,
//! and the volume `create`/`destroy` events for named and anonymous volumes (a container's
//! `-v /path`, `rm -v`, a create that fails after making its anonymous volume, prune).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use wharf_engine::create::CreateRequest;
use wharf_engine::events::{Event, EventQuery};
use wharf_engine::mounts::parse_volume_flag;
use wharf_engine::volumes::{VolumeCreateRequest, VolumePruneRequest};
use wharf_engine::{Engine, EngineOptions};
use wharf_types::error::{ErrorKind, HasKind};

fn engine(dir: &tempfile::TempDir) -> Engine {
    Engine::open(EngineOptions {
        root: dir.path().join("root"),
        run_root: dir.path().join("run"),
        debug: false,
    })
    .unwrap()
}

/// An engine whose store holds a one-file image `tiny:latest` (containers are created, never
/// started: no `wharf` binary is needed).
fn engine_with_image(dir: &tempfile::TempDir) -> Engine {
    let tar = dir.path().join("tiny.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "hello", &b"hi\n"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    let store = wharf_store::Store::open(&dir.path().join("root")).unwrap();
    store
        .import(
            std::fs::File::open(&tar).unwrap(),
            &wharf_store::ImportOptions {
                reference: Some(wharf_types::ImageRef::parse("tiny:latest").unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
    drop(store);
    engine(dir)
}

fn volume_events(e: &Engine) -> Vec<Event> {
    e.query_events(
        &EventQuery {
            filters: vec!["type=volume".into()],
            ..Default::default()
        }
        .parse()
        .unwrap(),
    )
    .unwrap()
}

/// (action, volume name) of every volume event, oldest first.
fn actions(e: &Engine) -> Vec<(String, String)> {
    volume_events(e)
        .into_iter()
        .map(|ev| (ev.action, ev.actor.id))
        .collect()
}

fn pair(a: &str, n: &str) -> (String, String) {
    (a.to_string(), n.to_string())
}

fn container_with(
    e: &Engine,
    name: &str,
    volumes: &[&str],
) -> Result<String, wharf_engine::EngineError> {
    let mut req = CreateRequest {
        image: "tiny".into(),
        name: Some(name.into()),
        args: vec!["/hello".into()],
        ..Default::default()
    };
    for v in volumes {
        req.host.mounts.push(parse_volume_flag(v)?);
    }
    let rec = e.create_container(req)?.record;
    Ok(rec.id.to_string())
}

/// The anonymous volume names `id`'s record mounts.
fn anon_of(e: &Engine, id: &str) -> Vec<String> {
    e.container(id)
        .unwrap()
        .record
        .host_config
        .mounts
        .iter()
        .filter(|m| e.volume(&m.source).is_ok_and(|v| v.anonymous))
        .map(|m| m.source.clone())
        .collect()
}

#[test]
fn create_ls_inspect_rm_with_docker_rules_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir);
    let labels = BTreeMap::from([("team".to_string(), "db".to_string())]);
    let v = e
        .create_volume(&VolumeCreateRequest {
            name: Some("data".into()),
            driver: Some("local".into()),
            labels: labels.clone(),
        })
        .unwrap();
    assert_eq!(v.name, "data");
    assert!(!v.anonymous);
    assert!(v.mountpoint.is_dir());
    // an existing name is returned as it is (labels unchanged), with no second event
    let again = e
        .create_volume(&VolumeCreateRequest {
            name: Some("data".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again.labels, labels);
    // a random 64-hex name, not anonymous
    let unnamed = e.create_volume(&VolumeCreateRequest::default()).unwrap();
    assert_eq!(unnamed.name.len(), 64);
    assert!(!unnamed.anonymous);

    let err = e
        .create_volume(&VolumeCreateRequest {
            name: Some("x".into()),
            driver: Some("nfs".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("\"nfs\""), "{err}");
    let err = e
        .create_volume(&VolumeCreateRequest {
            name: Some("../x".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    let names: Vec<String> = e.volumes().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"data".to_string()));
    let j = wharf_engine::volumes::inspect_json(&e.volume("data").unwrap());
    assert_eq!(j["Name"], "data");
    assert_eq!(j["Driver"], "local");
    assert_eq!(j["Labels"]["team"], "db");
    assert_eq!(e.volume("nope").unwrap_err().kind(), ErrorKind::NotFound);

    e.remove_volume("data", false).unwrap();
    assert_eq!(e.volume("data").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        e.remove_volume("data", false).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // forced: a missing volume is no error, and nothing was destroyed
    e.remove_volume("data", true).unwrap();

    assert_eq!(
        actions(&e),
        [
            pair("create", "data"),
            pair("create", &unnamed.name),
            pair("destroy", "data"),
        ]
    );
    // docker's shape
    let ev = &volume_events(&e)[0];
    assert_eq!(ev.kind, "volume");
    assert_eq!(ev.scope, "local");
    assert_eq!(
        ev.actor.attributes,
        BTreeMap::from([("driver".to_string(), "local".to_string())])
    );
    // the volume filter selects by name
    let only = e
        .query_events(
            &EventQuery {
                filters: vec![format!("volume={}", unnamed.name)],
                ..Default::default()
            }
            .parse()
            .unwrap(),
        )
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].actor.id, unnamed.name);
}

#[test]
fn anonymous_volumes_of_containers_are_created_and_destroyed_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with_image(&dir);
    e.create_volume(&VolumeCreateRequest {
        name: Some("named".into()),
        ..Default::default()
    })
    .unwrap();
    let id = container_with(&e, "c1", &["/data", "named:/named"]).unwrap();
    let anon = anon_of(&e, &id);
    assert_eq!(anon.len(), 1);
    // a named volume in use is refused, even forced
    let err = e.remove_volume("named", true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    // a create that fails after making its anonymous volume (name taken) removes it again
    let err = container_with(&e, "c1", &["/other"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let ev = actions(&e);
    assert_eq!(ev.len(), 4, "{ev:?}");
    let failed = ev[2].1.clone();
    assert_eq!(ev[2], pair("create", &failed));
    assert_eq!(ev[3], pair("destroy", &failed));
    assert_eq!(e.volume(&failed).unwrap_err().kind(), ErrorKind::NotFound);

    // rm -v: the anonymous volume goes (with its event), the named one stays
    e.remove_container("c1", false, true).unwrap();
    let ev = actions(&e);
    assert_eq!(ev[1], pair("create", &anon[0]));
    assert_eq!(ev.last(), Some(&pair("destroy", &anon[0])));
    assert_eq!(ev.len(), 5, "{ev:?}");
    assert!(e.volume("named").is_ok());
    assert_eq!(e.volume(&anon[0]).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn prune_removes_unused_anonymous_volumes_unless_all() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with_image(&dir);
    let keep = BTreeMap::from([("keep".to_string(), "yes".to_string())]);
    for (n, l) in [("plain", BTreeMap::new()), ("kept", keep)] {
        e.create_volume(&VolumeCreateRequest {
            name: Some(n.into()),
            labels: l,
            ..Default::default()
        })
        .unwrap();
    }
    // in use: stays through every prune
    let used = container_with(&e, "user", &["/in-use"]).unwrap();
    let used_anon = anon_of(&e, &used);
    // left behind: rm without -v
    let gone = container_with(&e, "gone", &["/left"]).unwrap();
    let left = anon_of(&e, &gone);
    e.remove_container("gone", false, false).unwrap();
    let mp = e.volume(&left[0]).unwrap().mountpoint;
    std::fs::write(mp.join("a"), vec![7u8; 1500]).unwrap();
    std::fs::create_dir(mp.join("d")).unwrap();
    std::fs::write(mp.join("d/b"), vec![7u8; 500]).unwrap();

    let bad = e
        .prune_volumes(&VolumePruneRequest {
            filters: vec!["dangling=true".into()],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidArgument);

    let rep = e.prune_volumes(&VolumePruneRequest::default()).unwrap();
    assert_eq!(rep.deleted, left);
    assert_eq!(rep.reclaimed, 2000);
    assert_eq!(actions(&e).last(), Some(&pair("destroy", &left[0])));
    // nothing left to prune without -a
    assert!(e
        .prune_volumes(&VolumePruneRequest::default())
        .unwrap()
        .deleted
        .is_empty());

    // -a with a label filter: only unused volumes without keep=yes
    let rep = e
        .prune_volumes(&VolumePruneRequest {
            all: true,
            filters: vec!["label!=keep=yes".into()],
        })
        .unwrap();
    assert_eq!(rep.deleted, ["plain"]);
    assert_eq!(rep.reclaimed, 0);
    let rep = e
        .prune_volumes(&VolumePruneRequest {
            all: true,
            filters: vec![],
        })
        .unwrap();
    assert_eq!(rep.deleted, ["kept"]);
    let left_now: Vec<String> = e.volumes().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(left_now, used_anon);
    let destroyed: Vec<String> = actions(&e)
        .into_iter()
        .filter(|(a, _)| a == "destroy")
        .map(|(_, n)| n)
        .collect();
    assert_eq!(destroyed, [left[0].as_str(), "plain", "kept"]);
}

/// A prune running while containers are created never takes the anonymous volume a create
/// made for a record it has not written yet.
#[test]
fn prune_never_takes_the_volume_of_a_create_in_flight() {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Stops the pruner however the creating loop ends (a failed assertion included).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with_image(&dir);
    let done = AtomicBool::new(false);
    let mut lost = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let e2 = engine(&dir);
            while !done.load(Ordering::Relaxed) {
                let _ = e2.prune_volumes(&VolumePruneRequest::default());
            }
        });
        let _stop = Stop(&done);
        for i in 0..40 {
            let id = container_with(&e, &format!("c{i}"), &["/a"]).unwrap();
            let rec = e.container(&id).unwrap().record;
            let src = rec.host_config.mounts[0].source.clone();
            if e.volume(&src).is_err() {
                lost.push(format!("c{i}: {src}"));
            }
        }
    });
    assert!(lost.is_empty(), "pruned while their create ran: {lost:?}");
}
