//! The `dns` prober: blackbox_exporter 0.23's `ProbeDNS`. One query over UDP or TCP to the
//! target (`host[:port]`, port 53 by default), then the rcode and the `validate_*_rrs` rules on
//! each section, records compared as miekg/dns prints them ([`wire`]).

use crate::dns as wire;

use super::net::{resolve, split_host_port};
use super::record::Recorder;
use crate::config::blackbox::{Module, RrValidator};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant as Deadline;

fn phase(rec: &mut Recorder, name: &'static str, seconds: f64) {
    rec.set_labels("probe_dns_duration_seconds", vec![("phase", name.to_owned())], seconds);
}

pub async fn probe(target: &str, module: &Module, _deadline: Deadline, rec: &mut Recorder) -> bool {
    let cfg = &module.dns;
    for name in
        ["probe_dns_answer_rrs", "probe_dns_authority_rrs", "probe_dns_additional_rrs", "probe_dns_query_succeeded"]
    {
        rec.set(name, 0.0);
    }
    for p in ["resolve", "connect", "request"] {
        phase(rec, p, 0.0);
    }
    let qtype = match wire::rr_type(cfg.query_type.as_deref().unwrap_or("ANY")) {
        Some(t) => t,
        None => return rec.fail("dns_query", format!("Invalid query type {:?}", cfg.query_type)),
    };
    let qclass = match wire::class(cfg.query_class.as_deref().unwrap_or("IN")) {
        Some(c) => c,
        None => return rec.fail("dns_query", format!("Invalid query class {:?}", cfg.query_class)),
    };
    let tcp = match cfg.transport_protocol.as_deref().unwrap_or("udp") {
        "udp" => false,
        "tcp" => true,
        other => {
            return rec.fail(
                "dns_query",
                format!("Configuration error: Expected transport protocol udp or tcp, got {other}"),
            );
        }
    };
    if cfg.dns_over_tls {
        return rec.fail("dns_query", "dns_over_tls is not supported by promfed yet");
    }
    let (host, port) = split_host_port(target).unwrap_or((target, 53));
    let (ip, lookup) = match resolve(host, cfg.preferred_ip_protocol.as_deref(), cfg.ip_protocol_fallback, rec).await {
        Ok(r) => r,
        Err(e) => return rec.fail("resolve", format!("Error resolving address: {e}")),
    };
    phase(rec, "resolve", lookup);
    let addr = SocketAddr::new(ip, port);
    let id: u16 = fastrand::u16(..);
    let query = wire::encode_query(id, &cfg.query_name, qtype, qclass, cfg.recursion_desired);
    rec.log(format!(
        "Making DNS query: target={addr} dial_protocol={}{} query={} type={qtype} class={qclass}",
        if tcp { "tcp" } else { "udp" },
        if ip.is_ipv4() { "4" } else { "6" },
        cfg.query_name
    ));
    let started = Instant::now();
    let mut rtt = 0.0;
    let exchanged = exchange(addr, tcp, &query, &mut rtt).await;
    phase(rec, "connect", started.elapsed().as_secs_f64() - rtt);
    phase(rec, "request", rtt);
    let bytes = match exchanged {
        Ok(b) => b,
        Err(e) => return rec.fail("dns_query", format!("Error while sending a DNS query: {e}")),
    };
    let msg = match wire::decode(&bytes) {
        Ok(m) if m.id == id => m,
        Ok(_) => return rec.fail("dns_query", "Error while sending a DNS query: dns: id mismatch"),
        Err(e) => return rec.fail("dns_query", format!("Error while sending a DNS query: {e}")),
    };
    rec.log(format!("Got response: rcode={} answers={}", wire::rcode_name(msg.rcode), msg.answers.len()));
    rec.set("probe_dns_answer_rrs", msg.answers.len() as f64);
    rec.set("probe_dns_authority_rrs", msg.authority.len() as f64);
    rec.set("probe_dns_additional_rrs", msg.additional.len() as f64);
    rec.set("probe_dns_query_succeeded", 1.0);
    if qtype == 6 {
        rec.set("probe_dns_serial", 0.0);
        for r in msg.answers.iter().filter(|r| r.rr_type == 6) {
            if let Some(serial) = r.data.split_whitespace().nth(2).and_then(|s| s.parse::<f64>().ok()) {
                rec.set("probe_dns_serial", serial);
            }
        }
    }
    let valid: Vec<u16> = if cfg.valid_rcodes.is_empty() {
        vec![0]
    } else {
        cfg.valid_rcodes.iter().filter_map(|r| wire::rcode(r)).collect()
    };
    if !valid.contains(&msg.rcode) {
        return rec.fail("dns_rcode", format!("Rcode {} is not one of the valid rcodes", wire::rcode_name(msg.rcode)));
    }
    for (section, records, rules) in [
        ("Answer", &msg.answers, &cfg.validate_answer_rrs),
        ("Authority", &msg.authority, &cfg.validate_authority_rrs),
        ("Additional", &msg.additional, &cfg.validate_additional_rrs),
    ] {
        rec.log(format!("Validating {section} RRs"));
        if let Err(why) = valid_rrs(records, rules) {
            return rec.fail("dns_rrs", format!("{section} RRs validation failed: {why}"));
        }
    }
    true
}

