//! The Dockerfile front end: bytes → [`Dockerfile`] (directives, then one typed
//! [`Instruction`] per logical line, each with its line span), in docker's words when it
//! refuses. Two passes, as BuildKit's: `lines` turns physical lines into nodes (directives,
//! comments, continuations, heredocs, flags, JSON vs shell form), `instructions` types each
//! node (flag sets, argument counts, RUN mounts, HEALTHCHECK options, COPY/ADD sources).
//!
//! What it must not do: I/O, variable expansion (that needs the environment at each step:
//! [`crate::expand`]), or anything unbounded: the file is capped at [`MAX_DOCKERFILE_BYTES`]
//! and each physical line at [`MAX_LINE_BYTES`].

mod errors;
mod flags;
mod instructions;
mod lines;
mod mount;
mod types;
mod words;

pub use errors::{DockerfileError, SyntaxError};
pub use types::*;

/// A Dockerfile larger than this is refused before it is looked at.
pub const MAX_DOCKERFILE_BYTES: usize = 10 << 20;
/// A physical line longer than this is refused.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Parses a Dockerfile. The bytes must be UTF-8 (a leading BOM is dropped); `\r\n` line
/// ends are accepted.
pub fn parse(src: &[u8]) -> Result<Dockerfile, DockerfileError> {
    if src.len() > MAX_DOCKERFILE_BYTES {
        return Err(DockerfileError::TooLarge {
            size: src.len(),
            limit: MAX_DOCKERFILE_BYTES,
        });
    }
    let parsed = lines::parse_nodes(src)?;
    let mut out = Vec::with_capacity(parsed.nodes.len());
    let mut warnings = parsed.warnings;
    for node in &parsed.nodes {
        let ins = instructions::type_node(node, &mut warnings).map_err(|(error, column)| {
            DockerfileError::Syntax {
                line: node.start_line,
                column,
                error,
            }
        })?;
        out.push(ins);
    }
    Ok(Dockerfile {
        directives: parsed.directives,
        instructions: out,
        warnings,
    })
}

/// Parses a Dockerfile given as text.
pub fn parse_str(src: &str) -> Result<Dockerfile, DockerfileError> {
    parse(src.as_bytes())
}
