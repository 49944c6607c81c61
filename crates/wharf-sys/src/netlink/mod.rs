//! A small, synchronous netlink client: the socket (route and netfilter families), a message
//! builder with nested attributes, and a bounded reader of the kernel's answers. `link` speaks
//! rtnetlink (bridges, veths, addresses, routes); `nft` speaks nf_tables (tables, chains, rules
//! in one transactional batch). No `ip`/`nft` processes, no glibc, no async runtime: bridge
//! networking runs on the container start path and each call is a few microseconds.
//!
//! Every request asks for an acknowledgement and the reader matches it by sequence number, so
//! an error is reported for the message that caused it (with the kernel's errno). Replies are
//! read into a fixed buffer with a receive timeout: a kernel that never answers is an error,
//! not a hang.

pub mod link;
pub mod nft;

use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

/// Largest answer wharf reads from the kernel in one `recv` (dumps arrive in several).
const RECV_BUF: usize = 64 * 1024;
/// How long a request may wait for the kernel's answer.
const RECV_TIMEOUT_SECS: i64 = 5;
/// Upper bound on the messages one dump may return (a hostile or runaway table).
const MAX_DUMP_MESSAGES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("netlink: malformed reply ({0})")]
    Malformed(&'static str),
    #[error("netlink: no reply within {RECV_TIMEOUT_SECS}s")]
    Timeout,
    #[error("netlink: dump returned more than {MAX_DUMP_MESSAGES} messages")]
    TooLarge,
    #[error("interface {0:?} does not exist")]
    NoSuchLink(String),
    #[error("invalid interface name {0:?} (1-15 bytes, no '/', ':', spaces or NUL)")]
    BadName(String),
}

impl NetlinkError {
    /// The kernel's errno for a refused request, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

static SEQ: AtomicU32 = AtomicU32::new(1);

fn next_seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Which netlink family a socket speaks.
#[derive(Debug, Clone, Copy)]
pub enum Family {
    Route,
    Netfilter,
}

/// A bound netlink socket in the calling thread's network namespace.
pub struct Socket {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Socket {
    pub fn open(family: Family) -> Result<Socket, NetlinkError> {
        let proto = match family {
            Family::Route => SockProtocol::NetlinkRoute,
            Family::Netfilter => SockProtocol::NetlinkNetFilter,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            proto,
        )
        .map_err(|e| NetlinkError::Socket(nix_io(e)))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| NetlinkError::Socket(nix_io(e)))?;
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &TimeVal::new(RECV_TIMEOUT_SECS, 0),
        )
        .map_err(|e| NetlinkError::Socket(nix_io(e)))?;
        // Extended ACKs carry a message; not needed, errno suffices. Errors only get the header.
        Ok(Socket {
            fd,
            buf: vec![0u8; RECV_BUF],
        })
    }

    fn send_all(&self, bytes: &[u8]) -> Result<(), NetlinkError> {
        let n = send(self.fd.as_raw_fd(), bytes, MsgFlags::empty())
            .map_err(|e| NetlinkError::Socket(nix_io(e)))?;
        if n != bytes.len() {
            return Err(NetlinkError::Malformed("short send"));
        }
        Ok(())
    }

