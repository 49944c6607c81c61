//! `cp`: `CONTAINER:PATH` / host path parsing (docker's rules: a `:` before any `/` names a
//! container; a path starting with `/` or `.` is always local). The copy is
//! `wharf_engine::cp`.

use crate::cli::{Cli, CpArgs};
use anyhow::bail;
use wharf_engine::cp::{CpEndpoint, CpOptions};

fn endpoint(arg: &str) -> CpEndpoint {
    if arg.starts_with('/') || arg.starts_with('.') {
        return CpEndpoint::Host(arg.into());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => CpEndpoint::Container {
            container: c.to_string(),
            path: if p.is_empty() {
                "/".into()
            } else {
                p.to_string()
            },
        },
        _ => CpEndpoint::Host(arg.into()),
    }
}

pub fn cp(cli: &Cli, a: &CpArgs) -> anyhow::Result<i32> {
    let src = endpoint(&a.source);
    let dst = endpoint(&a.destination);
    match (&src, &dst) {
        (CpEndpoint::Host(_), CpEndpoint::Host(_)) => {
            bail!("must specify at least one container source")
        }
        (CpEndpoint::Container { .. }, CpEndpoint::Container { .. }) => {
            bail!("copying between containers is not supported")
        }
        (CpEndpoint::Host(h), _) | (_, CpEndpoint::Host(h)) if h.as_os_str() == "-" => {
            bail!("cp with '-' (tar streams) is not supported yet")
        }
        _ => {}
    }
    let engine = super::super::open_engine(cli)?;
    engine.copy(
        &src,
        &dst,
        CpOptions {
            archive: a.archive,
            follow_link: a.follow_link,
            no_replace_non_dir: false,
        },
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("web:/etc/hostname"),
            CpEndpoint::Container {
                container: "web".into(),
                path: "/etc/hostname".into()
            }
        );
        assert_eq!(endpoint("./a:b"), CpEndpoint::Host("./a:b".into()));
        assert_eq!(endpoint("/x:y"), CpEndpoint::Host("/x:y".into()));
        assert_eq!(endpoint("-"), CpEndpoint::Host("-".into()));
    }
}
