//! Reads json-file logs for `wharf logs`: rotated files oldest first, `--tail` found by
//! scanning backwards from the end (a 1 GB log is not parsed from the start), `--since`/
//! `--until` filters, `-t`/`--details` prefixes, and `-f` by polling (every 150 ms) that
//! survives rotation (rename or truncation) and ends once the container is gone and the file
//! drained. Torn or foreign lines are skipped. Memory is bounded by [`MAX_RECORD`].

use crate::jsonfile::{decode_record, rotated, Record};
use crate::{LogContext, LogError, ReadOptions, Stream};
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wharf_types::container::LogConfig;

/// Longest json-file line the reader accepts; longer lines are skipped.
const MAX_RECORD: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const POLL: Duration = Duration::from_millis(150);
/// Rotated files probed at most (`.1` … `.MAX_ROTATED`).
const MAX_ROTATED: u32 = 10_000;

type Out<'a> = &'a mut dyn FnMut(Stream, &[u8]) -> std::io::Result<()>;

/// Reads json-file logs (incl. rotated files); see the crate docs. Other drivers →
/// [`LogError::ReadingUnsupported`]. A container without a log file yet has no output.
pub fn read(
    cfg: &LogConfig,
    ctx: &LogContext,
    opts: &ReadOptions,
    still_running: &mut dyn FnMut() -> bool,
    out: Out<'_>,
) -> Result<(), LogError> {
    if !(cfg.driver.is_empty() || cfg.driver == "json-file") {
        return Err(LogError::ReadingUnsupported);
    }
    let live = crate::json_log_path(&ctx.dir, &ctx.container_id);
    let mut files: Vec<PathBuf> = Vec::new();
    let mut n = 1;
    while n <= MAX_ROTATED && rotated(&live, n).exists() {
        files.push(rotated(&live, n));
        n += 1;
    }
    files.reverse();
    files.push(live.clone());

    // Where to start: (index into files, byte offset).
    let (mut idx, mut offset) = match opts.tail {
        None => (0, 0),
        Some(want) => tail_start(&files, want)?,
    };
    let mut r = Reader::new(opts, out);
    while idx + 1 < files.len() {
        if let Ok(mut f) = File::open(&files[idx]) {
            if r.drain(&mut f, offset, &files[idx], false)? {
                return Ok(());
            }
        }
        idx += 1;
        offset = 0;
    }
    let mut cur = match File::open(&live) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(source) => return Err(LogError::Io { path: live, source }),
    };
    let mut pos = offset;
    if let Some(f) = cur.as_mut() {
        if r.drain(f, pos, &live, false)? {
            return Ok(());
        }
        pos = r.pos;
    }
    if !opts.follow {
        return Ok(());
    }
    loop {
        let running = still_running();
        // Rotation: the path now names another file (renamed away, or removed).
        let path_ino = std::fs::metadata(&live).ok().map(|m| (m.dev(), m.ino()));
        let cur_ino = cur
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        if path_ino != cur_ino {
            if let Some(f) = cur.as_mut() {
                if r.drain(f, pos, &live, true)? {
                    return Ok(());
                }
            }
            // Files rotated after ours (several rotations between two polls): our file is
            // now `.k`, so `.k-1` … `.1` are newer; if it is gone, every rotated file is.
            let mut newer = Vec::new();
            for n in 1..=MAX_ROTATED {
                let p = rotated(&live, n);
                let Ok(m) = std::fs::metadata(&p) else { break };
                if Some((m.dev(), m.ino())) == cur_ino {
                    break;
                }
                newer.push(p);
            }
            for p in newer.iter().rev() {
                if let Ok(mut f) = File::open(p) {
                    if r.drain(&mut f, 0, p, false)? {
                        return Ok(());
                    }
                }
            }
            cur = File::open(&live).ok();
            pos = 0;
            if let Some(f) = cur.as_mut() {
                if r.drain(f, 0, &live, false)? {
                    return Ok(());
                }
                pos = r.pos;
            }
        }
        if let Some(f) = cur.as_mut() {
            // Truncation (max-file=1): start over.
            let resume = f.metadata().map(|m| m.len()).unwrap_or(0) >= pos;
            if !resume {
                pos = 0;
            }
            if r.drain(f, pos, &live, resume)? {
                return Ok(());
            }
            pos = r.pos;
        }
        if !running {
            return Ok(());
        }
        if opts.until.is_some_and(|u| SystemTime::now() > u) {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

struct Reader<'o, 'a> {
    opts: &'a ReadOptions,
    out: Out<'o>,
    /// Bytes of an incomplete last line (kept across polls when following).
    pending: Vec<u8>,
    /// Offset up to which the current file has been consumed (incl. `pending`).
    pos: u64,
    line: Vec<u8>,
    skipping: bool,
}

impl<'o, 'a> Reader<'o, 'a> {
    fn new(opts: &'a ReadOptions, out: Out<'o>) -> Self {
        Reader {
            opts,
            out,
            pending: Vec::new(),
            pos: 0,
            line: Vec::new(),
            skipping: false,
        }
    }

    /// Reads `f` from `from` to EOF, emitting complete records. Returns true when `--until`
    /// was passed (stop reading).
    fn drain(
        &mut self,
        f: &mut File,
        from: u64,
        path: &Path,
        resume: bool,
    ) -> Result<bool, LogError> {
        let io = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !resume {
            self.pending.clear();
            self.skipping = false;
        }
        f.seek(SeekFrom::Start(from)).map_err(io)?;
        self.pos = from;
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = match f.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            self.pos += n as u64;
            let mut data = &chunk[..n];
            while let Some(i) = data.iter().position(|&b| b == b'\n') {
                let piece = &data[..i];
                data = &data[i + 1..];
                let done = if self.skipping {
                    self.skipping = false;
                    false
                } else if self.pending.is_empty() {
                    self.record(piece)?
                } else {
                    let mut line = std::mem::take(&mut self.pending);
                    line.extend_from_slice(piece);
                    let d = self.record(&line)?;
                    line.clear();
                    self.pending = line;
                    d
                };
                if done {
                    return Ok(true);
                }
            }
            if !self.skipping {
                if self.pending.len() + data.len() > MAX_RECORD {
                    self.pending.clear();
                    self.skipping = true;
                } else {
                    self.pending.extend_from_slice(data);
                }
            }
        }
    }

    fn record(&mut self, line: &[u8]) -> Result<bool, LogError> {
        let Some(rec) = decode_record(line) else {
            return Ok(false);
        };
        if self.opts.since.is_some_and(|s| rec.time < s) {
            return Ok(false);
        }
        if self.opts.until.is_some_and(|u| rec.time > u) {
            return Ok(true);
        }
        self.emit(&rec).map_err(LogError::Output)?;
        Ok(false)
    }

    fn emit(&mut self, rec: &Record) -> std::io::Result<()> {
        if !self.opts.timestamps && !self.opts.details {
            return (self.out)(rec.stream, &rec.log);
        }
        self.line.clear();
        if self.opts.timestamps {
            self.line
                .extend_from_slice(crate::timefmt::format_rfc3339_nano_fixed(rec.time).as_bytes());
            self.line.push(b' ');
        }
        if self.opts.details {
            for (i, (k, v)) in rec.attrs.iter().enumerate() {
                if i > 0 {
                    self.line.push(b',');
                }
                query_escape(&mut self.line, k);
                self.line.push(b'=');
                query_escape(&mut self.line, v);
            }
            self.line.push(b' ');
        }
        self.line.extend_from_slice(&rec.log);
        (self.out)(rec.stream, &self.line)
    }
}

/// Go's `url.QueryEscape`, as docker uses for `--details`.
fn query_escape(buf: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => buf.push(b),
            b' ' => buf.push(b'+'),
            _ => buf.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
}

/// Finds where the last `want` lines start, scanning files from the newest backwards.
fn tail_start(files: &[PathBuf], want: usize) -> Result<(usize, u64), LogError> {
    let last = files.len().saturating_sub(1);
    if want == 0 {
        let len = std::fs::metadata(&files[last]).map_or(0, |m| m.len());
        return Ok((last, len));
    }
    let mut remaining = want;
    for idx in (0..files.len()).rev() {
        let Ok(mut f) = File::open(&files[idx]) else {
            continue;
        };
        let (start, found) = scan_back(&mut f, remaining).map_err(|source| LogError::Io {
            path: files[idx].clone(),
            source,
        })?;
        if found >= remaining {
            return Ok((idx, start));
        }
        remaining -= found;
    }
    Ok((0, 0))
}

/// Scans `f` backwards for the start of its last `want` lines. Returns (offset, lines found):
/// when the file has fewer lines, (0, count).
fn scan_back(f: &mut File, want: usize) -> std::io::Result<(u64, usize)> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok((0, 0));
    }
    let mut chunk = vec![0u8; CHUNK];
    let mut end = len;
    let mut count = 0usize;
    // The byte at len-1 terminates the last line (or belongs to a partial one): either way,
    // a line starts after every other '\n'.
    let mut first = true;
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk[..n])?;
        let mut slice = &chunk[..n];
        if first {
            first = false;
            slice = &slice[..n - 1];
        }
        for (i, &b) in slice.iter().enumerate().rev() {
            if b == b'\n' {
                count += 1;
                if count == want {
                    return Ok((start + i as u64 + 1, count));
                }
            }
        }
        end = start;
    }
    Ok((0, count + 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Stream;
    use std::collections::BTreeMap;
    use std::time::UNIX_EPOCH;

    fn ctx(dir: &Path) -> LogContext {
        LogContext {
            container_id: "c".repeat(64),
            container_name: "web".into(),
            image_name: "busybox".into(),
            image_id: "sha256:".to_string() + &"d".repeat(64),
            dir: dir.to_path_buf(),
        }
    }

    fn cfg(kv: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            driver: "json-file".into(),
            config: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn collect(c: &LogConfig, x: &LogContext, o: &ReadOptions) -> Vec<(Stream, String)> {
        let mut v = Vec::new();
        read(c, x, o, &mut || false, &mut |s, b| {
            v.push((s, String::from_utf8_lossy(b).into_owned()));
            Ok(())
        })
        .unwrap();
        v
    }

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn tail_since_until_rotated() {
        let d = tempfile::tempdir().unwrap();
        let x = ctx(d.path());
        let c = cfg(&[("max-size", "2k"), ("max-file", "5")]);
        let mut w = crate::open(&c, &x).unwrap();
        for i in 0..100u64 {
            let s = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            w.log(s, format!("line {i:03}\n").as_bytes(), t(1000 + i));
        }
        w.close();
        assert!(rotated(&crate::json_log_path(d.path(), &x.container_id), 1).exists());
        let all = collect(&c, &x, &ReadOptions::default());
        // 5 files of ≤ 2 KiB hold the newest lines, in order.
        let first: usize = all[0].1[5..8].parse().unwrap();
        assert_eq!(all.len(), 100 - first);
        for (k, (s, l)) in all.iter().enumerate() {
            let i = first + k;
            assert_eq!(l, &format!("line {i:03}\n"));
            assert_eq!(*s == Stream::Stderr, i % 2 == 1);
        }
        for n in [1, 3, 10, 25, 40] {
            let tail = collect(
                &c,
                &x,
                &ReadOptions {
                    tail: Some(n),
                    ..Default::default()
                },
            );
            assert_eq!(tail.len(), n, "tail {n}");
            assert_eq!(tail[n - 1].1, "line 099\n");
            assert_eq!(tail[0].1, format!("line {:03}\n", 100 - n));
        }
        assert!(collect(
            &c,
            &x,
            &ReadOptions {
                tail: Some(0),
                ..Default::default()
            }
        )
        .is_empty());
        assert_eq!(
            collect(
                &c,
                &x,
                &ReadOptions {
                    tail: Some(10_000),
                    ..Default::default()
                }
            )
            .len(),
            all.len()
        );
        let win = collect(
            &c,
            &x,
            &ReadOptions {
                since: Some(t(1090)),
                until: Some(t(1094)),
                ..Default::default()
            },
        );
        let lines: Vec<_> = win.iter().map(|(_, l)| l.trim().to_string()).collect();
        assert_eq!(
            lines,
            ["line 090", "line 091", "line 092", "line 093", "line 094"]
        );
        let ts = collect(
            &c,
            &x,
            &ReadOptions {
                tail: Some(1),
                timestamps: true,
                details: true,
                ..Default::default()
            },
        );
        assert_eq!(ts[0].1, "1970-01-01T00:18:19.000000000Z  line 099\n");
    }

    #[test]
    fn tail_of_a_large_file_reads_only_its_end() {
        let d = tempfile::tempdir().unwrap();
        let x = ctx(d.path());
        let c = cfg(&[]);
        let mut w = crate::open(&c, &x).unwrap();
        let line = vec![b'y'; 199];
        let mut msg = line.clone();
        msg.push(b'\n');
        for i in 0..1_000_000u64 {
            w.log(Stream::Stdout, &msg, t(i));
        }
        w.close();
        let size = std::fs::metadata(crate::json_log_path(d.path(), &x.container_id))
            .unwrap()
            .len();
        assert!(size > 200 << 20, "{size}");
        let before = thread_rchar();
        let tail = collect(
            &c,
            &x,
            &ReadOptions {
                tail: Some(10),
                ..Default::default()
            },
        );
        let read = thread_rchar() - before;
        assert_eq!(tail.len(), 10);
        assert_eq!(tail[9].1, "y".repeat(199) + "\n");
        // behaviour, not speed: the 10 lines come from the end, not a scan of 200 MB
        assert!(
            read < 4 << 20,
            "tail read {read} bytes of a {size}-byte log"
        );
    }

    /// Bytes this thread has read through read(2) and friends (`/proc/thread-self/io`).
    fn thread_rchar() -> u64 {
        std::fs::read_to_string("/proc/thread-self/io")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn follow_survives_rotation_and_stops() {
        let d = tempfile::tempdir().unwrap();
        let x = ctx(d.path());
        // Enough files that no line is rotated away between two polls even on a loaded
        // machine (with max-file=3, a follower stalled for three rotations would lose the
        // oldest file's lines — as docker's would).
        let c = cfg(&[("max-size", "1k"), ("max-file", "12")]);
        let mut w = crate::open(&c, &x).unwrap();
        w.log(Stream::Stdout, b"first\n", t(1));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done2 = done.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..200u64 {
                w.log(
                    Stream::Stdout,
                    format!("f{i:03} {}\n", "z".repeat(40)).as_bytes(),
                    t(2 + i),
                );
                if i % 5 == 0 {
                    std::thread::sleep(Duration::from_millis(60));
                }
            }
            w.close();
            done2.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut got = Vec::new();
        let start = std::time::Instant::now();
        read(
            &c,
            &x,
            &ReadOptions {
                follow: true,
                ..Default::default()
            },
            &mut || !done.load(std::sync::atomic::Ordering::SeqCst),
            &mut |_, b| {
                got.push(String::from_utf8_lossy(b).into_owned());
                Ok(())
            },
        )
        .unwrap();
        writer.join().unwrap();
        // a hang detector, not a speed check: follow must end once the writer is done
        assert!(start.elapsed() < Duration::from_secs(60));
        assert_eq!(got[0], "first\n");
        let nums: Vec<u64> = got[1..].iter().map(|l| l[1..4].parse().unwrap()).collect();
        // Every line written while following arrives, in order, across ~15 rotations.
        assert_eq!(nums, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn other_drivers_cannot_be_read() {
        let d = tempfile::tempdir().unwrap();
        let c = LogConfig {
            driver: "syslog".into(),
            config: BTreeMap::new(),
        };
        let e = read(
            &c,
            &ctx(d.path()),
            &ReadOptions::default(),
            &mut || false,
            &mut |_, _| Ok(()),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "configured logging driver does not support reading"
        );
        // No file yet: empty output, no error.
        assert!(collect(&cfg(&[]), &ctx(d.path()), &ReadOptions::default()).is_empty());
    }
}
