//! The build plan and which parts of each instruction expand.

use std::collections::BTreeMap;

use wharf_build::dockerfile::Command;
use wharf_build::expand::expand;
use wharf_build::stages::{plan, Base, BuildOptions, Plan, PlanError, Source};
use wharf_types::oci::Platform;

fn opts(target: Option<&str>, args: &[(&str, &str)]) -> BuildOptions {
    BuildOptions {
        target: target.map(str::to_string),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target_platform: Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        },
        build_platform: Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        },
    }
}

fn plan_of(src: &str, o: &BuildOptions) -> Result<Plan, PlanError> {
    plan(&wharf_build::parse_str(src).expect("parses"), o)
}

#[test]
fn global_args_reach_from_lines_only() {
    let src = "ARG REPO=library\nARG TAG=1.36\nARG FULL=$REPO/busybox:$TAG\n\
               FROM --platform=$BUILDPLATFORM $FULL AS build\n\
               FROM ${REPO}/app:${TAG:-latest}-$TARGETARCH$TARGETVARIANT\n";
    let p = plan_of(src, &opts(None, &[("TAG", "1.37")])).unwrap();
    assert_eq!(
        p.global_args,
        [
            ("REPO".to_string(), Some("library".to_string())),
            ("TAG".to_string(), Some("1.37".to_string())),
            ("FULL".to_string(), Some("library/busybox:1.37".to_string())),
        ]
    );
    assert_eq!(p.stages[0].base, Base::Image("library/busybox:1.37".into()));
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        p.stages[1].base,
        Base::Image("library/app:1.37-arm64v8".into())
    );
    // only the target is built by default; stage 0 is not needed by it
    assert_eq!(p.order, [1]);
    assert!(p.unused_build_args.is_empty());
}

#[test]
fn stage_arg_scoping_and_build_args() {
    let p = plan_of(
        "ARG V=global\nFROM busybox\nARG V\nARG D=default\nARG N\n",
        &opts(None, &[("D", "given")]),
    )
    .unwrap();
    // ARG V re-declared without a default takes the global value
    assert_eq!(p.stage_arg("V", None).as_deref(), Some("global"));
    // a build arg beats a default
    assert_eq!(p.stage_arg("D", Some("default")).as_deref(), Some("given"));
    // declared with neither: no value
    assert_eq!(p.stage_arg("N", None), None);
    // the platform args are there once declared
    assert_eq!(
        p.stage_arg("TARGETPLATFORM", None).as_deref(),
        Some("linux/arm64/v8")
    );
    assert_eq!(p.stage_arg("BUILDOS", None).as_deref(), Some("linux"));
}

#[test]
fn unused_build_args_are_reported_but_proxies_are_not() {
    let src = "ARG G\nFROM busybox AS a\nARG USED_IN_A\nFROM busybox AS b\nARG USED_IN_B\n";
    let o = opts(
        Some("b"),
        &[
            ("G", "1"),
            ("USED_IN_A", "1"),
            ("USED_IN_B", "1"),
            ("HTTP_PROXY", "http://proxy:3128"),
            ("no_proxy", "localhost"),
            ("NOBODY", "1"),
            ("SOURCE_DATE_EPOCH", "0"),
        ],
    );
    let p = plan_of(src, &o).unwrap();
    // stage a is not built for target b, so its ARG does not consume
    assert_eq!(p.unused_build_args, ["NOBODY", "USED_IN_A"]);
    assert_eq!(
        p.implicit_run_args(),
        [
            ("HTTP_PROXY".to_string(), "http://proxy:3128".to_string()),
            ("no_proxy".to_string(), "localhost".to_string())
        ]
    );
}

#[test]
fn dependencies_in_order_and_unneeded_stages_skipped() {
    let src = "\
FROM busybox AS base
FROM base AS deps
RUN --mount=type=bind,from=tools,target=/t true
FROM busybox AS tools
FROM busybox AS unused
FROM scratch AS final
ARG FROM_STAGE=deps
COPY --from=$FROM_STAGE /a /a
COPY --from=0 /b /b
COPY --from=alpine:3 /c /c
COPY --from=TOOLS /d /d
";
    let p = plan_of(src, &opts(None, &[])).unwrap();
    assert_eq!(p.target, 4);
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(p.stages[4].base, Base::Scratch);
    assert_eq!(
        p.stages[4].sources,
        [
            Source::Stage(0),
            Source::Stage(1),
            Source::Stage(2),
            Source::Image("alpine:3".into())
        ]
    );
    assert_eq!(p.stages[1].sources, [Source::Stage(2)]);
    // each stage after what it needs; "unused" (3) left out; target last
    assert_eq!(p.order, [0, 2, 1, 4]);

    let p = plan_of(src, &opts(Some("Deps"), &[])).unwrap();
    assert_eq!(p.order, [0, 2, 1]);
    // a build arg changes where --from points
    let p = plan_of(src, &opts(None, &[("FROM_STAGE", "unused")])).unwrap();
    assert_eq!(p.order, [0, 2, 3, 4]);
}

#[test]
fn from_a_later_stage_name_is_an_image() {
    // FROM sees only earlier stages: "later" here is an image, not stage 1
    let p = plan_of(
        "FROM later AS first\nFROM busybox AS later\n",
        &opts(None, &[]),
    )
    .unwrap();
    assert_eq!(p.stages[0].base, Base::Image("later".into()));
    // FROM its own name is an image too
    let p = plan_of("FROM x AS x\n", &opts(None, &[])).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("x".into()));
}