    /// Read one datagram; each holds one or more messages.
    fn recv_datagram(&mut self) -> Result<usize, NetlinkError> {
        match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
            Ok(n) => Ok(n),
            Err(nix::Error::EAGAIN) => Err(NetlinkError::Timeout),
            Err(e) => Err(NetlinkError::Socket(nix_io(e))),
        }
    }

    /// Send messages (already framed, e.g. a batch) and wait for the acknowledgement of each
    /// sequence number in `acks`. The first error reported wins; `what` names the operation.
    pub(crate) fn transact(
        &mut self,
        bytes: &[u8],
        acks: &[u32],
        what: &dyn Fn(u32) -> String,
    ) -> Result<Vec<Message>, NetlinkError> {
        self.send_all(bytes)?;
        let mut pending: Vec<u32> = acks.to_vec();
        let mut echoed = Vec::new();
        let mut first_err: Option<NetlinkError> = None;
        while !pending.is_empty() {
            let n = self.recv_datagram()?;
            for m in parse_messages(&self.buf[..n])? {
                if m.kind == NLMSG_ERROR {
                    let code = m.error_code()?;
                    pending.retain(|s| *s != m.seq);
                    if code != 0 && first_err.is_none() {
                        first_err = Some(NetlinkError::Kernel {
                            what: what(m.seq),
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                } else if m.kind != NLMSG_DONE {
                    echoed.push(m);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(echoed),
        }
    }

    /// Send one request and collect a multi-part dump until `NLMSG_DONE`.
    pub(crate) fn dump(&mut self, req: Msg, what: &str) -> Result<Vec<Message>, NetlinkError> {
        let seq = req.seq;
        self.send_all(&req.finish())?;
        let mut out = Vec::new();
        loop {
            let n = self.recv_datagram()?;
            for m in parse_messages(&self.buf[..n])? {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = m.error_code()?;
                        if code != 0 {
                            return Err(NetlinkError::Kernel {
                                what: what.to_string(),
                                source: io::Error::from_raw_os_error(-code),
                            });
                        }
                        return Ok(out);
                    }
                    _ => {
                        out.push(m);
                        if out.len() > MAX_DUMP_MESSAGES {
                            return Err(NetlinkError::TooLarge);
                        }
                    }
                }
            }
        }
    }

    /// Send one request with `NLM_F_ACK` and wait for its answer.
    pub(crate) fn request(
        &mut self,
        mut req: Msg,
        what: &str,
    ) -> Result<Vec<Message>, NetlinkError> {
        req.add_flags(NLM_F_ACK);
        let seq = req.seq;
        self.transact(&req.finish(), &[seq], &|_| what.to_string())
    }
}

/// A netlink message under construction: header, fixed family header, attributes.
pub(crate) struct Msg {
    buf: Vec<u8>,
    seq: u32,
    /// Offsets of nested attributes still open.
    nests: Vec<usize>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Msg {
    pub(crate) fn new(kind: u16, flags: u16) -> Msg {
        let seq = next_seq();
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish()
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        Msg {
            buf,
            seq,
            nests: Vec::new(),
        }
    }

    fn add_flags(&mut self, flags: u16) {
        let cur = u16::from_ne_bytes([self.buf[6], self.buf[7]]);
        self.buf[6..8].copy_from_slice(&(cur | flags).to_ne_bytes());
    }

    pub(crate) fn seq(&self) -> u32 {
        self.seq
    }

    /// Raw bytes of the family header (ifinfomsg, nfgenmsg…), padded to 4.
    pub(crate) fn header(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        let n = align4(self.buf.len());
        self.buf.resize(n, 0);
    }

    pub(crate) fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    pub(crate) fn attr_u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.attr(kind, &[v])
    }

    pub(crate) fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    pub(crate) fn attr_be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_be_bytes())
    }

    pub(crate) fn attr_be64(&mut self, kind: u16, v: u64) -> &mut Self {
        self.attr(kind, &v.to_be_bytes())
    }

    /// A NUL-terminated string attribute.
    pub(crate) fn attr_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(kind, &v)
    }

    pub(crate) fn nest(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub(crate) fn end(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The framed message (length patched). Unclosed nests are closed.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        while !self.nests.is_empty() {
            self.end();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// One message read back from the kernel.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) kind: u16,
    pub(crate) seq: u32,
    /// Everything after the netlink header.
    pub(crate) payload: Vec<u8>,
}

impl Message {
    fn error_code(&self) -> Result<i32, NetlinkError> {
        let b: [u8; 4] = self
            .payload
            .get(0..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(NetlinkError::Malformed("short error message"))?;
        Ok(i32::from_ne_bytes(b))
    }

    /// Attributes after a fixed header of `skip` bytes.
    pub(crate) fn attrs(&self, skip: usize) -> Attrs<'_> {
        Attrs {
            rest: self.payload.get(align4(skip)..).unwrap_or(&[]),
        }
    }
}

fn parse_messages(mut b: &[u8]) -> Result<Vec<Message>, NetlinkError> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(NetlinkError::Malformed("message length"));
        }
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
        out.push(Message {
            kind,
            seq,
            payload: b[NLMSG_HDRLEN..len].to_vec(),
        });
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// An iterator over the attributes of a message or of a nested attribute. Stops at the first
/// malformed attribute (a length that does not fit).
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub(crate) fn of(bytes: &'a [u8]) -> Attrs<'a> {
        Attrs { rest: bytes }
    }
}

impl<'a> Iterator for Attrs<'a> {
    /// (type without flag bits, data)
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([self.rest[0], self.rest[1]]) as usize;
        let kind = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & 0x3fff;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let data = &self.rest[4..len];
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some((kind, data))
    }
}

/// A NUL-terminated string attribute's text.
pub(crate) fn attr_string(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

pub(crate) fn attr_u32(data: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(data.get(0..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_frames_and_nests() {
        let mut m = Msg::new(16, NLM_F_ACK);
        m.header(&[0u8; 16]);
        m.attr_str(3, "br0");
        m.nest(18).attr_str(1, "bridge").end();
        let seq = m.seq();
        let b = m.finish();
        let msgs = parse_messages(&b).expect("parse");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].seq, seq);
        let attrs: Vec<_> = msgs[0].attrs(16).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attr_string(attrs[0].1), "br0");
        assert_eq!(attrs[1].0, 18);
        let inner: Vec<_> = Attrs::of(attrs[1].1).collect();
        assert_eq!(attr_string(inner[0].1), "bridge");
    }

    #[test]
    fn hostile_lengths_stop_parsing() {
        // attribute claiming more bytes than there are
        let bytes = [200u8, 0, 1, 0, b'a', b'b'];
        assert_eq!(Attrs::of(&bytes).count(), 0);
        // message length smaller than a header
        let mut m = vec![0u8; 20];
        m[0] = 4;
        assert!(parse_messages(&m).is_err());
        // message length beyond the datagram
        m[0] = 200;
        assert!(parse_messages(&m).is_err());
    }
}
