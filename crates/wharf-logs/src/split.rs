//! Splits a byte stream (one of the container's pipes) into log records: complete lines
//! including their '\n', and partial records of [`MAX_LINE`] bytes when a line is longer
//! (docker's 16 KiB buffer). Memory is bounded by `MAX_LINE`.

/// Longest record; longer lines are emitted in `MAX_LINE` pieces without a '\n'.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> LineSplitter {
        LineSplitter { buf: Vec::new() }
    }

    /// Feeds bytes; calls `emit` for every complete line and for every full `MAX_LINE` piece.
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.buf.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line = &bytes[..=i];
                    if self.buf.is_empty() {
                        emit(line);
                    } else {
                        self.buf.extend_from_slice(line);
                        emit(&self.buf);
                        self.buf.clear();
                    }
                    bytes = &bytes[i + 1..];
                }
                None if window.len() == room => {
                    if self.buf.is_empty() {
                        emit(window);
                    } else {
                        self.buf.extend_from_slice(window);
                        emit(&self.buf);
                        self.buf.clear();
                    }
                    bytes = &bytes[room..];
                }
                None => {
                    self.buf.extend_from_slice(window);
                    bytes = &[];
                }
            }
        }
        if self.buf.is_empty() && self.buf.capacity() > MAX_LINE {
            self.buf = Vec::new();
        }
    }

    /// Emits what is left (a last line without '\n'), at EOF.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l.to_vec()));
        }
        s.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_and_partials() {
        assert_eq!(
            run(&[b"a\nb", b"c\n", b"d"]),
            vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"d".to_vec()]
        );
        assert_eq!(run(&[b"\n\n"]), vec![b"\n".to_vec(), b"\n".to_vec()]);
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let mut input = long.clone();
        input.push(b'\n');
        let out = run(&[&input[..100], &input[100..]]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2], b"xxxxx\n".to_vec());
        assert_eq!(out.concat(), input);
    }
}
