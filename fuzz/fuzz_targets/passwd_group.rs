//! The container's /etc/passwd and /etc/group as init reads them (image-controlled) with a
//! user spec and --group-add values: must never panic, and whatever it resolves must be an
//! id in docker's range (0..=2^31-1; `(uid_t)-1` would mean "unchanged", i.e. root).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // layout: user \0 group-add(comma-separated) \0 passwd \0 group
    let mut parts = text.splitn(4, '\0');
    let user = parts.next().unwrap_or_default();
    let adds: Vec<String> = parts
        .next()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let passwd = parts.next().unwrap_or_default();
    let group = parts.next().unwrap_or_default();
    if let Ok((uid, gid, groups)) =
        wharf_runtime::init::user::fuzz_resolve(user, &adds, passwd, group)
    {
        const MAX: u32 = i32::MAX as u32;
        assert!(uid <= MAX && gid <= MAX, "{uid}:{gid}");
        assert!(groups.iter().all(|g| *g <= MAX), "{groups:?}");
    }
});
