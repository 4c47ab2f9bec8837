//! Listen addresses as Prometheus takes them (`--web.listen-address`): `ip:port`,
//! `[v6]:port`, `host:port` (`localhost:9443`, resolved once, an IPv4 address preferred as Go's
//! listener does; `localhost` is 127.0.0.1 without asking) and `:port` (every IPv4 interface).

use std::net::{SocketAddr, ToSocketAddrs};

/// The address `text` names, or why it names none.
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    let refuse = |why: &str| format!("{text:?} is not a listen address (ip:port, host:port or :port): {why}");
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = text.rsplit_once(':') else { return Err(refuse("no port")) };
    let port: u16 = port.parse().map_err(|_| refuse("the port is not a number from 0 to 65535"))?;
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    // RFC 6761 §6.3: `localhost` is the loopback address, whatever the resolver says (a minimal
    // root or image may have no /etc/hosts to say it).
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let found: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(|e| refuse(&e.to_string()))?.collect();
    found.iter().find(|a| a.is_ipv4()).or(found.first()).copied().ok_or_else(|| refuse("the host has no address"))
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::net::SocketAddr;

    #[test]
    fn prometheus_forms_are_taken() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(parse("127.0.0.1:9443"), Ok(a("127.0.0.1:9443")));
        assert_eq!(parse("[::1]:9443"), Ok(a("[::1]:9443")));
        assert_eq!(parse(":9443"), Ok(a("0.0.0.0:9443")));
        assert_eq!(parse("localhost:9443"), Ok(a("127.0.0.1:9443")));
        for bad in ["nowhere", "localhost:http", ":99999", "127.0.0.1"] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("{bad:?} is not a listen address")), "{e}");
        }
    }
}
