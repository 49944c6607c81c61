//! The embedded DNS resolver of user-defined networks: containers' `/etc/resolv.conf` names
//! their network's gateway, where one small server (for every network of the host) answers
//! A/AAAA/PTR for container names, ids and aliases on the asker's network and forwards every
//! other question to the host's resolvers.
//!
//! Queries are hostile input: one question, uncompressed name of at most 255 bytes in labels
//! of at most 63, a UDP datagram of at most 512 bytes read (TCP: the 2-byte length, at most
//! 4 KiB), anything else answered FORMERR or dropped. Forwarding relays the question as is and
//! accepts only an answer that echoes its id and question (the same check as
//! `wharf_sys::resolve`), with a timeout.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// docker's TTL for container records.
const TTL: u32 = 600;
pub const MAX_UDP: usize = 512;
pub const MAX_TCP: usize = 4096;

/// The one question of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: u16,
    /// Recursion desired, copied into the answer.
    pub rd: bool,
    /// Lower-case, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// Bytes of the question section (for the answer and for checking a forwarded reply).
    raw_question: Vec<u8>,
}

/// Why a datagram is not a query we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Not even a header: drop.
    Drop,
    /// A header with an id: answer FORMERR.
    FormErr(u16),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Parses a query (QR=0, opcode 0, exactly one question, no compression in the name).
