//! Prometheus-style durations (`15s`, `1h30m`) and byte sizes (`64MiB`) as config values.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written as Prometheus writes it: `[0-9]+(ms|s|m|h|d|w|y)` units, largest first,
/// e.g. `500ms`, `15s`, `1h30m`. `0` alone means zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// Parses the Prometheus duration syntax.
    pub fn parse(s: &str) -> Result<PromDuration, String> {
        if s == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        const UNITS: [(&str, u64); 7] = [
            ("y", 365 * 24 * 3_600_000),
            ("w", 7 * 24 * 3_600_000),
            ("d", 24 * 3_600_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ];
        let bad = || format!("invalid duration {s:?} (expected e.g. 15s, 1m30s, 500ms)");
        let mut rest = s;
        let mut total: u64 = 0;
        let mut last_unit = usize::MAX;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..letters];
            rest = &rest[letters..];
            let idx = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
            // Units must come largest first and at most once, as in Prometheus.
            if last_unit != usize::MAX && idx <= last_unit {
                return Err(bad());
            }
            last_unit = idx;
            total = n.checked_mul(UNITS[idx].1).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        }
        Ok(PromDuration(Duration::from_millis(total)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (u, n) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if ms >= n {
                write!(f, "{}{u}", ms / n)?;
                ms %= n;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(de::Error::custom)
    }
}

/// In the config reference: a string in Prometheus' duration format.
impl schemars::JsonSchema for PromDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "duration"})
    }
    fn inline_schema() -> bool {
        true
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A size in bytes: a plain number, or a number with a unit `B`, `KB`/`KiB`, `MB`/`MiB`,
/// `GB`/`GiB` (powers of 1024, as Prometheus' `body_size_limit` reads them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `64MiB`, `512KB`, `1048576`.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let bad = || format!("invalid size {s:?} (expected e.g. 64MiB, 512KB, 1048576)");
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = t[..digits].parse().map_err(|_| bad())?;
        let mult: u64 = match t[digits..].trim() {
            "" | "B" => 1,
            "KB" | "KiB" | "K" => 1 << 10,
            "MB" | "MiB" | "M" => 1 << 20,
            "GB" | "GiB" | "G" => 1 << 30,
            "TB" | "TiB" => 1 << 40,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(bad)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (u, m) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= m && n % m == 0 {
                return write!(f, "{}{u}", n / m);
            }
        }
        write!(f, "{n}B")
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(de::Error::custom),
        }
    }
}

/// In the config reference: a size with a unit.
impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "size"})
    }
    fn inline_schema() -> bool {
        true
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        let ms = |s: &str| PromDuration::parse(s).map(|d| d.0.as_millis());
        assert_eq!(ms("15s"), Ok(15_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("1m0s"), Ok(60_000));
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("2d"), Ok(172_800_000));
        for bad in ["", "15", "s", "1.5s", "30m1h", "1s1s", "-1s", "1x", "99999999999999999999y"] {
            assert!(PromDuration::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PromDuration::parse("1h30m5s").unwrap().to_string(), "1h30m5s");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(ByteSize::parse("64MiB"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("64MB"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("5PB").is_err());
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
    }
}
