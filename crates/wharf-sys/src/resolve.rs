//! Host name resolution without glibc NSS: the binary is static, and a static glibc's
//! `getaddrinfo` loads the HOST's `libnss_*.so` modules (`myhostname`, `resolve`, `sss` from
//! nsswitch.conf) built for another glibc — on RHEL 7/8/9 that ranges from a warning to a
//! crash. This does what `hosts: files dns` does: IP literals, `/etc/hosts`, `localhost`,
//! then a DNS stub resolver reading `/etc/resolv.conf` (`nameserver`, `search`/`domain`,
//! `options ndots: timeout: attempts:`), A and AAAA over UDP (random id and port, connected
//! socket, question checked) with TCP when truncated. IPv4 addresses come first.
//!
//! Owns: parsing hosts/resolv.conf, DNS wire format. Must not: follow anything but the
//! answer's records, trust a response that does not echo the question, panic on any packet.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u8 = 3;
/// How long the other address family's answer is waited for once one family has addresses.
const OTHER_FAMILY_GRACE: Duration = Duration::from_millis(500);
/// Cap on files read (hosts, resolv.conf).
const FILE_CAP: u64 = 1 << 20;

/// `/etc/resolv.conf`, as far as a stub resolver needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: u32,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl ResolvConf {
    /// Parses resolv.conf(5) text; without a `nameserver` line the local one (127.0.0.1) is
    /// used, as glibc does. At most 3 name servers, like glibc.
    pub fn parse(text: &str) -> ResolvConf {
        let mut c = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut it = line.split_whitespace();
            match it.next() {
                Some("nameserver") => {
                    let Some(ip) = it.next() else { continue };
                    // a link-local scope (fe80::1%eth0) is dropped: no interface index here
                    let ip = ip.split('%').next().unwrap_or(ip);
                    if let Ok(ip) = ip.parse::<IpAddr>() {
                        if c.nameservers.len() < 3 {
                            c.nameservers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                // the last of `search` / `domain` wins
                Some("search") => {
                    c.search = it.map(|s| s.trim_end_matches('.').to_string()).collect()
                }
                Some("domain") => {
                    c.search = it
                        .next()
                        .map(|s| vec![s.trim_end_matches('.').to_string()])
                        .unwrap_or_default()
                }
                Some("options") => {
                    for o in it {
                        let (k, v) = o.split_once(':').unwrap_or((o, ""));
                        let n = v.parse::<u64>().ok();
                        match (k, n) {
                            ("ndots", Some(n)) => c.ndots = n.min(15) as usize,
                            ("timeout", Some(n)) => c.timeout = Duration::from_secs(n.clamp(1, 30)),
                            ("attempts", Some(n)) => c.attempts = n.clamp(1, 5) as u32,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        c.search.retain(|s| !s.is_empty());
        if c.nameservers.is_empty() {
            c.nameservers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        c
    }

    /// `/etc/resolv.conf` (a missing file means the defaults).
    pub fn system() -> ResolvConf {
        ResolvConf::parse(&read_capped(Path::new("/etc/resolv.conf")).unwrap_or_default())
    }
}

fn read_capped(path: &Path) -> Option<String> {
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(FILE_CAP)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Addresses `name` has in a hosts(5) file's text.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or("");
            let mut it = l.split_whitespace();
            let ip = it.next()?;
            let ip: IpAddr = ip.split('%').next().unwrap_or(ip).parse().ok()?;
            it.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

/// Resolves `host` like `hosts: files dns`: an IP literal, `/etc/hosts`, `localhost`, then
/// DNS per `/etc/resolv.conf`.
pub fn lookup_host(host: &str) -> io::Result<Vec<IpAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let from_hosts = hosts_lookup(
        &read_capped(Path::new("/etc/hosts")).unwrap_or_default(),
        host,
    );
    if !from_hosts.is_empty() {
        return Ok(from_hosts);
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    dns_lookup(&ResolvConf::system(), host)
}

/// `host:port` (or `[v6]:port`) to socket addresses, via [`lookup_host`].
pub fn socket_addrs(host_port: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(a) = host_port.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid host:port {host_port:?}"),
        )
    };
    let (host, port) = host_port.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(lookup_host(host)?
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// The names tried for `name`, in order (resolv.conf(5): absolute first when it has at least
/// `ndots` dots, a trailing dot means only itself).
pub fn candidates(conf: &ResolvConf, name: &str) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_string()];
    }
    let searched = conf.search.iter().map(|d| format!("{name}.{d}"));
    if name.matches('.').count() >= conf.ndots {
        std::iter::once(name.to_string()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_string())).collect()
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no address for {name:?} (DNS per /etc/resolv.conf, /etc/hosts)"),
    )
}

/// DNS only: every candidate name in turn, A and AAAA, until one has addresses.
pub fn dns_lookup(conf: &ResolvConf, name: &str) -> io::Result<Vec<IpAddr>> {
    if name.is_empty() || name.len() > 253 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid host name",
        ));
    }
    let mut last_err = None;
    for cand in candidates(conf, name) {
        match query_name(conf, &cand) {
            Ok(addrs) if !addrs.is_empty() => return Ok(addrs),
            Ok(_) => {}
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| not_found(name)))
}

/// What the servers said about one name: its addresses (possibly none: NXDOMAIN or no
/// records), or an error when no server answered usefully.
fn query_name(conf: &ResolvConf, name: &str) -> io::Result<Vec<IpAddr>> {
    let mut last_err = io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no DNS server answered for {name:?}"),
    );
    for _ in 0..conf.attempts {
        for &server in &conf.nameservers {
            match ask(server, name, conf.timeout) {
                Ok(addrs) => return Ok(addrs),
                Err(e) => last_err = e,
            }
        }
    }
    Err(last_err)
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return (n ^ std::process::id()) as u16;
    }
    u16::from_be_bytes(b)
}

