//! The image and distribution services driven with typed requests (no argv, no printing):
//! import/list/inspect/tag, save → load into another store, push to wharf's own registry and
//! pull back through a Docker Hub mirror that only the engine's one daemon.json load knows
//! about; the image events each emits in docker's `/events` shape.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::path::Path;
use wharf_engine::daemon::DaemonConfig;
use wharf_engine::distribution::{
    LoadRequest, PullRequest, PushRequest, RegistryServer, RegistryServerConfig, SaveOutput,
    SaveRequest,
};
use wharf_engine::events::Event;
use wharf_engine::images::{
    ImageError, ImportRequest, ImportSource, ListImagesRequest, TagRequest,
};
use wharf_engine::{Engine, EngineOptions};
use wharf_types::error::{ErrorKind, HasKind};

fn engine_with(dir: &Path, name: &str, daemon: DaemonConfig) -> Engine {
    Engine::open_with(
        EngineOptions {
            root: dir.join(name).join("root"),
            run_root: dir.join(name).join("run"),
            debug: false,
        },
        daemon,
    )
    .expect("open engine")
}

fn engine(dir: &Path, name: &str) -> Engine {
    engine_with(dir, name, DaemonConfig::default())
}

/// A one-layer root file system: `/hello` (its content makes each tar distinct).
fn rootfs_tar(content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "hello", content.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn import(e: &Engine, content: &str, reference: &str) -> String {
    let mut tar = Cursor::new(rootfs_tar(content));
    e.import_image(ImportRequest {
        source: ImportSource::Reader(&mut tar),
        reference: Some(reference.to_string()),
        changes: vec![r#"CMD ["/hello"]"#.into()],
        message: None,
    })
    .unwrap()
    .to_string()
}

/// `(Action, Actor.ID, name)` of the image events.
fn image_events(e: &Engine) -> Vec<(String, String, String)> {
    e.events(None, None)
        .unwrap()
        .into_iter()
        .filter(|ev: &Event| ev.kind == "image")
        .map(|ev| {
            (
                ev.action,
                ev.actor.id,
                ev.actor.attributes.get("name").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn import_list_inspect_tag_and_their_events() {
    let t = tempfile::tempdir().unwrap();
    let e = engine(t.path(), "a");
    let id = import(&e, "one", "eng/a:1");
    let list = e
        .list_images(&ListImagesRequest {
            reference: Some("eng/a".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].repository.as_str(), list[0].tag.as_str()),
        ("eng/a", "1")
    );
    assert_eq!(list[0].id.to_string(), id);
    let v = e.inspect_image("eng/a:1").unwrap();
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/hello"]));
    assert_eq!(v["RepoTags"], serde_json::json!(["eng/a:1"]));

    e.tag_image(&TagRequest {
        source: "eng/a:1".into(),
        target: "eng/b:2".into(),
    })
    .unwrap();
    let tags: Vec<String> = e
        .list_images(&ListImagesRequest::default())
        .unwrap()
        .into_iter()
        .map(|r| format!("{}:{}", r.repository, r.tag))
        .collect();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(tags.contains(&"eng/b:2".to_string()), "{tags:?}");
    assert_eq!(
        e.list_images(&ListImagesRequest {
            reference: Some("eng/b:3".into()),
            ..Default::default()
        })
        .unwrap(),
        vec![]
    );

    // refusals keep their kinds and say what is wrong
    let err = e
        .tag_image(&TagRequest {
            source: "eng/a:1".into(),
            target: format!("eng/c@{id}"),
        })
        .unwrap_err();
    assert!(matches!(err, ImageError::TagWithDigest), "{err}");
    let err = e
        .tag_image(&TagRequest {
            source: "nosuch:1".into(),
            target: "eng/c:1".into(),
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(e.inspect_image("nosuch:1").unwrap_err().kind() == ErrorKind::NotFound);
    let err = e
        .import_image(ImportRequest {
            source: ImportSource::Path("http://example.invalid/rootfs.tar".into()),
            reference: None,
            changes: vec![],
            message: None,
        })
        .unwrap_err();
    assert!(matches!(err, ImageError::ImportFromUrl), "{err}");
    let mut tar = Cursor::new(rootfs_tar("x"));
    let err = e
        .import_image(ImportRequest {
            source: ImportSource::Reader(&mut tar),
            reference: None,
            changes: vec!["RUN rm -rf /".into()],
            message: None,
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "RUN is not a valid change command");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // docker's image events: import (Actor.ID the id), tag (name the new name)
    assert_eq!(
        image_events(&e),
        vec![
            ("import".to_string(), id.clone(), id.clone()),
            ("tag".to_string(), id.clone(), "eng/a:1".to_string()),
            ("tag".to_string(), id.clone(), "eng/b:2".to_string()),
        ]
    );
}

#[test]
fn save_load_push_and_pull_through_the_configured_mirror() {
    let t = tempfile::tempdir().unwrap();
    let a = engine(t.path(), "a");
    let id = import(&a, "two", "eng/c:1");

    // save → load into another store: load (Actor.ID the id) and tag events
    let mut archive = Vec::new();
    a.save_images(
        &SaveRequest {
            images: vec!["eng/c:1".into()],
            format: "docker".into(),
            platform: None,
        },
        SaveOutput::Writer(&mut archive),
    )
    .unwrap();
    let b = engine(t.path(), "b");
    let loaded = b
        .load_images(&LoadRequest::default(), &mut Cursor::new(archive))
        .unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id.to_string(), id);
    assert_eq!(loaded[0].tags, ["eng/c:1"]);
    assert_eq!(
        image_events(&b),
        vec![
            ("load".to_string(), id.clone(), id.clone()),
            ("tag".to_string(), id.clone(), "eng/c:1".to_string()),
        ]
    );
    // to a file: written whole or not at all
    let out = t.path().join("c.tar");
    a.save_images(
        &SaveRequest {
            images: vec!["eng/c:1".into()],
            ..Default::default()
        },
        SaveOutput::File(out.clone()),
    )
    .unwrap();
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    let err = a
        .save_images(
            &SaveRequest {
                images: vec!["nosuch:1".into()],
                ..Default::default()
            },
            SaveOutput::File(t.path().join("none.tar")),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!t.path().join("none.tar").exists());
    assert!(!t.path().join(".none.tar.wharf-tmp").exists());

    // wharf's own registry on loopback
    let server = RegistryServer::bind(&RegistryServerConfig {
        addr: "127.0.0.1:0".into(),
        root: t.path().join("registry"),
        engine_root: None,
        htpasswd: None,
        read_only: false,
        max_manifest_size: 4 << 20,
        threads: 4,
    })
    .unwrap();
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let serving = std::thread::spawn(move || server.run());
    let pushed = format!("{addr}/library/mirrored:1");
    a.tag_image(&TagRequest {
        source: "eng/c:1".into(),
        target: pushed.clone(),
    })
    .unwrap();
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let digest = a
        .push_image(
            &PushRequest {
                reference: pushed.clone(),
                credentials: None,
            },
            &|l: &str| lines.lock().unwrap().push(l.to_string()),
        )
        .unwrap();
    let lines = lines.into_inner().unwrap();
    assert!(
        lines.last().unwrap().contains(&digest.to_string()),
        "{lines:?}"
    );

    // a Docker Hub name pulled through the mirror the engine was given (nothing else knows
    // it: the client reads no file)
    let cfg = DaemonConfig::parse(
        &t.path().join("daemon.json"),
        format!(r#"{{"registry-mirrors": ["http://{addr}"]}}"#).as_bytes(),
    )
    .unwrap();
    let c = engine_with(t.path(), "c", cfg);
    let res = c
        .pull_image(
            &PullRequest {
                reference: "mirrored:1".into(),
                platform: None,
                credentials: None,
            },
            &|_| {},
        )
        .unwrap();
    assert_eq!(res.reference, "docker.io/library/mirrored:1");
    assert_eq!(c.inspect_image("mirrored:1").unwrap()["Id"], id.as_str());
    assert_eq!(
        image_events(&c),
        vec![(
            "pull".to_string(),
            "mirrored:1".to_string(),
            "mirrored:1".to_string()
        )]
    );
    // a refused pull emits nothing
    let err = c
        .pull_image(
            &PullRequest {
                reference: format!("{addr}/library/absent:1"),
                platform: None,
                credentials: None,
            },
            &|_| {},
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(image_events(&c).len(), 1);

    stop.shutdown();
    serving.join().unwrap().unwrap();
}
