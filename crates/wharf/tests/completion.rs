//! `completion bash|zsh|fish` and the manual pages come from the clap definitions: they name
//! the commands and flags the binary takes, under the name it was invoked as.

mod common;

use common::{stderr, stdout, Wharf};
use std::process::Command;

/// Bash completes `wharf ru` to `run`, and `wharf run --pub` to `--publish`, through the
/// generated script loaded into a real bash.
#[test]
fn bash_completion_completes_commands_and_flags() {
    let w = Wharf::new();
    let script = w.ok(&["completion", "bash"]);
    let dir = common::tmp_dir("compl");
    let file = dir.path().join("wharf.bash");
    std::fs::write(&file, script).unwrap();
    let complete = |words: &[&str]| -> String {
        let line = words.join(" ");
        let prog = format!(
            "source {f}; COMP_WORDS=({line}); COMP_CWORD={cw}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             _wharf wharf '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            f = file.display(),
            cw = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let o = Command::new("bash").arg("-c").arg(prog).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let cmds = complete(&["wharf", "ru"]);
    assert!(cmds.lines().any(|l| l == "run"), "{cmds}");
    assert!(!cmds.lines().any(|l| l == "ps"), "{cmds}");
    let flags = complete(&["wharf", "run", "--pub"]);
    assert!(flags.lines().any(|l| l == "--publish"), "{flags}");
    assert!(flags.lines().any(|l| l == "--publish-all"), "{flags}");
    // a bad shell is clap's usage error, exit 125 as docker's flag errors
    let o = w.run(&["completion", "tcsh"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
}

#[test]
fn zsh_and_fish_scripts_name_the_commands() {
    let w = Wharf::new();
    let zsh = w.ok(&["completion", "zsh"]);
    assert!(
        zsh.starts_with("#compdef wharf"),
        "{}",
        &zsh[..zsh.len().min(200)]
    );
    assert!(
        zsh.contains("'--publish=[") || zsh.contains("--publish"),
        "zsh lacks --publish"
    );
    let fish = w.ok(&["completion", "fish"]);
    assert!(fish.contains("complete -c wharf"), "fish script");
    assert!(fish.contains("-a \"run\""), "fish lacks run");
}

/// Through a `docker` symlink the script completes `docker`.
#[test]
fn completion_under_the_docker_name() {
    let dir = common::tmp_dir("compl-docker");
    let link = dir.path().join("docker");
    std::os::unix::fs::symlink(Wharf::bin(), &link).unwrap();
    let o = Command::new(&link)
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("-F _docker") && s.contains("_docker()"),
        "{}",
        &s[..s.len().min(300)]
    );
    assert!(!s.contains("_wharf"));
}

/// `wharf man DIR` writes a page per visible command; each is valid roff that man renders.
#[test]
fn manual_pages_for_every_command() {
    let w = Wharf::new();
    let dir = common::tmp_dir("man");
    let out = dir.path().join("man1");
    let o = w.run(&["man", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for page in [
        "wharf.1",
        "wharf-run.1",
        "wharf-network-create.1",
        "wharf-image-ls.1",
    ] {
        let p = out.join(page);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is not roff"
        );
    }
    let run = std::fs::read_to_string(out.join("wharf-run.1")).unwrap();
    assert!(run.contains("publish"), "run page lacks --publish");
    // hidden commands have no page
    assert!(!out.join("wharf-man.1").exists());
}