/// One server, A and AAAA together over UDP (TCP for a truncated answer).
fn ask(server: SocketAddr, name: &str, timeout: Duration) -> io::Result<Vec<IpAddr>> {
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(server)?; // the kernel drops datagrams from anyone else
    let id = random_id();
    let qs = [(id, TYPE_A), (id.wrapping_add(1), TYPE_AAAA)];
    for (qid, qtype) in qs {
        sock.send(&encode_query(qid, name, qtype)?)?;
    }
    let mut deadline = Instant::now() + timeout;
    let mut got: [Option<Answer>; 2] = [None, None];
    let mut buf = [0u8; 1500];
    while got.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(e),
        };
        for (i, (qid, qtype)) in qs.iter().enumerate() {
            if got[i].is_some() {
                continue;
            }
            // anything that is not a well-formed answer to this very question is ignored
            if let Ok(a) = parse_response(&buf[..n], *qid, name, *qtype) {
                let a = if a.truncated {
                    ask_tcp(server, name, *qtype, timeout)?
                } else {
                    a
                };
                // Some DNS appliances never answer AAAA (why glibc has `single-request`):
                // once one family has addresses, the other gets a short grace, not the
                // whole timeout.
                if !a.addrs.is_empty() {
                    deadline = deadline.min(Instant::now() + OTHER_FAMILY_GRACE);
                }
                got[i] = Some(a);
            }
        }
    }
    let answered: Vec<&Answer> = got.iter().flatten().collect();
    if answered.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("DNS server {server} did not answer for {name:?}"),
        ));
    }
    // a server failure (SERVFAIL, REFUSED…) on both means: ask another server
    if answered
        .iter()
        .all(|a| a.rcode != 0 && a.rcode != RCODE_NXDOMAIN)
    {
        return Err(io::Error::other(format!(
            "DNS server {server} failed for {name:?} (rcode {})",
            answered[0].rcode
        )));
    }
    let mut v4: Vec<IpAddr> = Vec::new();
    let mut v6: Vec<IpAddr> = Vec::new();
    for a in answered {
        for ip in &a.addrs {
            match ip {
                IpAddr::V4(_) => v4.push(*ip),
                IpAddr::V6(_) => v6.push(*ip),
            }
        }
    }
    v4.extend(v6);
    Ok(v4)
}

fn ask_tcp(server: SocketAddr, name: &str, qtype: u16, timeout: Duration) -> io::Result<Answer> {
    let id = random_id();
    let q = encode_query(id, name, qtype)?;
    let mut s = TcpStream::connect_timeout(&server, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&q);
    s.write_all(&msg)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut resp = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut resp)?;
    let a = parse_response(&resp, id, name, qtype)?;
    Ok(Answer {
        truncated: false,
        ..a
    })
}

