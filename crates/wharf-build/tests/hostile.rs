//! Hostile input: garbage and mutated corpus files never panic, and size limits hold.
//! A deterministic mutation loop (no proptest): byte flips, insertions of the characters
//! the parser cares about, truncations and splices, through parse → plan → expand, and
//! the same for `.dockerignore` matching.

use std::time::{Duration, Instant};

use wharf_build::dockerfile::{DockerfileError, SyntaxError, MAX_DOCKERFILE_BYTES, MAX_LINE_BYTES};
use wharf_build::dockerignore::Dockerignore;
use wharf_build::expand::expand;
use wharf_build::shell::NoEnv;
use wharf_build::stages::{plan, BuildOptions};

/// xorshift64*: reproducible without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\\",
    b"`",
    b"\n",
    b"\r\n",
    b"\"",
    b"'",
    b"$",
    b"${",
    b"}",
    b"${a:-",
    b"${a:?",
    b"<<",
    b"<<-EOF",
    b"<<'EOF'",
    b"EOF\n",
    b"[",
    b"]",
    b"[\"a\",",
    b"--",
    b"--mount=",
    b"--from=",
    b"type=cache,target=/x,",
    b"=",
    b"#",
    b"# escape=`\n",
    b"# syntax=x\n",
    b"FROM ",
    b"AS ",
    b"COPY ",
    b"RUN ",
    b"ONBUILD ",
    b"HEALTHCHECK ",
    b"ARG ",
    b"ENV ",
    b" ",
    b"\t",
    b"\0",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\xc3\xa9",
];

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut out = Vec::new();
    for sub in [dir.clone(), dir.join("errors")] {
        for e in std::fs::read_dir(sub).expect("corpus").flatten() {
            if e.path().extension().is_some_and(|x| x == "Dockerfile") {
                out.push(std::fs::read(e.path()).expect("read"));
            }
        }
    }
    out.sort();
    out
}

fn opts() -> BuildOptions {
    let p = wharf_types::oci::Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    };
    BuildOptions {
        target: None,
        build_args: [("A".to_string(), "1".to_string())].into(),
        target_platform: p.clone(),
        build_platform: p,
    }
}

/// How many iterations the loops run: `WHARF_FUZZ_ITERS` for a longer hunt.
fn iters(default: usize) -> usize {
    std::env::var("WHARF_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => {
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, ins.iter().copied());
            }
            2 => v.truncate(at),
            3 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from + 1);
                v.splice(at..at, other[from..from + len].iter().copied());
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            _ => {}
        }
    }
    v
}

fn exercise(src: &[u8]) {
    let Ok(df) = wharf_build::parse(src) else {
        return;
    };
    let _ = plan(&df, &opts());
    for ins in &df.instructions {
        let _ = expand(ins, df.directives.escape, &NoEnv);
    }
    let _ = serde_json::to_string(&df);
}

#[test]
fn mutated_corpus_never_panics() {
    let corpus = corpus();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let started = Instant::now();
    let mut runs = 0;
    let limit = iters(20_000);
    let budget = Duration::from_secs(if limit > 20_000 { 3600 } else { 20 });
    while runs < limit && started.elapsed() < budget {
        let base = &corpus[rng.below(corpus.len())];
        let other = &corpus[rng.below(corpus.len())];
        exercise(&mutate(&mut rng, base, other));
        runs += 1;
    }
    assert!(runs > 1000, "only {runs} runs");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..iters(2000) {
        let len = rng.below(400);
        let v: Vec<u8> = (0..len)
            .map(|_| {
                let pick = rng.below(4);
                if pick == 0 {
                    rng.next() as u8
                } else {
                    let alphabet = b"FROM RUN \\`\"'${}:-+?#%/<<EOF\n[]=,--";
                    alphabet[rng.below(alphabet.len())]
                }
            })
            .collect();
        exercise(&v);
    }
}

