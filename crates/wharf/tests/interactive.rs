//! `run -it` on a real pseudo-terminal: the test plays the user's terminal (a pty pair made
//! with openpty), types into it and reads what the container prints.

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn read_until(master: &mut std::fs::File, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut acc = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLIN))
        {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => acc.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&acc).contains(needle) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&acc).into_owned()
}

#[test]
fn run_it_shell_on_a_real_tty() {
    let w = Wharf::new().with_busybox();
    let pty = nix::pty::openpty(
        Some(&nix::pty::Winsize {
            ws_row: 33,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None,
    )
    .expect("openpty");
    let slave: OwnedFd = pty.slave;
    let mut master = std::fs::File::from(pty.master);
    let mut cmd = w.command(&["run", "--rm", "-it", "busybox", "sh"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // the CLI sees a terminal on stdin: it switches it to raw mode and pumps it to the
    // container's own pty
    let mut child = cmd.spawn().expect("spawn");
    master
        .write_all(b"echo MARK-$((40+2)); tty; stty size; exit 5\n")
        .unwrap();
    let out = read_until(&mut master, "33 111", Duration::from_secs(10));
    let status = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("run -it did not exit; output so far: {out:?}");
            }
            // keep draining so the container never blocks on a full pty
            let _ = read_until(&mut master, "\u{0}", Duration::from_millis(50));
        }
    };
    assert!(out.contains("MARK-42"), "{out:?}");
    assert!(
        out.contains("/dev/pts/0"),
        "a pty inside the container: {out:?}"
    );
    assert!(
        out.contains("33 111"),
        "window size passed through: {out:?}"
    );
    assert_eq!(status.code(), Some(5));
}
