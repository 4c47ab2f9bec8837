//! Resolving and addressing a probe's target as blackbox_exporter does.

use super::record::Recorder;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// blackbox_exporter's `probe_ip_addr_hash`: FNV-1a (32 bit) of the address' bytes (4 for IPv4).
pub fn ip_hash(ip: IpAddr) -> f64 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    f64::from(h)
}

/// Resolves `host` as blackbox_exporter's `chooseProtocol` does: the preferred family (`ip4`,
/// else IPv6), the other when allowed and the preferred has no address. Records
/// `probe_ip_protocol`, `probe_ip_addr_hash` and `probe_dns_lookup_time_seconds`; returns the
/// address and the lookup time.
pub async fn resolve(
    host: &str,
    preferred: Option<&str>,
    fallback: bool,
    rec: &mut Recorder,
) -> Result<(IpAddr, f64), String> {
    rec.set("probe_ip_protocol", 0.0);
    rec.set("probe_ip_addr_hash", 0.0);
    let want_v4 = preferred == Some("ip4");
    rec.log(format!("Resolving target address: target={host} ip_protocol={}", if want_v4 { "ip4" } else { "ip6" }));
    let started = Instant::now();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let looked_up: Result<Vec<IpAddr>, String> = match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(vec![ip]),
        Err(_) => tokio::net::lookup_host((bare, 0))
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .map_err(|e| format!("lookup {bare}: {e}")),
    };
    let took = started.elapsed().as_secs_f64();
    rec.set("probe_dns_lookup_time_seconds", took);
    let ips = looked_up?;
    let preferred_ip = ips.iter().find(|ip| ip.is_ipv4() == want_v4);
    let chosen = match preferred_ip {
        Some(ip) => Some((*ip, if want_v4 { 4.0 } else { 6.0 })),
        None if fallback => ips.first().map(|ip| (*ip, if ip.is_ipv4() { 4.0 } else { 6.0 })),
        None => None,
    };
    let Some((ip, proto)) = chosen else {
        return Err(format!("unable to find ip; no fallback (resolved {ips:?})"));
    };
    rec.log(format!("Resolved target address: target={host} ip={ip}"));
    rec.set("probe_ip_protocol", proto);
    rec.set("probe_ip_addr_hash", ip_hash(ip));
    Ok((ip, took))
}

/// Splits `host:port` (`[v6]:port` too).
pub fn split_host_port(target: &str) -> Option<(&str, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

/// The time left before `deadline`.
pub fn remaining(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}
