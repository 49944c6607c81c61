//! Container services through typed requests: `rename` (docker's checks, the `rename` event)
//! and `logs` (the engine finds the container's json-file log and reads it into the caller's
//! sink, stdout and stderr apart; bad times and unknown containers refused by kind).
#![allow(clippy::unwrap_used)]

use wharf_engine::containers::{LogsError, LogsRequest, Stream};
use wharf_engine::create::CreateRequest;
use wharf_engine::events::EventQuery;
use wharf_engine::{Engine, EngineOptions};
use wharf_types::error::{ErrorKind, HasKind};

fn engine_with_container(dir: &tempfile::TempDir, name: &str) -> (Engine, String) {
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
    let e = Engine::open(EngineOptions {
        root: dir.path().join("root"),
        run_root: dir.path().join("run"),
        debug: false,
    })
    .unwrap();
    let rec = e
        .create_container(CreateRequest {
            image: "tiny".into(),
            name: Some(name.into()),
            args: vec!["/hello".into()],
            ..Default::default()
        })
        .unwrap()
        .record;
    (e, rec.id.to_string())
}

#[test]
fn rename_checks_and_event() {
    let dir = tempfile::tempdir().unwrap();
    let (e, id) = engine_with_container(&dir, "old");
    let same = e.rename_container("old", "/old").unwrap_err();
    assert_eq!(same.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        same.to_string(),
        "Renaming a container with the same name as its current name"
    );
    assert_eq!(
        e.rename_container("old", "bad/name").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        e.rename_container("nope", "x1").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    e.rename_container(&id[..12], "/new").unwrap();
    assert_eq!(e.container("new").unwrap().record.id.as_str(), id);
    assert_eq!(e.container("old").unwrap_err().kind(), ErrorKind::NotFound);
    let evs = e
        .query_events(
            &EventQuery {
                filters: vec!["event=rename".into()],
                ..Default::default()
            }
            .parse()
            .unwrap(),
        )
        .unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].actor.id, id);
    let attr = |k: &str| evs[0].actor.attributes.get(k).cloned().unwrap_or_default();
    assert_eq!(attr("name"), "new");
    assert_eq!(attr("oldName"), "/old");
}

#[test]
fn logs_read_the_containers_json_file_into_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let (e, id) = engine_with_container(&dir, "talker");
    let read = |req: &LogsRequest| {
        let mut got: Vec<(bool, String)> = Vec::new();
        let r = e.logs(req, &mut |s, b| {
            got.push((s == Stream::Stdout, String::from_utf8_lossy(b).into_owned()));
            Ok(())
        });
        r.map(|()| got)
    };
    let req = LogsRequest {
        container: "talker".into(),
        ..Default::default()
    };
    // never started: no log yet, no output
    assert!(read(&req).unwrap().is_empty());
    let log = dir
        .path()
        .join("root/containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    std::fs::write(
        &log,
        concat!(
            r#"{"log":"one\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}"#,
            "\n",
            r#"{"log":"two\n","stream":"stderr","time":"2024-01-01T00:00:01.000000000Z"}"#,
            "\n",
            r#"{"log":"three\n","stream":"stdout","time":"2024-01-01T00:00:02.000000000Z"}"#,
            "\n",
        ),
    )
    .unwrap();
    assert_eq!(
        read(&req).unwrap(),
        [
            (true, "one\n".to_string()),
            (false, "two\n".to_string()),
            (true, "three\n".to_string())
        ]
    );
    let tail = LogsRequest {
        tail: Some("1".into()),
        timestamps: true,
        ..req.clone()
    };
    assert_eq!(
        read(&tail).unwrap(),
        [(true, "2024-01-01T00:00:02.000000000Z three\n".to_string())]
    );
    let since = LogsRequest {
        since: Some("2024-01-01T00:00:01Z".into()),
        tail: Some("all".into()),
        ..req.clone()
    };
    assert_eq!(read(&since).unwrap().len(), 2);

    let bad = read(&LogsRequest {
        since: Some("yesterday".into()),
        ..req.clone()
    })
    .unwrap_err();
    assert!(
        matches!(bad, LogsError::InvalidTime { what: "since", .. }),
        "{bad:?}"
    );
    assert_eq!(bad.kind(), ErrorKind::InvalidArgument);
    let missing = read(&LogsRequest {
        container: "nope".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    // a closed pipe is the sink's, said apart
    let piped = e
        .logs(&req, &mut |_, _| {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        })
        .unwrap_err();
    assert!(piped.is_broken_pipe(), "{piped:?}");
}
