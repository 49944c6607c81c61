//! Remote `exec`: `POST /containers/{id}/exec`, a hijacked `POST /exec/{id}/start` (or a
//! detached one with `-d`), the exit code from `GET /exec/{id}/json`.

use super::client::{enc, Client};
use super::http::Request;
use super::RemoteError;
use crate::cli::ExecArgs;
use serde_json::json;
use std::io::IsTerminal;

pub fn exec(c: &Client, a: &ExecArgs) -> anyhow::Result<i32> {
    if let Some(code) = crate::cmd::check_tty(a.interactive && !a.detach, a.tty) {
        return Ok(code);
    }
    let (container, cmd) = a
        .container_and_command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("\"exec\" requires at least 2 arguments"))?;
    // docker's CLI reads --env-file and a bare -e KEY on this side
    let env = wharf_engine::validate::env_from_flags(&a.env_file, &a.env)?;
    let attach = !a.detach;
    let body = json!({
        "AttachStdin": attach && a.interactive,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Tty": a.tty,
        "Env": env,
        "Cmd": cmd,
        "User": a.user.clone().unwrap_or_default(),
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Detach": a.detach,
    });
    let v =
        c.json(Request::new("POST", format!("/containers/{}/exec", enc(container))).json(&body))?;
    let id = v["Id"]
        .as_str()
        .ok_or(RemoteError::Shape {
            what: "an exec create answer without Id",
        })?
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    if a.detach {
        c.json(Request::new("POST", format!("/exec/{}/start", enc(&id))).json(&start))?;
        return Ok(0);
    }
    let mut req = Request::new("POST", format!("/exec/{}/start", enc(&id)))
        .json(&start)
        .stream();
    req.upgrade = true;
    let (reader, writer) = c.send(req)?.into_hijacked()?;
    if a.tty && std::io::stdout().is_terminal() {
        super::run::follow_size(c, format!("/exec/{}/resize", enc(&id)));
    }
    super::run::pump(reader, writer, a.tty, a.interactive)?;
    let info = c.get(format!("/exec/{}/json", enc(&id)))?;
    Ok(info["ExitCode"]
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(0))
}
