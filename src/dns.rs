//! The DNS wire format, just what the prober and its tests need: a query, a response with its
//! three record sections, and each record printed as miekg/dns (blackbox_exporter's library)
//! prints it (`example.com.\t300\tIN\tA\t192.0.2.1`) — the text the `validate_*_rrs` regexes of
//! an existing blackbox.yml are written against.
//!
//! Hand-written rather than hickory-proto: hickory's record `Display` differs from miekg's in
//! small ways (spacing, TXT quoting, unknown types), and matching miekg's text exactly is the
//! point; the format itself is small (RFC 1035 §4, RFC 3597 for unknown types).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

const TYPES: [(&str, u16); 22] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("HINFO", 13),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("NAPTR", 35),
    ("DNAME", 39),
    ("OPT", 41),
    ("DS", 43),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("SPF", 99),
    ("AXFR", 252),
    ("ANY", 255),
    ("CAA", 257),
    ("HTTPS", 65),
];

const RCODES: [(&str, u16); 19] = [
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
    ("BADSIG", 16),
    ("BADKEY", 17),
    ("BADTIME", 18),
    ("BADMODE", 19),
    ("BADNAME", 20),
    ("BADALG", 21),
    ("BADTRUNC", 22),
    ("BADCOOKIE", 23),
];

/// A record type by name (`A`, `TYPE65`), as miekg's `StringToType` accepts it.
pub fn rr_type(name: &str) -> Option<u16> {
    TYPES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).or_else(|| name.strip_prefix("TYPE")?.parse().ok())
}

/// The name of a record type.
pub fn type_name(t: u16) -> String {
    TYPES.iter().find(|(_, v)| *v == t).map_or_else(|| format!("TYPE{t}"), |(n, _)| (*n).to_owned())
}

/// A class by name.
pub fn class(name: &str) -> Option<u16> {
    match name {
        "IN" => Some(1),
        "CS" => Some(2),
        "CH" => Some(3),
        "HS" => Some(4),
        "NONE" => Some(254),
        "ANY" => Some(255),
        _ => name.strip_prefix("CLASS")?.parse().ok(),
    }
}

fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        2 => "CS".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        other => format!("CLASS{other}"),
    }
}

/// An rcode by name.
pub fn rcode(name: &str) -> Option<u16> {
    RCODES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// The name of an rcode.
pub fn rcode_name(c: u16) -> String {
    RCODES.iter().find(|(_, v)| *v == c).map_or_else(|| c.to_string(), |(n, _)| (*n).to_owned())
}

/// A malformed message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed DNS message: {0}")]
pub struct WireError(pub &'static str);

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Fully qualified, with the trailing dot.
    pub name: String,
    pub rr_type: u16,
    pub class: u16,
    pub ttl: u32,
    /// The record data as printed by miekg/dns.
    pub data: String,
    /// The raw data (names in it already uncompressed when printed).
    pub raw: Vec<u8>,
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\t{}\t{}\t{}\t{}", self.name, self.ttl, class_name(self.class), type_name(self.rr_type), self.data)
    }
}

/// A decoded response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub rcode: u16,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// The question's name, type and class, if there was one.
    pub question: Option<(String, u16, u16)>,
}

/// `name` with a trailing dot.
pub fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in fqdn(name).trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

/// A query message.
pub fn encode_query(id: u16, name: &str, qtype: u16, qclass: u16, recursion_desired: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[if recursion_desired { 0x01 } else { 0x00 }, 0x00]);
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    push_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    out
}

