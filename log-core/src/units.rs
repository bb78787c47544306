//! Human units for configuration files (feature `serde`): byte sizes as
//! `"64 MiB"`, `"4 KiB"`, `"1 GB"` or a plain integer (parsed by
//! `bytesize`; fractions round down), durations as `"7d"`, `"250ms"`,
//! `"1h 30m"` or a plain integer of milliseconds (parsed by `humantime`;
//! they must be whole milliseconds). Serialized back in the largest exact
//! unit, so a value round-trips unchanged.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

/// A byte count: an integer, or a string with a unit.
pub(crate) mod bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_bytes(*v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(BytesVisitor)
    }
}

/// A byte count that must fit in a `u32`.
pub(crate) mod bytes_u32 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_bytes(u64::from(*v)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let v = d.deserialize_any(BytesVisitor)?;
        u32::try_from(v).map_err(|_| de::Error::custom(format!("{v} bytes is too large here (at most 4 GiB - 1)")))
    }
}

/// An optional byte count (`None`: absent or null).
pub(crate) mod opt_bytes {
    use super::*;

    #[expect(clippy::ref_option, reason = "serde's `with` signature")]
    pub(crate) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&format_bytes(*v)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptVisitor(BytesVisitor))
    }
}

/// Milliseconds: an integer, or a string with units.
pub(crate) mod millis {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(Duration::from_millis(*v)).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(MillisVisitor)
    }
}

/// Optional milliseconds.
pub(crate) mod opt_millis {
    use super::*;

    #[expect(clippy::ref_option, reason = "serde's `with` signature")]
    pub(crate) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&humantime::format_duration(Duration::from_millis(*v)).to_string()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptVisitor(MillisVisitor))
    }
}

/// A `Duration` in whole milliseconds.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*v).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(MillisVisitor).map(Duration::from_millis)
    }
}

/// `n` in the largest binary unit that holds it exactly.
fn format_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, name) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {name}", n / size);
        }
    }
    format!("{n} B")
}

struct BytesVisitor;

impl Visitor<'_> for BytesVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte size: an integer, or a string such as \"64 MiB\", \"4 KiB\" or \"1 GB\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("a byte size cannot be negative ({v})")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|e| E::custom(format!("{v:?} is not a byte size ({e}); write e.g. \"64 MiB\" or 67108864")))
    }
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration: an integer of milliseconds, or a string such as \"250ms\", \"30s\" or \"7d\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let d = humantime::parse_duration(v.trim()).map_err(|e| {
            E::custom(format!("{v:?} is not a duration ({e}); write e.g. \"250ms\", \"30s\" or \"7d\""))
        })?;
        if d.subsec_nanos() % 1_000_000 != 0 {
            return Err(E::custom(format!("{v:?} is not a whole number of milliseconds")));
        }
        u64::try_from(d.as_millis()).map_err(|_| E::custom(format!("{v:?} is too long")))
    }
}

/// `None` for an absent or null value, else what `V` reads.
struct OptVisitor<V>(V);

impl<'de, V: Visitor<'de, Value = u64>> Visitor<'de> for OptVisitor<V> {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(", or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}
