//! (placeholder) `exec`: entering a running container. OWNED BY: exec helper.

/// Entry of the hidden `wharf __exec` command.
pub fn exec_main() -> ! {
    eprintln!("wharf __exec: not in this build yet");
    std::process::exit(125)
}
