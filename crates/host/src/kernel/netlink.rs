//! The network links of the caller's network namespace, from an `RTM_GETLINK` dump over a
//! `NETLINK_ROUTE` socket: each link's name and, for a link a driver made through
//! rtnetlink (`veth`, `bridge`, `vxlan`...), its kind (`IFLA_LINKINFO`/`IFLA_INFO_KIND`).
//! The bytes come from the kernel but are parsed as outside input: [`parse_dump`] is a
//! pure function that checks every length and never panics.

use std::time::Duration;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use super::uses::Link;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const RTA_HDRLEN: usize = 4;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_DUMP: u16 = 0x300;

const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
/// `NLA_F_NESTED | NLA_F_NET_BYTEORDER`: flags in an attribute's type, not part of it.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);

/// More links than any host has: a dump past it is refused rather than read forever.
pub const MAX_LINKS: usize = 1 << 16;
/// Every link name and kind is shorter (`IFNAMSIZ` is 16; kinds are short words).
const MAX_NAME: usize = 64;
/// One read; the kernel fills at most this much per message batch.
const RECV_BUF: usize = 32 * 1024;
/// How long one read may wait: the kernel answers a dump at once.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a dump could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket")]
    Io(#[source] std::io::Error),
    #[error("netlink: the kernel refused the link dump (errno {0})")]
    Refused(i32),
    #[error("netlink: malformed message: {0}")]
    Malformed(&'static str),
    #[error("netlink: more than {MAX_LINKS} links")]
    TooMany,
}

/// The `RTM_GETLINK` dump request with sequence number `seq`: a `nlmsghdr` and an empty
/// `ifinfomsg` (every family, every link).
pub fn dump_request(seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + IFINFOMSG_LEN) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&[0u8; IFINFOMSG_LEN]);
    b
}

/// What one read of a dump held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DumpPart {
    pub links: Vec<Link>,
    /// `NLMSG_DONE` was in it: the dump is complete.
    pub done: bool,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The attributes in `b` as (type without flags, payload); a truncated or overlong