#[test]
fn dockerignore_garbage_never_panics() {
    let mut rng = Rng(7);
    let alphabet = b"ab/*?[]^-!\\.# \n";
    for _ in 0..iters(20_000) {
        let file: String = (0..rng.below(40))
            .map(|_| alphabet[rng.below(alphabet.len())] as char)
            .collect();
        if let Ok(ig) = Dockerignore::parse(&file) {
            for _ in 0..5 {
                let path: String = (0..rng.below(20))
                    .map(|_| b"ab/.*["[rng.below(6)] as char)
                    .collect();
                let _ = ig.excluded(&path);
                // pruning is safe: a directory said to hold nothing included holds nothing
                // included
                let clean = wharf_build::dockerignore::clean(&path);
                let clean = clean.trim_start_matches('/');
                if clean == "." || clean.starts_with("..") {
                    continue;
                }
                let parts: Vec<&str> = clean.split('/').collect();
                for i in 1..parts.len() {
                    let dir = parts[..i].join("/");
                    if !ig.may_include_under(&dir) {
                        assert!(
                            ig.excluded(&parts.join("/")),
                            "{dir:?} pruned but {path:?} included by {file:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_dockerfile_over_10_mib_is_refused() {
    let src = format!(
        "FROM busybox\n{}",
        "# pad\n".repeat(MAX_DOCKERFILE_BYTES / 6 + 1)
    );
    let e = wharf_build::parse(src.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        DockerfileError::TooLarge {
            size: src.len(),
            limit: MAX_DOCKERFILE_BYTES
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "dockerfile is {} bytes, over the limit of 10485760 bytes",
            src.len()
        )
    );
}

#[test]
fn a_line_over_1_mib_is_refused_with_its_line() {
    let src = format!("FROM busybox\nRUN echo {}\n", "a".repeat(MAX_LINE_BYTES));
    let e = wharf_build::parse(src.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            DockerfileError::Syntax {
                line: 2,
                error: SyntaxError::LineTooLong { .. },
                ..
            }
        ),
        "{e}"
    );
    // continuations cannot build a longer logical line either
    let chunk = format!("{} \\\n", "b".repeat(100_000));
    let src = format!("FROM busybox\nRUN \\\n{}end\n", chunk.repeat(12));
    let e = wharf_build::parse(src.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            DockerfileError::Syntax {
                line: 2,
                error: SyntaxError::LineTooLong { .. },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn big_but_legal_inputs_stay_fast() {
    // many instructions, many heredocs, long words: linear work
    let mut src = String::from("FROM busybox AS s0\nFROM busybox AS s1\n");
    for i in 0..20_000 {
        src.push_str(&format!(
            "COPY --from=s0 <<F{i} /f{i}\nbody ${{X:-{i}}}\nF{i}\n"
        ));
    }
    src.push_str(&format!("RUN echo {}\n", "${A:-x}".repeat(100_000)));
    let started = Instant::now();
    let df = wharf_build::parse(src.as_bytes()).expect("parses");
    let p = plan(&df, &opts()).expect("plans");
    for ins in &df.instructions {
        expand(ins, '\\', &NoEnv).expect("expands");
    }
    assert_eq!(p.stages[1].instructions.len(), 20_001);
    assert_eq!(p.order, [0, 1]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn deep_onbuild_chains_do_not_recurse() {
    let src = format!("FROM busybox\n{}RUN x\n", "ONBUILD ".repeat(120_000));
    let e = wharf_build::parse(src.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
}

#[test]
fn deep_json_and_substitutions_are_bounded() {
    // nested arrays are not a string array: serde_json's depth limit, then shell form
    let src = format!("FROM busybox\nCMD {}\n", "[".repeat(100_000));
    let df = wharf_build::parse(src.as_bytes()).expect("shell form");
    assert_eq!(df.instructions.len(), 2);
    let src = format!(
        "FROM busybox\nWORKDIR {}{}\n",
        "${a:-".repeat(50_000),
        "}".repeat(50_000)
    );
    let df = wharf_build::parse(src.as_bytes()).expect("parses");
    let e = expand(&df.instructions[1], '\\', &NoEnv).unwrap_err();
    assert!(
        e.to_string().contains("nested deeper than 64 levels"),
        "{e}"
    );
}

#[test]
fn errors_point_at_line_and_column() {
    let e = wharf_build::parse_str("FROM busybox\n\n   BOGUS x\n").unwrap_err();
    assert_eq!(
        e,
        DockerfileError::Syntax {
            line: 3,
            column: Some(4),
            error: SyntaxError::UnknownInstruction("BOGUS".into())
        }
    );
    let e = wharf_build::parse_str("FROM busybox\nCOPY --link --nope=1 a b\n").unwrap_err();
    assert_eq!(
        e,
        DockerfileError::Syntax {
            line: 2,
            column: Some(13),
            error: SyntaxError::UnknownFlag("nope".into())
        }
    );
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: unknown flag: nope"
    );
    use wharf_types::error::HasKind;
    assert_eq!(e.kind(), wharf_types::ErrorKind::InvalidArgument);
}
