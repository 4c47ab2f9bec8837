//! The `icmp` prober: one echo request, as blackbox_exporter 0.23's `ProbeICMP`.
//!
//! The socket is, in order of preference: an unprivileged ping socket (`SOCK_DGRAM`,
//! `IPPROTO_ICMP`), which Linux allows to the groups in `net.ipv4.ping_group_range`; a raw socket,
//! which needs root or `CAP_NET_RAW`; otherwise the probe fails saying which of the two to grant.
//! `dont_fragment` needs the raw socket (IP header options), as in blackbox_exporter — here it is
//! accepted and not applied. The reply's hop limit (TTL) comes from the IP header (raw IPv4) or
//! an `IP_RECVTTL` / `IPV6_RECVHOPLIMIT` control message.
//!
//! Blocking socket calls run on the blocking pool with a receive timeout bounded by the probe's
//! deadline, so a lost reply never holds a thread beyond it.

use super::net::{remaining, resolve};
use super::record::Recorder;
use crate::config::blackbox::Module;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::time::Instant as Deadline;

const PAYLOAD: &[u8] = b"Prometheus Blackbox Exporter";

fn phase(rec: &mut Recorder, name: &'static str, seconds: f64) {
    rec.add_labels("probe_icmp_duration_seconds", vec![("phase", name.to_owned())], seconds);
}

pub async fn probe(target: &str, module: &Module, deadline: Deadline, rec: &mut Recorder) -> bool {
    let cfg = &module.icmp;
    let (ip, lookup) = match resolve(target, cfg.preferred_ip_protocol.as_deref(), cfg.ip_protocol_fallback, rec).await
    {
        Ok(r) => r,
        Err(e) => return rec.fail("resolve", format!("Error resolving address: {e}")),
    };
    phase(rec, "resolve", lookup);
    let mut payload = PAYLOAD.to_vec();
    if let Some(n) = cfg.payload_size
        && n > 0
    {
        payload = vec![0u8; n];
        let k = n.min(PAYLOAD.len());
        payload[..k].copy_from_slice(&PAYLOAD[..k]);
    }
    let ttl = cfg.ttl.unwrap_or(64);
    let seq = fastrand::u16(..);
    let id = (std::process::id() & 0xffff) as u16;
    let wait = remaining(deadline);
    rec.log(format!("Creating socket and sending echo request: ip={ip} seq={seq} ttl={ttl}"));
    let joined = tokio::task::spawn_blocking(move || ping(ip, id, seq, ttl, &payload, wait)).await;
    let outcome = match joined {
        Ok(o) => o,
        Err(e) => return rec.fail("icmp_socket", format!("ping task failed: {e}")),
    };
    if let Some(setup) = outcome.setup {
        phase(rec, "setup", setup);
    }
    if let Some(kind) = outcome.socket_kind {
        rec.log(format!("Using {kind} socket"));
    }
    match outcome.result {
        Ok((rtt, hop_limit)) => {
            phase(rec, "rtt", rtt);
            if let Some(h) = hop_limit {
                rec.set("probe_icmp_reply_hop_limit", f64::from(h));
            }
            rec.log("Found matching reply packet");
            true
        }
        Err((reason, message)) => rec.fail(reason, message),
    }
}