/// attribute is an error.
fn attributes(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, NetlinkError> {
    let mut out = Vec::new();
    while b.len() >= RTA_HDRLEN {
        let len = u16_at(b, 0).ok_or(NetlinkError::Malformed("attribute header"))? as usize;
        let kind = u16_at(b, 2).ok_or(NetlinkError::Malformed("attribute header"))?;
        if len < RTA_HDRLEN || len > b.len() {
            return Err(NetlinkError::Malformed("attribute length"));
        }
        out.push((kind & NLA_TYPE_MASK, &b[RTA_HDRLEN..len]));
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// A NUL-terminated string attribute, bounded.
fn string(payload: &[u8]) -> Result<String, NetlinkError> {
    let end = payload
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(payload.len());
    if end > MAX_NAME {
        return Err(NetlinkError::Malformed("name too long"));
    }
    Ok(String::from_utf8_lossy(&payload[..end]).into_owned())
}

fn link(body: &[u8]) -> Result<Option<Link>, NetlinkError> {
    let attrs = body
        .get(IFINFOMSG_LEN..)
        .ok_or(NetlinkError::Malformed("short ifinfomsg"))?;
    let mut name = None;
    let mut kind = None;
    for (t, payload) in attributes(attrs)? {
        match t {
            IFLA_IFNAME => name = Some(string(payload)?),
            IFLA_LINKINFO => {
                for (t, p) in attributes(payload)? {
                    if t == IFLA_INFO_KIND {
                        kind = Some(string(p)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(name.map(|name| Link {
        name,
        kind,
        namespace: None,
    }))
}

/// Parses what one read of a link dump returned: the links in it, and whether the dump
/// ended. Messages of another sequence number are skipped; an `NLMSG_ERROR` is the
/// kernel's refusal.
pub fn parse_dump(mut b: &[u8], seq: u32) -> Result<DumpPart, NetlinkError> {
    let mut part = DumpPart::default();
    while !b.is_empty() {
        let len = u32_at(b, 0).ok_or(NetlinkError::Malformed("message header"))? as usize;
        let kind = u16_at(b, 4).ok_or(NetlinkError::Malformed("message header"))?;
        let flags = u16_at(b, 6).ok_or(NetlinkError::Malformed("message header"))?;
        let got = u32_at(b, 8).ok_or(NetlinkError::Malformed("message header"))?;
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(NetlinkError::Malformed("message length"));
        }
        let body = &b[NLMSG_HDRLEN..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        if got != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => {
                part.done = true;
                break;
            }
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).ok_or(NetlinkError::Malformed("short error"))? as i32;
                return Err(NetlinkError::Refused(-errno));
            }
            RTM_NEWLINK => {
                if let Some(l) = link(body)? {
                    part.links.push(l);
                }
            }
            _ => {}
        }
        // A dump answers in multi-part messages; one without the flag is the last.
        if flags & NLM_F_MULTI == 0 {
            part.done = true;
            break;
        }
    }
    Ok(part)
}

/// Every link of the caller's network namespace.
pub fn dump_links() -> Result<Vec<Link>, NetlinkError> {
    // NETLINK_ROUTE is protocol 0, which rustix spells `None`.
    let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
        .map_err(|e| NetlinkError::Io(e.into()))?;
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(RECV_TIMEOUT),
    )
    .map_err(|e| NetlinkError::Io(e.into()))?;
    let seq = 1;
    rustix::net::sendto(
        &fd,
        &dump_request(seq),
        SendFlags::empty(),
        &SocketAddrNetlink::new(0, 0),
    )
    .map_err(|e| NetlinkError::Io(e.into()))?;
    let mut links = Vec::new();
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())
            .map_err(|e| NetlinkError::Io(e.into()))?;
        if n == 0 {
            return Err(NetlinkError::Malformed("the dump ended without NLMSG_DONE"));
        }
        let part = parse_dump(buf.get(..n).unwrap_or(&[]), seq)?;
        links.extend(part.links);
        if links.len() > MAX_LINKS {
            return Err(NetlinkError::TooMany);
        }
        if part.done {
            return Ok(links);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builders of fake dump bytes, as the kernel lays them out.
    fn fake_attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let len = (RTA_HDRLEN + payload.len()) as u16;
        let mut b = len.to_ne_bytes().to_vec();
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(payload);
        b.resize(align4(b.len()), 0);
        b
    }

    fn fake_msg(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + body.len()) as u32;
        let mut b = len.to_ne_bytes().to_vec();
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(body);
        b.resize(align4(b.len()), 0);
        b
    }

    fn fake_link(name: &str, kind: Option<&str>) -> Vec<u8> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body.extend(fake_attr(IFLA_IFNAME, format!("{name}\0").as_bytes()));
        if let Some(k) = kind {
            let info = fake_attr(IFLA_INFO_KIND, format!("{k}\0").as_bytes());
            body.extend(fake_attr(IFLA_LINKINFO | 0x8000, &info));
        }
        fake_msg(RTM_NEWLINK, NLM_F_MULTI, 7, &body)
    }

    fn l(name: &str, kind: Option<&str>) -> Link {
        Link {
            name: name.into(),
            kind: kind.map(String::from),
            namespace: None,
        }
    }

    #[test]
    fn the_request_is_a_link_dump() {
        let r = dump_request(9);
        assert_eq!(r.len(), 32);
        assert_eq!(u32_at(&r, 0), Some(32));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETLINK));
        assert_eq!(u16_at(&r, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(u32_at(&r, 8), Some(9));
    }

    #[test]
    fn a_fake_dump_gives_names_and_kinds() {
        let mut b = fake_link("lo", None);
        b.extend(fake_link("veth-a", Some("veth")));
        b.extend(fake_msg(RTM_NEWLINK, NLM_F_MULTI, 3, &[0u8; 16])); // another request's
        b.extend(fake_link("br0", Some("bridge")));
        let part = parse_dump(&b, 7).expect("parse");
        assert_eq!(
            part.links,
            [
                l("lo", None),
                l("veth-a", Some("veth")),
                l("br0", Some("bridge"))
            ]
        );
        assert!(!part.done);
        b.extend(fake_msg(NLMSG_DONE, NLM_F_MULTI, 7, &0u32.to_ne_bytes()));
        assert!(parse_dump(&b, 7).expect("parse").done);
    }

    #[test]
    fn a_kernel_error_is_a_refusal() {
        let mut body = (-libc::EPERM).to_ne_bytes().to_vec();
        body.extend(dump_request(7));
        let b = fake_msg(NLMSG_ERROR, 0, 7, &body);
        assert!(matches!(parse_dump(&b, 7), Err(NetlinkError::Refused(e)) if e == libc::EPERM));
    }

    #[test]
    fn malformed_fake_dumps_are_errors_never_panics() {
        let good = fake_link("veth-a", Some("veth"));
        // Every truncation, and every corrupted length byte.
        for cut in 1..good.len() {
            let _ = parse_dump(&good[..cut], 7);
        }
        for at in 0..good.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut b = good.clone();
                b[at] = v;
                let _ = parse_dump(&b, 7);
            }
        }
        let cases: &[&[u8]] = &[
            &[1, 2, 3],
            &[0xff; 16],
            &[16, 0, 0, 0, 16, 0, 2, 0, 7, 0, 0, 0],
        ];
        for b in cases {
            assert!(parse_dump(b, 7).is_err(), "{b:?}");
        }
        let long = "x".repeat(MAX_NAME + 1);
        assert!(parse_dump(&fake_link(&long, None), 7).is_err());
        let mut short = fake_msg(RTM_NEWLINK, NLM_F_MULTI, 7, &[0u8; 4]);
        assert!(parse_dump(&short, 7).is_err(), "short ifinfomsg");
        short.truncate(0);
        assert_eq!(parse_dump(&short, 7).expect("empty"), DumpPart::default());
    }

    #[test]
    fn the_dump_of_this_namespace_has_loopback() {
        // Every network namespace has lo; a host without netlink says so.
        match dump_links() {
            Ok(links) => assert!(links.iter().any(|l| l.name == "lo"), "{links:?}"),
            Err(e) => eprintln!("netlink not available here: {e}"),
        }
    }
}
