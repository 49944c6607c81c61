#!/usr/bin/env bash
# Sourced by quickstart.sh and .ci/run: makes a Rust toolchain (cargo >= 1.80, rustfmt, clippy)
# available. Debian 12's own cargo is too old, so a missing one is installed with rustup
# (minimal profile) from static.rust-lang.org into ~/.cargo.
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl ca-certificates >/dev/null; }
  # rustup-init must keep its name: it picks its role from argv[0]
  initdir=$(mktemp -d)
  curl -sSf --retry 3 -o "$initdir/rustup-init" \
    https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init
  chmod +x "$initdir/rustup-init"
  "$initdir/rustup-init" -y -q --profile minimal -c rustfmt,clippy >/dev/null
  rm -rf "$initdir"
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "could not install a Rust toolchain" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