pub fn parse_query(msg: &[u8]) -> Result<Question, Bad> {
    let id = be16(msg, 0).ok_or(Bad::Drop)?;
    let flags = be16(msg, 2).ok_or(Bad::Drop)?;
    if msg.len() < 12 || flags & 0x8000 != 0 {
        return Err(Bad::Drop); // too short, or a response: never answer those
    }
    let ferr = Bad::FormErr(id);
    if (flags >> 11) & 0xf != 0 || be16(msg, 4) != Some(1) {
        return Err(ferr);
    }
    let mut at = 12;
    let mut labels: Vec<String> = Vec::new();
    let mut total = 0usize;
    loop {
        let len = usize::from(*msg.get(at).ok_or(ferr)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return Err(ferr); // compression pointer or reserved label type
        }
        total += len + 1;
        if total > 255 {
            return Err(ferr);
        }
        let label = msg.get(at..at + len).ok_or(ferr)?;
        if !label
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        {
            return Err(ferr);
        }
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = be16(msg, at).ok_or(ferr)?;
    let qclass = be16(msg, at + 2).ok_or(ferr)?;
    at += 4;
    Ok(Question {
        id,
        rd: flags & 0x0100 != 0,
        name: labels.join("."),
        qtype,
        qclass,
        raw_question: msg[12..at].to_vec(),
    })
}

fn header(id: u16, rd: bool, rcode: u16, an: u16, with_question: bool) -> Vec<u8> {
    let mut flags: u16 = 0x8000 | 0x0080 | rcode; // QR, RA
    if rd {
        flags |= 0x0100;
    }
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&u16::from(with_question).to_be_bytes());
    h.extend_from_slice(&an.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// FORMERR for an unparseable query with an id.
pub fn formerr(id: u16) -> Vec<u8> {
    header(id, false, 1, 0, false)
}

/// SERVFAIL for a question the upstream did not answer.
pub fn servfail(q: &Question) -> Vec<u8> {
    let mut m = header(q.id, q.rd, 2, 0, true);
    m.extend_from_slice(&q.raw_question);
    m
}

/// What the resolver knows about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// A container (name, id prefix or alias) with its addresses.
    Addresses(Vec<IpAddr>),
    /// A container address, for PTR: its name.
    Name(String),
}

/// The answer to a question about a known name. AAAA for a container without IPv6 and other
/// types are answered with no records (NOERROR), as docker does.
pub fn answer(q: &Question, known: &Known) -> Vec<u8> {
    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    match known {
        Known::Addresses(ips) => {
            for ip in ips {
                match (ip, q.qtype) {
                    (IpAddr::V4(a), TYPE_A) => records.push((TYPE_A, a.octets().to_vec())),
                    (IpAddr::V6(a), TYPE_AAAA) => records.push((TYPE_AAAA, a.octets().to_vec())),
                    _ => {}
                }
            }
        }
        Known::Name(name) if q.qtype == TYPE_PTR => {
            let mut rdata = Vec::new();
            for l in name.split('.').filter(|l| !l.is_empty()) {
                let l = &l.as_bytes()[..l.len().min(63)];
                rdata.push(l.len() as u8);
                rdata.extend_from_slice(l);
            }
            rdata.push(0);
            records.push((TYPE_PTR, rdata));
        }
        Known::Name(_) => {}
    }
    let mut m = header(q.id, q.rd, 0, records.len() as u16, true);
    m.extend_from_slice(&q.raw_question);
    for (t, rdata) in records {
        m.extend_from_slice(&[0xc0, 12]); // pointer to the question's name
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m.extend_from_slice(&TTL.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

/// The name a PTR question asks about as an address (`2.0.18.172.in-addr.arpa`, or 32
/// reversed nibbles and `.ip6.arpa`).
pub fn ptr_address(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".ip6.arpa") {
        let nibbles: Vec<u8> = rest
            .split('.')
            .map(|p| match p.as_bytes() {
                [c] => (*c as char).to_digit(16).and_then(|d| u8::try_from(d).ok()),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()?;
        if nibbles.len() != 32 {
            return None;
        }
        let mut o = [0u8; 16];
        for (i, pair) in nibbles.rchunks(2).enumerate() {
            // reversed: the last label is the address's first nibble
            o[i] = (pair[1] << 4) | pair[0];
        }
        return Some(IpAddr::from(o));
    }
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut o: Vec<u8> = rest
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<u8>>>()?;
    if o.len() != 4 {
        return None;
    }
    o.reverse();
    Some(IpAddr::from([o[0], o[1], o[2], o[3]]))
}

/// Relays `query` to the upstream servers in turn; returns the first reply that echoes the
/// query's id and question. `None`: none answered within `timeout` each.
pub fn forward(
    query: &[u8],
    q: &Question,
    upstreams: &[SocketAddr],
    timeout: Duration,
) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(s) = UdpSocket::bind(bind) else {
            continue;
        };
        if s.set_read_timeout(Some(timeout)).is_err() || s.connect(up).is_err() {
            continue;
        }
        if s.send(query).is_err() {
            continue;
        }
        let mut buf = vec![0u8; MAX_TCP];
        // a few stray datagrams may arrive; each read is bounded by the timeout
        for _ in 0..4 {
            let Ok(n) = s.recv(&mut buf) else { break };
            let r = &buf[..n];
            if n >= 12
                && be16(r, 0) == Some(q.id)
                && be16(r, 2).is_some_and(|f| f & 0x8000 != 0)
                && r.get(12..12 + q.raw_question.len()) == Some(q.raw_question.as_slice())
            {
                return Some(r.to_vec());
            }
        }
    }
    None
}

/// Answers one datagram: `lookup` knows the network's containers; everything else goes to
/// `upstreams`. `None`: drop silently.
pub fn handle(
    msg: &[u8],
    lookup: &dyn Fn(&Question) -> Option<Known>,
    upstreams: &[SocketAddr],
    timeout: Duration,
) -> Option<Vec<u8>> {
    let q = match parse_query(msg) {
        Ok(q) => q,
        Err(Bad::Drop) => return None,
        Err(Bad::FormErr(id)) => return Some(formerr(id)),
    };
    if q.qclass == CLASS_IN {
        if let Some(k) = lookup(&q) {
            return Some(answer(&q, &k));
        }
    }
    Some(forward(msg, &q, upstreams, timeout).unwrap_or_else(|| servfail(&q)))
}

/// Builds a query (tests and probes).
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.').filter(|l| !l.is_empty()) {
        m.push(l.len().min(63) as u8);
        m.extend_from_slice(&l.as_bytes()[..l.len().min(63)]);
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m
}

/// The addresses of A/AAAA records in an answer (tests and probes).
pub fn answers(msg: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let (Some(qd), Some(an)) = (be16(msg, 4), be16(msg, 6)) else {
        return out;
    };
    let mut at = 12;
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let l = *msg.get(at)?;
            if l & 0xc0 == 0xc0 {
                return Some(at + 2);
            }
            at += 1 + usize::from(l);
            if l == 0 {
                return Some(at);
            }
        }
    };
    for _ in 0..qd {
        let Some(n) = skip_name(at) else { return out };
        at = n + 4;
    }
    for _ in 0..an {
        let Some(n) = skip_name(at) else { return out };
        let (Some(t), Some(len)) = (be16(msg, n), be16(msg, n + 8)) else {
            return out;
        };
        let start = n + 10;
        let Some(d) = msg.get(start..start + usize::from(len)) else {
            return out;
        };
        match (t, d.len()) {
            (TYPE_A, 4) => out.push(IpAddr::from([d[0], d[1], d[2], d[3]])),
            (TYPE_AAAA, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(d);
                out.push(IpAddr::from(o));
            }
            _ => {}
        }
        at = start + usize::from(len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(q: &Question) -> Option<Known> {
        match q.name.as_str() {
            "db" | "db.app" => Some(Known::Addresses(vec!["172.18.0.2".parse().ok()?])),
            n if ptr_address(n) == "172.18.0.2".parse().ok() => Some(Known::Name("db".into())),
            _ => None,
        }
    }

    #[test]
    fn answers_known_names() {
        let r = handle(
            &query(7, "DB", TYPE_A),
            &known,
            &[],
            Duration::from_millis(10),
        )
        .expect("answer");
        assert_eq!(be16(&r, 0), Some(7));
        assert_eq!(be16(&r, 2).map(|f| f & 0xf), Some(0));
        assert_eq!(
            answers(&r),
            vec!["172.18.0.2".parse::<IpAddr>().expect("ip")]
        );
        let r = handle(
            &query(8, "db", TYPE_AAAA),
            &known,
            &[],
            Duration::from_millis(10),
        )
        .expect("answer");
        assert_eq!(
            be16(&r, 6),
            Some(0),
            "AAAA without IPv6: no records, NOERROR"
        );
        let r = handle(
            &query(9, "2.0.18.172.in-addr.arpa", TYPE_PTR),
            &known,
            &[],
            Duration::from_millis(10),
        )
        .expect("ptr");
        assert_eq!(be16(&r, 6), Some(1));
        assert!(r.windows(3).any(|w| w == b"\x02db"));
    }

    #[test]
    fn unknown_names_without_upstream_servfail() {
        let r = handle(
            &query(1, "example.org", TYPE_A),
            &known,
            &[],
            Duration::from_millis(10),
        )
        .expect("servfail");
        assert_eq!(be16(&r, 2).map(|f| f & 0xf), Some(2));
    }

    #[test]
    fn forwards_to_upstream_and_checks_the_echo() {
        let up = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = up.local_addr().expect("addr");
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 512];
            // first a reply with the wrong id, then the right one
            let (n, from) = up.recv_from(&mut b).expect("recv");
            let q = parse_query(&b[..n]).expect("query");
            let mut wrong = answer(&q, &Known::Addresses(vec!["9.9.9.9".parse().expect("ip")]));
            wrong[0] ^= 0xff;
            up.send_to(&wrong, from).expect("send");
            let right = answer(&q, &Known::Addresses(vec!["1.2.3.4".parse().expect("ip")]));
            up.send_to(&right, from).expect("send");
        });
        let r = handle(
            &query(42, "example.org", TYPE_A),
            &known,
            &[addr],
            Duration::from_secs(2),
        )
        .expect("answer");
        t.join().expect("upstream");
        assert_eq!(answers(&r), vec!["1.2.3.4".parse::<IpAddr>().expect("ip")]);
    }

    #[test]
    fn hostile_queries() {
        let lookup = |_: &Question| None;
        let h = |m: &[u8]| handle(m, &lookup, &[], Duration::from_millis(10));
        assert_eq!(h(&[]), None);
        assert_eq!(h(&[1, 2, 3]), None);
        // a response is never answered (no reflection loops)
        let mut resp = query(5, "x", TYPE_A);
        resp[2] |= 0x80;
        assert_eq!(h(&resp), None);
        // compression pointer in the question, two questions, truncated name, long label
        let mut ptr = query(6, "x", TYPE_A);
        ptr[12] = 0xc0;
        let mut two = query(7, "x", TYPE_A);
        two[5] = 2;
        let mut cut = query(8, "abcdef", TYPE_A);
        cut.truncate(15);
        let mut long = query(9, "a", TYPE_A);
        long[12] = 64;
        for (m, id) in [(ptr, 6u16), (two, 7), (cut, 8), (long, 9)] {
            let r = h(&m).expect("formerr");
            assert_eq!(be16(&r, 0), Some(id));
            assert_eq!(be16(&r, 2).map(|f| f & 0xf), Some(1));
        }
        // a 256-byte name
        let name = vec!["a".repeat(63); 5].join(".");
        let r = h(&query(10, &name, TYPE_A)).expect("formerr");
        assert_eq!(be16(&r, 2).map(|f| f & 0xf), Some(1));
        assert_eq!(ptr_address("1.2.3.in-addr.arpa"), None);
        let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.d.f.ip6.arpa";
        assert_eq!(ptr_address(v6), "fd70::2".parse().ok());
        assert_eq!(ptr_address("2.0.d.f.ip6.arpa"), None);
        assert_eq!(ptr_address(&v6.replace("7.d.f", "7.dd.f")), None);
        assert_eq!(ptr_address("300.2.3.4.in-addr.arpa"), None);
    }
}