/// A response (for test servers): the question copied, records' `raw` data as given, no
/// name compression.
pub fn encode_response(query: &Message, rcode: u16, sections: [&[Record]; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query.id.to_be_bytes());
    out.extend_from_slice(&[0x81, 0x80 | (rcode as u8 & 0x0f)]);
    let qd = u16::from(query.question.is_some());
    for n in [qd, sections[0].len() as u16, sections[1].len() as u16, sections[2].len() as u16] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    if let Some((name, t, c)) = &query.question {
        push_name(&mut out, name);
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&c.to_be_bytes());
    }
    for r in sections.iter().flat_map(|s| s.iter()) {
        push_name(&mut out, &r.name);
        out.extend_from_slice(&r.rr_type.to_be_bytes());
        out.extend_from_slice(&r.class.to_be_bytes());
        out.extend_from_slice(&r.ttl.to_be_bytes());
        out.extend_from_slice(&(r.raw.len() as u16).to_be_bytes());
        out.extend_from_slice(&r.raw);
    }
    out
}

/// Record data for test servers: `A`/`AAAA` from an address, names, `MX`, `TXT`, `SOA`.
pub fn rdata(rr_type: u16, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let fields: Vec<&str> = text.split_whitespace().collect();
    match rr_type {
        1 => out.extend_from_slice(&text.parse::<Ipv4Addr>().map(|a| a.octets()).unwrap_or_default()),
        28 => out.extend_from_slice(&text.parse::<Ipv6Addr>().map(|a| a.octets()).unwrap_or_default()),
        2 | 5 | 12 | 39 => push_name(&mut out, text),
        15 => {
            out.extend_from_slice(&fields.first().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0).to_be_bytes());
            push_name(&mut out, fields.get(1).copied().unwrap_or("."));
        }
        16 => {
            let b = &text.as_bytes()[..text.len().min(255)];
            out.push(b.len() as u8);
            out.extend_from_slice(b);
        }
        6 => {
            push_name(&mut out, fields.first().copied().unwrap_or("."));
            push_name(&mut out, fields.get(1).copied().unwrap_or("."));
            for f in fields.iter().skip(2).take(5) {
                out.extend_from_slice(&f.parse::<u32>().unwrap_or(0).to_be_bytes());
            }
        }
        _ => out.extend_from_slice(text.as_bytes()),
    }
    out
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, WireError> {
        let b = *self.msg.get(self.pos).ok_or(WireError("truncated"))?;
        self.pos += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from(self.u16()?) << 16 | u32::from(self.u16()?))
    }
    fn bytes(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError("truncated"))?;
        let b = self.msg.get(self.pos..end).ok_or(WireError("truncated"))?;
        self.pos = end;
        Ok(b)
    }
    /// A possibly compressed name; at most 128 pointer jumps, 255 bytes.
    fn name(&mut self) -> Result<String, WireError> {
        let mut out = String::new();
        let mut pos = self.pos;
        let mut jumped = false;
        for _ in 0..128 {
            let len = *self.msg.get(pos).ok_or(WireError("truncated name"))? as usize;
            if len & 0xc0 == 0xc0 {
                let lo = *self.msg.get(pos + 1).ok_or(WireError("truncated pointer"))? as usize;
                if !jumped {
                    self.pos = pos + 2;
                }
                jumped = true;
                pos = (len & 0x3f) << 8 | lo;
                continue;
            }
            if len == 0 {
                if !jumped {
                    self.pos = pos + 1;
                }
                if out.is_empty() {
                    out.push('.');
                }
                return Ok(out);
            }
            let label = self.msg.get(pos + 1..pos + 1 + len).ok_or(WireError("truncated label"))?;
            for &b in label {
                match b {
                    b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b' ' | b'@' | b'$' => {
                        out.push('\\');
                        out.push(b as char);
                    }
                    0x21..=0x7e => out.push(b as char),
                    _ => {
                        let _ = write!(out, "\\{b:03}");
                    }
                }
            }
            out.push('.');
            if out.len() > 1024 {
                return Err(WireError("name too long"));
            }
            pos += 1 + len;
        }
        Err(WireError("name compression loop"))
    }
}