struct Outcome {
    setup: Option<f64>,
    socket_kind: Option<&'static str>,
    result: Result<(f64, Option<u8>), (&'static str, String)>,
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 { u16::from_be_bytes([chunk[0], chunk[1]]) } else { u16::from(chunk[0]) << 8 };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn open(ip: IpAddr) -> Result<(Socket, bool), String> {
    let (domain, protocol) =
        if ip.is_ipv4() { (Domain::IPV4, Protocol::ICMPV4) } else { (Domain::IPV6, Protocol::ICMPV6) };
    match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(s) => Ok((s, false)),
        Err(dgram) => Socket::new(domain, Type::RAW, Some(protocol)).map(|s| (s, true)).map_err(|raw| {
            format!(
                "cannot open an ICMP socket: unprivileged ping socket: {dgram} (allow this group in \
                 net.ipv4.ping_group_range); raw socket: {raw} (needs root or CAP_NET_RAW)"
            )
        }),
    }
}

fn set_int(fd: i32, level: i32, name: i32, value: i32) {
    // SAFETY: `value` outlives the call and its size is passed; a failure only loses the hop
    // limit metric.
    unsafe {
        libc::setsockopt(fd, level, name, (&value as *const i32).cast(), std::mem::size_of::<i32>() as libc::socklen_t);
    }
}

fn ping(ip: IpAddr, id: u16, seq: u16, ttl: u32, payload: &[u8], wait: Duration) -> Outcome {
    let started = Instant::now();
    let (socket, raw) = match open(ip) {
        Ok(s) => s,
        Err(e) => return Outcome { setup: None, socket_kind: None, result: Err(("icmp_socket", e)) },
    };
    let fd = socket.as_raw_fd();
    let v4 = ip.is_ipv4();
    if v4 {
        let _ = socket.set_ttl_v4(ttl);
        set_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1);
    } else {
        let _ = socket.set_unicast_hops_v6(ttl);
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1);
    }
    let mut packet = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    if v4 {
        let c = checksum(&packet);
        packet[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let setup = started.elapsed().as_secs_f64();
    let kind = if raw { "raw" } else { "unprivileged ping (SOCK_DGRAM)" };
    let result = exchange(&socket, raw, v4, ip, id, seq, &packet, payload, wait);
    Outcome { setup: Some(setup), socket_kind: Some(kind), result }
}

#[allow(clippy::too_many_arguments)]
fn exchange(
    socket: &Socket,
    raw: bool,
    v4: bool,
    ip: IpAddr,
    id: u16,
    seq: u16,
    packet: &[u8],
    payload: &[u8],
    wait: Duration,
) -> Result<(f64, Option<u8>), (&'static str, String)> {
    let deadline = Instant::now() + wait;
    let rtt_start = Instant::now();
    socket
        .send_to(packet, &SockAddr::from(SocketAddr::new(ip, 0)))
        .map_err(|e| ("icmp_socket", format!("Error writing to socket: {e}")))?;
    let fd = socket.as_raw_fd();
    let mut buf = vec![0u8; 65536];
    // At most 1000 packets looked at: other pings' traffic on a raw socket is skipped.
    for _ in 0..1000 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = socket.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let mut control = [0u8; 256];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: zeroed msghdr is a valid empty header; the pointers set below stay valid for
        // the call (`iov`, `buf`, `control` live on this frame).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        // SAFETY: fd is an open socket owned by `socket`; msg points to valid buffers.
        let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
                break;
            }
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(("icmp_reply", format!("Error reading from socket: {e}")));
        }
        let data = &buf[..n as usize];
        let (icmp, mut hop) = if raw && v4 {
            let ihl = usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4;
            (data.get(ihl..).unwrap_or(&[]), data.get(8).copied())
        } else {
            (data, None)
        };
        let reply_type = if v4 { 0 } else { 129 };
        if icmp.len() < 8 || icmp[0] != reply_type || icmp[1] != 0 {
            continue;
        }
        let (rid, rseq) = (u16::from_be_bytes([icmp[4], icmp[5]]), u16::from_be_bytes([icmp[6], icmp[7]]));
        // A ping socket's id is the kernel's choice (and filtered by it); a raw socket sees all.
        if rseq != seq || (raw && rid != id) || &icmp[8..] != payload {
            continue;
        }
        let rtt = rtt_start.elapsed().as_secs_f64();
        if hop.is_none() {
            hop = control_hop_limit(&msg);
        }
        return Ok((rtt, hop));
    }
    Err(("icmp_reply", format!("no echo reply from {ip} before the timeout")))
}

/// The TTL / hop limit carried in a control message of `msg`, if any.
fn control_hop_limit(msg: &libc::msghdr) -> Option<u8> {
    // SAFETY: CMSG_* walk the control buffer recvmsg filled, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let is_ttl = (c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_TTL)
                || (c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_HOPLIMIT);
            if is_ttl {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
                return u8::try_from(v).ok();
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_packet() {
        // Echo request, id 1, seq 1, no payload: 0xf7fd.
        assert_eq!(checksum(&[8, 0, 0, 0, 0, 1, 0, 1]), 0xf7fd);
    }
}
