//! wharf's builder front end (issue 15, first slice): everything between a Dockerfile's
//! bytes and a build plan, with no I/O.
//!
//! - [`dockerfile`]: directives, lexer and parser with line spans → typed [`Instruction`]s,
//!   in docker's words when it refuses;
//! - [`shell`]: docker's variable substitution and word splitting (BuildKit's `shell.Lex`);
//! - [`expand`]: which parts of each instruction the builder expands, with which variables;
//! - [`stages`]: the build plan: stages, `--target`, ARG scoping and `--build-arg`, stage
//!   dependencies in order, cycles refused;
//! - [`dockerignore`]: `.dockerignore` patterns as docker matches them;
//! - [`glob`]: COPY/ADD source wildcards (Go's `filepath.Match`).
//!
//! What it must not do: read files, run anything, or depend on the store or the runtime
//! (the executor slice reaches those through engine services).

pub mod dockerfile;
pub mod dockerignore;
pub mod expand;
pub mod glob;
pub mod shell;
pub mod stages;

pub use dockerfile::{parse, parse_str, Command, Dockerfile, DockerfileError, Instruction};