/// A DNS query for `name` (recursion desired).
pub fn encode_query(id: u16, name: &str, qtype: u16) -> io::Result<Vec<u8>> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // 1 question
    encode_name(&mut q, name)?;
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

fn encode_name(out: &mut Vec<u8>, name: &str) -> io::Result<()> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid host name {name:?}: {why}"),
        )
    };
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return Err(bad("length"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("empty or over-long label"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("characters"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// What a response said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    pub truncated: bool,
    pub addrs: Vec<IpAddr>,
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed DNS response: {what}"),
    )
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end.ok_or_else(|| malformed("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> io::Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    /// Reads a (possibly compressed) name, lower-cased, without trailing dot. Pointers must
    /// point backwards, so a loop cannot be built.
    fn name(&mut self) -> io::Result<String> {
        let mut out = String::new();
        let mut pos = self.pos;
        let mut jumped = false;
        let mut hops = 0;
        loop {
            let len = *self.b.get(pos).ok_or_else(|| malformed("truncated name"))? as usize;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    pos += 1;
                    break;
                }
                0x00 => {
                    let label = self
                        .b
                        .get(pos + 1..pos + 1 + len)
                        .ok_or_else(|| malformed("truncated label"))?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
                    if out.len() > 255 {
                        return Err(malformed("name too long"));
                    }
                    pos += 1 + len;
                }
                0xc0 => {
                    let lo = *self
                        .b
                        .get(pos + 1)
                        .ok_or_else(|| malformed("truncated pointer"))?;
                    let target = ((len & 0x3f) << 8) | lo as usize;
                    if target >= pos || hops > 64 {
                        return Err(malformed("bad compression pointer"));
                    }
                    hops += 1;
                    if !jumped {
                        self.pos = pos + 2;
                        jumped = true;
                    }
                    pos = target;
                }
                _ => return Err(malformed("unknown label type")),
            }
        }
        if !jumped {
            self.pos = pos;
        }
        Ok(out)
    }
}

/// Parses a response to query `id` for (`name`, `qtype`); the A/AAAA records of its answer
/// section (of the asked type). Errors on anything that is not such a response.
pub fn parse_response(b: &[u8], id: u16, name: &str, qtype: u16) -> io::Result<Answer> {
    let mut c = Cursor { b, pos: 0 };
    let rid = c.u16()?;
    let flags = c.u16()?;
    let qd = c.u16()?;
    let an = c.u16()?;
    c.take(4)?; // ns, ar counts
    if rid != id || flags & 0x8000 == 0 {
        return Err(malformed("not a response to this query"));
    }
    let truncated = flags & 0x0200 != 0;
    let rcode = (flags & 0x000f) as u8;
    if qd != 1 {
        return Err(malformed("question count"));
    }
    let qname = c.name()?;
    let (qt, qc) = (c.u16()?, c.u16()?);
    if qname != name.trim_end_matches('.').to_ascii_lowercase() || qt != qtype || qc != CLASS_IN {
        return Err(malformed("answer to another question"));
    }
    let mut addrs = Vec::new();
    if !truncated {
        for _ in 0..an {
            c.name()?;
            let (rtype, rclass) = (c.u16()?, c.u16()?);
            c.take(4)?; // ttl
            let len = c.u16()? as usize;
            let data = c.take(len)?;
            if rclass != CLASS_IN || rtype != qtype {
                continue; // e.g. the CNAME records leading to the addresses
            }
            match (rtype, data.len()) {
                (TYPE_A, 4) => addrs.push(IpAddr::from([data[0], data[1], data[2], data[3]])),
                (TYPE_AAAA, 16) => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(data);
                    addrs.push(IpAddr::from(o));
                }
                _ => return Err(malformed("address record of the wrong size")),
            }
        }
    }
    Ok(Answer {
        rcode,
        truncated,
        addrs,
    })
}

/// For `ToSocketAddrs`-style callers: the first address of `host_port`.
pub fn first_addr(host_port: &str) -> io::Result<SocketAddr> {
    socket_addrs(host_port)?
        .into_iter()
        .next()
        .ok_or_else(|| not_found(host_port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "resolve_tests.rs"]
mod tests;
