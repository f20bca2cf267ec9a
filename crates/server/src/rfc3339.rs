//! RFC 3339 timestamps for the API, written by hand for UTC.
//!
//! A job's detail carries a timestamp per stage and one per provider trace — well over a hundred
//! for a large job, on every poll — and `time`'s general formatter costs several times more than
//! writing the digits. The output is exactly `time`'s `Rfc3339` (fraction trimmed of trailing
//! zeros, `Z` for UTC); other offsets and years outside 0–9999 go through `time` itself.
//! Reading goes through `time`.

use serde::{Deserializer, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The timestamp as RFC 3339 text.
pub fn format(at: &OffsetDateTime) -> String {
    if !at.offset().is_utc() || !(0..=9999).contains(&at.year()) {
        return at.format(&Rfc3339).unwrap_or_default();
    }
    let mut out = String::with_capacity(30);
    let two = |out: &mut String, n: u8| {
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    };
    let year = at.year() as u32;
    for d in [year / 1000, year / 100 % 10, year / 10 % 10, year % 10] {
        out.push(char::from(b'0' + d as u8));
    }
    out.push('-');
    two(&mut out, u8::from(at.month()));
    out.push('-');
    two(&mut out, at.day());
    out.push('T');
    two(&mut out, at.hour());
    out.push(':');
    two(&mut out, at.minute());
    out.push(':');
    two(&mut out, at.second());
    let mut nanos = at.nanosecond();
    if nanos != 0 {
        let mut digits = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            digits -= 1;
        }
        out.push('.');
        let text = nanos.to_string();
        for _ in text.len()..digits {
            out.push('0');
        }
        out.push_str(&text);
    }
    out.push('Z');
    out
}

pub fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(at))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    time::serde::rfc3339::deserialize(d)
}

pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_some(&super::format(at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        time::serde::rfc3339::option::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::UtcOffset;

    proptest! {
        /// Whatever the instant, the text is exactly what `time` writes.
        #[test]
        fn same_text_as_time(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000, trim in 0u32..10) {
            // `trim` zeroes low digits so every fraction length is exercised.
            let nanos = nanos / 10u32.pow(trim) * 10u32.pow(trim);
            let at = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                .replace_nanosecond(nanos % 1_000_000_000).unwrap();
            prop_assert_eq!(format(&at), at.format(&Rfc3339).unwrap());
        }
    }

    #[test]
    fn other_offsets_and_round_trips() {
        let at = OffsetDateTime::from_unix_timestamp(1_764_400_000)
            .unwrap()
            .to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
        assert_eq!(format(&at), at.format(&Rfc3339).unwrap());
        let utc = OffsetDateTime::from_unix_timestamp_nanos(1_764_400_000_120_000_000).unwrap();
        assert_eq!(format(&utc), "2025-11-29T07:06:40.12Z");
        let json = serde_json::to_string(&Wrapped { at: utc }).unwrap();
        assert_eq!(serde_json::from_str::<Wrapped>(&json).unwrap().at, utc);
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Wrapped {
        #[serde(with = "super")]
        at: OffsetDateTime,
    }
}
