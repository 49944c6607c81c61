use super::*;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A reader handing out at most `step` bytes per call, failing after `fail_at` bytes.
struct Dribble {
    data: Vec<u8>,
    pos: usize,
    step: usize,
    fail_at: Option<usize>,
}

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at.is_some_and(|f| self.pos >= f) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "marker"));
        }
        let n = buf.len().min(self.step).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn read_ahead_passes_every_byte_in_order() {
    let data = pattern(3 * AHEAD_CHUNK + 12345);
    for step in [1 << 20, 4096, 777] {
        let src = Dribble {
            data: data.clone(),
            pos: 0,
            step,
            fail_at: None,
        };
        let got = read_ahead(src, |r| {
            let mut v = Vec::new();
            // odd read sizes on the consuming side too
            let mut buf = vec![0u8; 1000];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                v.extend_from_slice(&buf[..n]);
            }
            // stays at EOF
            assert_eq!(r.read(&mut buf).unwrap(), 0);
            v
        });
        assert_eq!(got.len(), data.len(), "step {step}");
        assert!(got == data, "step {step}: bytes differ");
    }
    // empty input
    let got = read_ahead(io::empty(), |r| {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    });
    assert!(got.is_empty());
}

#[test]
fn read_ahead_hands_the_sources_error_through_unchanged() {
    let src = Dribble {
        data: pattern(4 * AHEAD_CHUNK),
        pos: 0,
        step: 1000,
        fail_at: Some(AHEAD_CHUNK + 5000),
    };
    let (n, err) = read_ahead(src, |r| {
        let mut v = Vec::new();
        let e = r.read_to_end(&mut v).unwrap_err();
        (v.len(), e)
    });
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "marker");
    // every byte read before the failure was delivered first
    assert_eq!(n, AHEAD_CHUNK);
}

#[test]
fn read_ahead_stops_its_thread_when_the_consumer_returns_early() {
    // an endless source: returning must not wait for it to end
    let out = read_ahead(io::repeat(7), |r| {
        let mut b = [0u8; 10];
        r.read_exact(&mut b).unwrap();
        b
    });
    assert_eq!(out, [7u8; 10]);
}

#[test]
fn growing_reader_follows_the_writer_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut w = File::create(&path).unwrap();
    let g = Growing::new();
    let mut r = GrowingReader::new(File::open(&path).unwrap(), g.clone());
    let data = pattern(1 << 20);
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    });
    let mut total = 0u64;
    for c in data.chunks(10_000) {
        w.write_all(c).unwrap();
        total += c.len() as u64;
        g.wrote(total);
        if total % 100_000 < 10_000 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    // bytes beyond what was announced are not read before `done`
    g.done();
    let got = reader.join().unwrap();
    assert!(got == data);
}

#[test]
fn growing_reader_sees_only_announced_bytes_and_fails_when_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut w = File::create(&path).unwrap();
    w.write_all(&pattern(5000)).unwrap();
    let g = Growing::new();
    g.wrote(3000);
    let mut r = GrowingReader::new(File::open(&path).unwrap(), g.clone());
    let mut buf = vec![0u8; 10_000];
    assert_eq!(r.read(&mut buf).unwrap(), 3000);
    let t = std::thread::spawn(move || r.read(&mut buf));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!t.is_finished(), "must wait for more bytes");
    g.abandon();
    let e = t.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("stopped before"), "{e}");
    // done after abandon changes nothing
    g.done();
    let mut r2 = GrowingReader::new(File::open(&path).unwrap(), g);
    assert!(r2.read(&mut [0u8; 10]).is_err());
}

#[test]
fn slots_admit_at_most_max_holders() {
    let slots = Slots::new(3);
    let held: Vec<Slot> = (0..3).map(|_| slots.acquire()).collect();
    let got = std::sync::Arc::new(AtomicUsize::new(0));
    let (s2, g2) = (slots.clone(), got.clone());
    let t = std::thread::spawn(move || {
        let _s = s2.acquire();
        g2.store(1, Ordering::SeqCst);
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(got.load(Ordering::SeqCst), 0, "a fourth holder got in");
    drop(held);
    t.join().unwrap();
    assert_eq!(got.load(Ordering::SeqCst), 1);
    assert_eq!(*slots.used.lock().unwrap(), 0, "every slot released");
}