fn quote_txt(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

fn record(r: &mut Reader<'_>) -> Result<Record, WireError> {
    let name = r.name()?;
    let rr_type = r.u16()?;
    let class = r.u16()?;
    let ttl = r.u32()?;
    let len = r.u16()? as usize;
    let start = r.pos;
    let raw = r.bytes(len)?.to_vec();
    let end = r.pos;
    // Names inside the data may point anywhere in the message: read them from there.
    let mut d = Reader { msg: &r.msg[..end], pos: start };
    let data = match rr_type {
        1 if len == 4 => Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]).to_string(),
        28 if len == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&raw);
            Ipv6Addr::from(o).to_string()
        }
        2 | 5 | 12 | 39 => d.name()?,
        15 => {
            let pref = d.u16()?;
            format!("{pref} {}", d.name()?)
        }
        16 | 99 => {
            let mut parts = Vec::new();
            while d.pos < end {
                let n = d.u8()? as usize;
                parts.push(quote_txt(d.bytes(n)?));
            }
            parts.join(" ")
        }
        6 => {
            let (ns, mbox) = (d.name()?, d.name()?);
            let v = [d.u32()?, d.u32()?, d.u32()?, d.u32()?, d.u32()?];
            format!("{ns} {mbox} {} {} {} {} {}", v[0], v[1], v[2], v[3], v[4])
        }
        33 => {
            let (p, w, port) = (d.u16()?, d.u16()?, d.u16()?);
            format!("{p} {w} {port} {}", d.name()?)
        }
        _ => {
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            if hex.is_empty() { format!("\\# {len}") } else { format!("\\# {len} {hex}") }
        }
    };
    Ok(Record { name, rr_type, class, ttl, data, raw })
}

/// Decodes a message (a response, or for test servers a query).
pub fn decode(msg: &[u8]) -> Result<Message, WireError> {
    let mut r = Reader { msg, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let (qd, an, ns, ar) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
    let mut m = Message { id, response: flags & 0x8000 != 0, rcode: flags & 0x000f, ..Message::default() };
    for i in 0..qd {
        let name = r.name()?;
        let (t, c) = (r.u16()?, r.u16()?);
        if i == 0 {
            m.question = Some((name, t, c));
        }
    }
    for (n, section) in [(an, &mut m.answers), (ns, &mut m.authority), (ar, &mut m.additional)] {
        for _ in 0..n {
            section.push(record(&mut r)?);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip_and_miekg_text() {
        let q = encode_query(7, "example.com", 1, 1, true);
        let m = decode(&q).unwrap();
        assert_eq!(m.question, Some(("example.com.".into(), 1, 1)));
        let a = Record {
            name: "example.com.".into(),
            rr_type: 1,
            class: 1,
            ttl: 300,
            data: String::new(),
            raw: rdata(1, "192.0.2.1"),
        };
        let mx = Record {
            name: "example.com.".into(),
            rr_type: 15,
            class: 1,
            ttl: 60,
            data: String::new(),
            raw: rdata(15, "10 mail.example.com"),
        };
        let txt = Record {
            name: "example.com.".into(),
            rr_type: 16,
            class: 1,
            ttl: 60,
            data: String::new(),
            raw: rdata(16, "v=spf1 \"x\""),
        };
        let soa = Record {
            name: "example.com.".into(),
            rr_type: 6,
            class: 1,
            ttl: 60,
            data: String::new(),
            raw: rdata(6, "ns.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"),
        };
        let resp = encode_response(&m, 0, [&[a, mx], &[soa], &[txt]]);
        let d = decode(&resp).unwrap();
        assert_eq!(d.id, 7);
        assert!(d.response);
        assert_eq!(d.answers[0].to_string(), "example.com.\t300\tIN\tA\t192.0.2.1");
        assert_eq!(d.answers[1].to_string(), "example.com.\t60\tIN\tMX\t10 mail.example.com.");
        assert_eq!(d.authority[0].data, "ns.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300");
        assert_eq!(d.additional[0].data, "\"v=spf1 \\\"x\\\"\"");
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let q = encode_query(1, "a.b", 1, 1, true);
        for cut in 0..q.len() {
            let _ = decode(&q[..cut]);
        }
        // A pointer to itself.
        let mut looped = q[..12].to_vec();
        looped[5] = 1;
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(decode(&looped).is_err());
    }
}