#[test]
fn target_errors() {
    let e = plan_of("FROM busybox AS a\n", &opts(Some("nope"), &[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to reach build target nope in Dockerfile"
    );
    use wharf_types::error::HasKind;
    assert_eq!(e.kind(), wharf_types::ErrorKind::NotFound);
}

#[test]
fn cycles_are_refused_wherever_they_are_needed() {
    let src = "FROM busybox AS a\nCOPY --from=c / /\nFROM busybox AS b\nFROM a AS c\n";
    let e = plan_of(src, &opts(None, &[])).unwrap_err();
    assert!(matches!(e, PlanError::Cycle(_)), "{e}");
    // a cycle among stages the target does not need does not matter
    let p = plan_of(src, &opts(Some("b"), &[])).unwrap();
    assert_eq!(p.order, [1]);
}

#[test]
fn long_chains_do_not_recurse() {
    let mut src = String::from("FROM busybox AS s0\n");
    for i in 1..5000 {
        src.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    let p = plan_of(&src, &opts(None, &[])).unwrap();
    assert_eq!(p.order.len(), 5000);
    assert_eq!(p.order.first(), Some(&0));
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn which_instructions_expand_which_parts() {
    let src = r#"FROM busybox
ENV $K=$V "$K"="quoted $V" legacy=${V:-x}
ARG $K=${V}
LABEL "$K"="$V"
EXPOSE $PORT 53/udp
VOLUME $DIR "/other"
USER ${U}:$G
WORKDIR /srv/$DIR
STOPSIGNAL $SIG
COPY --from=$STAGE --chown=$U:$G --chmod=$MODE --exclude=*.$EXT $DIR/a ${DIR}/b /dst/$K/
ADD --checksum=$SUM $DIR/x.tar /
RUN --mount=type=cache,target=$DIR,id=$K echo $V
CMD echo $V
ENTRYPOINT ["echo", "$V"]
HEALTHCHECK CMD echo $V
SHELL ["/bin/$SHELLNAME", "-c"]
ONBUILD RUN echo $V
MAINTAINER $V
"#;
    let df = wharf_build::parse_str(src).unwrap();
    let vars = env(&[
        ("K", "key"),
        ("V", "val"),
        ("PORT", "8080/tcp 9090"),
        ("DIR", "/data"),
        ("U", "1000"),
        ("G", "100"),
        ("SIG", "SIGINT"),
        ("STAGE", "build"),
        ("MODE", "0755"),
        ("EXT", "md"),
        ("SUM", "sha256:00"),
        ("SHELLNAME", "bash"),
    ]);
    let out: Vec<Command> = df
        .instructions
        .iter()
        .map(|i| expand(i, '\\', &vars).unwrap().command)
        .collect();
    let json = serde_json::to_value(&out).unwrap();
    let get = |i: usize| json[i].clone();
    assert_eq!(
        get(1)["pairs"],
        serde_json::json!([
            {"key": "key", "value": "val"},
            {"key": "key", "value": "quoted val"},
            {"key": "legacy", "value": "val"}
        ])
    );
    assert_eq!(
        get(2)["args"],
        serde_json::json!([{"name": "key", "default": "val"}])
    );
    assert_eq!(
        get(3)["pairs"],
        serde_json::json!([{"key": "key", "value": "val"}])
    );
    assert_eq!(
        get(4)["ports"],
        serde_json::json!(["8080/tcp", "9090", "53/udp"])
    );
    assert_eq!(get(5)["paths"], serde_json::json!(["/data", "/other"]));
    assert_eq!(get(6)["user"], "1000:100");
    assert_eq!(get(7)["path"], "/srv//data");
    assert_eq!(get(8)["signal"], "SIGINT");
    let copy = get(9);
    assert_eq!(copy["from"], "build");
    assert_eq!(copy["chown"], "1000:100");
    assert_eq!(copy["chmod"], "0755");
    assert_eq!(copy["exclude"], serde_json::json!(["*.md"]));
    assert_eq!(copy["sources"], serde_json::json!(["/data/a", "/data/b"]));
    assert_eq!(copy["dest"], "/dst/key/");
    assert_eq!(get(10)["checksum"], "sha256:00");
    assert_eq!(get(10)["sources"], serde_json::json!(["/data/x.tar"]));
    assert_eq!(get(11)["mounts"][0]["target"], "/data");
    assert_eq!(get(11)["mounts"][0]["id"], "key");
    // not expanded: the shell (or a later build) does it
    assert_eq!(get(11)["command"]["args"], serde_json::json!(["echo $V"]));
    assert_eq!(get(12)["args"], serde_json::json!(["echo $V"]));
    assert_eq!(get(13)["args"], serde_json::json!(["echo", "$V"]));
    assert_eq!(get(14)["test"], serde_json::json!(["CMD-SHELL", "echo $V"]));
    assert_eq!(
        get(15)["shell"],
        serde_json::json!(["/bin/$SHELLNAME", "-c"])
    );
    assert_eq!(get(16)["expression"], "RUN echo $V");
    assert_eq!(get(17)["name"], "$V");
}

#[test]
fn expansion_errors_name_the_line() {
    let df = wharf_build::parse_str("FROM busybox\n\nWORKDIR ${DIR\n").unwrap();
    let e = expand(&df.instructions[1], '\\', &env(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 3: failed to process \"${DIR\": syntax error: missing '}'"
    );
}

#[test]
fn escape_directive_applies_to_expansion() {
    let df = wharf_build::parse_str("# escape=`\nFROM busybox\nWORKDIR C:\\dir\\`$X\n").unwrap();
    let e = expand(
        &df.instructions[1],
        df.directives.escape,
        &env(&[("X", "x")]),
    )
    .unwrap();
    match e.command {
        Command::Workdir { path } => assert_eq!(path, "C:\\dir\\$X"),
        other => panic!("{other:?}"),
    }
}