/// blackbox_exporter's `validRRs`, including its reading of `fail_if_all_match_regexp`.
fn valid_rrs(records: &[wire::Record], v: &RrValidator) -> Result<(), String> {
    if records.is_empty() && !v.fail_if_not_matches_regexp.is_empty() {
        return Err("fail_if_not_matches_regexp specified but no RRs returned".into());
    }
    if records.is_empty() && !v.fail_if_none_matches_regexp.is_empty() {
        return Err("fail_if_none_matches_regexp specified but no RRs returned".into());
    }
    let (mut any_match, mut all_match) = (false, true);
    for r in records {
        let text = r.to_string();
        for re in &v.fail_if_matches_regexp {
            if re.0.is_match(&text) {
                return Err(format!("At least one RR matched regexp {}: {text}", re.0));
            }
        }
        for re in &v.fail_if_all_match_regexp {
            if !re.0.is_match(&text) {
                all_match = false;
            }
        }
        for re in &v.fail_if_not_matches_regexp {
            if !re.0.is_match(&text) {
                return Err(format!("At least one RR did not match regexp {}: {text}", re.0));
            }
        }
        for re in &v.fail_if_none_matches_regexp {
            if re.0.is_match(&text) {
                any_match = true;
            }
        }
    }
    // Despite its name, blackbox_exporter 0.23 fails when *not* every record matches (checked
    // against the Debian 0.23.0 binary); kept so that existing modules behave the same.
    if !v.fail_if_all_match_regexp.is_empty() && !all_match {
        return Err("Not all RRs matched regexp".into());
    }
    if !v.fail_if_none_matches_regexp.is_empty() && !any_match {
        return Err("None of the RRs did match any regexp".into());
    }
    Ok(())
}

/// Sends `query` and returns the response bytes; `rtt` gets the time from sending to the
/// response (miekg's rtt, which excludes dialing).
async fn exchange(addr: SocketAddr, tcp: bool, query: &[u8], rtt: &mut f64) -> std::io::Result<Vec<u8>> {
    if tcp {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let sent = Instant::now();
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        s.write_all(&framed).await?;
        let len = s.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await?;
        *rtt = sent.elapsed().as_secs_f64();
        Ok(buf)
    } else {
        let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
        let s = tokio::net::UdpSocket::bind(bind).await?;
        s.connect(addr).await?;
        let sent = Instant::now();
        s.send(query).await?;
        let mut buf = vec![0u8; 65535];
        let n = s.recv(&mut buf).await?;
        *rtt = sent.elapsed().as_secs_f64();
        buf.truncate(n);
        Ok(buf)
    }
}
