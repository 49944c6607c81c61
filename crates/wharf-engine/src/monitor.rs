//! (placeholder) The per-container monitor (`wharf __monitor`). OWNED BY: monitor helper.

/// Entry of the hidden `wharf __monitor` command; `args` are the arguments after it.
pub fn monitor_main(_args: &[std::ffi::OsString]) -> ! {
    eprintln!("wharf __monitor: not in this build yet");
    std::process::exit(125)
}
