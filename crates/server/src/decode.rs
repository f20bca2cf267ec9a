//! Request bodies and query strings decoded into typed values. A failure names its place (a
//! JSON pointer such as `/options/min_support`, or `query.page_size`) and never repeats the
//! strings the client sent: a customer's email in the wrong field must not come back in a
//! problem, nor reach a log through one.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Deserializer};

use crate::problem::ApiError;

/// The longest message a decoding error keeps; past it, the middle is cut.
const MAX_MESSAGE: usize = 300;

/// Deserialises a JSON body that must be an object, and nothing after it; an error names its
/// place as a JSON pointer (`/` for the whole body). A leading UTF-8 byte-order mark is skipped
/// (RFC 8259 lets a parser ignore it).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, Object<T>>(&mut *de).map_err(|e| {
        let location = json_pointer(&e.path().to_string());
        json_problem(location, e.into_inner(), body)
    })?;
    // Trailing characters (`{…} {…}`) are an error, not ignored.
    de.end()
        .map_err(|e| json_problem("/".to_owned(), e, body))?;
    Ok(value.0)
}

fn json_problem(location: String, err: serde_json::Error, body: &[u8]) -> ApiError {
    let mut message = without_strings(&err.to_string());
    if looks_like_utf16(body) {
        message.push_str("; send the body as UTF-8 (it looks like UTF-16)");
    } else if message.contains("invalid unicode code point") {
        message.push_str("; the body must be UTF-8");
    } else if message.contains("hex escape") {
        message
            .push_str("; a \\u escape must name a Unicode character (a surrogate only in a pair)");
    }
    ApiError::validation(location, message)
}

/// A struct that must come as a JSON object. serde's derived structs also accept an array of
/// their fields in order, so that `"options": []` would quietly mean every default and
/// `[["email", "plaintext", […]]]` would pass for a group.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

/// `#[serde(deserialize_with = "object")]`: the field must be a JSON object.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Object::deserialize(d).map(|o| o.0)
}

/// `#[serde(deserialize_with = "optional_object")]`: the field must be null or a JSON object.
pub fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|o| o.0))
}

/// `#[serde(deserialize_with = "objects")]`: the field must be an array of JSON objects.
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Object<T>>::deserialize(d).map(|v| v.into_iter().map(|o| o.0).collect())
}

/// `#[serde(default, deserialize_with = "some_objects")]`: absent (`None`) or an array of JSON
/// objects; null is refused, as the spec states no null.
pub fn some_objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    objects(d).map(Some)
}

/// `#[serde(default, deserialize_with = "some_object")]`: absent (`None`) or a JSON object;
/// null is refused, as the spec states no null.
pub fn some_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    object(d).map(Some)
}

/// `#[serde(deserialize_with = "whole")]`: a whole number, written `5` or `5.0`. JSON Schema's
/// `integer` is any number with no fractional part, and the spec promises that; serde's own
/// integers refuse `5.0`. A string is refused, as for any number.
pub fn whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(WholeVisitor(false, PhantomData))
}

/// `#[serde(default, deserialize_with = "optional_whole")]`: null, absent or a whole number.
pub fn optional_whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Whole<T, false>>::deserialize(d).map(|o| o.map(|w| w.0))
}

/// `#[serde(default, deserialize_with = "optional_query_whole")]`: a query parameter's whole
/// number, `5` or `5.0` (a query string holds only text).
pub fn optional_query_whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Whole<T, true>>::deserialize(d).map(|o| o.map(|w| w.0))
}

/// A whole number; `TEXT`: written as text (a query string).
struct Whole<T, const TEXT: bool>(T);

impl<'de, T: TryFrom<u64>, const TEXT: bool> Deserialize<'de> for Whole<T, TEXT> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WholeVisitor(TEXT, PhantomData))
            .map(Whole)
    }
}

/// Reads a whole number; `.0` says whether it may come as text.
struct WholeVisitor<T>(bool, PhantomData<T>);

impl<T: TryFrom<u64>> WholeVisitor<T> {
    fn fit<E: serde::de::Error>(n: u64) -> Result<T, E> {
        T::try_from(n).map_err(|_| E::custom(format!("{n} is out of range")))
    }
}

impl<T: TryFrom<u64>> Visitor<'_> for WholeVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number from 0")
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<T, E> {
        Self::fit(n)
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<T, E> {
        let n = u64::try_from(n)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))?;
        Self::fit(n)
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<T, E> {
        // Below 2^64 and whole: exactly a u64.
        if n.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&n) {
            Self::fit(n as u64)
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(n), &self))
        }
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        if !self.0 {
            return Err(E::invalid_type(
                serde::de::Unexpected::Other("a string"),
                &self,
            ));
        }
        match (s.parse::<u64>(), s.parse::<f64>()) {
            (Ok(n), _) => self.visit_u64(n),
            (_, Ok(n)) if !s.contains(['n', 'N', 'i', 'I']) => self.visit_f64(n),
            _ => Err(E::invalid_type(serde::de::Unexpected::Other("text"), &self)),
        }
    }
}

/// A UTF-16 text: a byte-order mark, or a NUL byte beside the first ASCII character.
pub fn looks_like_utf16(body: &[u8]) -> bool {
    body.starts_with(&[0xFF, 0xFE])
        || body.starts_with(&[0xFE, 0xFF])
        || body[..body.len().min(2)].contains(&0)
}

/// Deserialises a query string (absent = empty); an error names the parameter as
/// `query.<name>` (an unknown one too), or `query` when it concerns the string as a whole.
pub fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let path = e.path().to_string();
        let location = if path == "." {
            "query".to_owned()
        } else {
            format!("query.{path}")
        };
        ApiError::validation(location, without_strings(&e.into_inner().to_string()))
    })
}

/// Turns serde_path_to_error's `a.b[0].c` into the JSON pointer `/a/b/0/c`; `.` (the whole
/// body) is `/`, and a key not read yet (`?`, a syntax error where a key should be) is left out.
pub fn json_pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.').filter(|p| !p.is_empty() && *p != "?") {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            let (name, tail) = rest.split_at(open);
            if !name.is_empty() {
                out.push('/');
                out.push_str(name);
            }
            let close = tail.find(']').unwrap_or(tail.len());
            out.push('/');
            out.push_str(&tail[1..close]);
            rest = tail.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            out.push('/');
            out.push_str(rest);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A serde message without the string values it quotes (`invalid type: string "ann@x.com",
/// expected …` becomes `invalid type: a string, expected …`), at most `MAX_MESSAGE` long.
/// Field and variant names (`unknown field `x``) stay: they say what to fix.
pub fn without_strings(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(QUOTED) {
        out.push_str(&rest[..at]);
        out.push_str("a string");
        // Skip the Debug-escaped string up to its closing quote.
        let mut chars = rest[at + QUOTED.len()..].char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = at + QUOTED.len() + i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    shorten(&out, MAX_MESSAGE)
}

/// `text` cut to at most `max` characters, the cut marked with `…`.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_from_serde_path() {
        assert_eq!(
            json_pointer("multi_identifiers[0].values[3]"),
            "/multi_identifiers/0/values/3"
        );
        assert_eq!(json_pointer("options.min_support"), "/options/min_support");
        assert_eq!(json_pointer("."), "/");
        assert_eq!(json_pointer("?"), "/");
        assert_eq!(json_pointer("options.?"), "/options");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        #[serde(default, deserialize_with = "optional_object")]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: u8,
    }

    #[test]
    fn structs_come_as_objects_and_alone() {
        assert!(parse_json::<Body>(br#"{"inner": {"a": 1}}"#).is_ok());
        assert!(parse_json::<Body>(br#"{"inner": null}"#).is_ok());
        let p = parse_json::<Body>(br#"{"inner": [1]}"#)
            .unwrap_err()
            .to_problem();
        assert_eq!(p.errors[0].location, "/inner");
        assert!(
            p.errors[0].message.contains("expected a JSON object"),
            "{p:?}"
        );
        let p = parse_json::<Body>(b"[]").unwrap_err().to_problem();
        assert_eq!(p.errors[0].location, "/");
        let p = parse_json::<Body>(b"{} {}").unwrap_err().to_problem();
        assert!(p.errors[0].message.contains("trailing characters"), "{p:?}");
        let p = parse_json::<Body>(br#"{"inner": {"a": 1, "a": 2}}"#)
            .unwrap_err()
            .to_problem();
        assert_eq!(p.errors[0].location, "/inner");
        assert!(p.errors[0].message.contains("duplicate field `a`"), "{p:?}");
    }

    #[test]
    fn quoted_strings_are_left_out() {
        assert_eq!(
            without_strings(r#"invalid type: string "ann@x.com", expected a sequence"#),
            "invalid type: a string, expected a sequence"
        );
        assert_eq!(
            without_strings(r#"invalid value: string "a\"b\\", expected x at line 1 column 9"#),
            "invalid value: a string, expected x at line 1 column 9"
        );
        assert_eq!(
            without_strings("unknown field `minSupport`, expected one of `a`"),
            "unknown field `minSupport`, expected one of `a`"
        );
        // An unterminated quote drops the rest rather than repeat it.
        assert_eq!(without_strings(r#"x string "abc"#), "x a string");
        assert_eq!(without_strings(&"y".repeat(1000)).chars().count(), 300);
    }

    #[test]
    fn query_errors_name_the_parameter() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Q {
            page_size: Option<u32>,
        }
        let p = parse_query::<Q>(Some("page_size=-1"))
            .unwrap_err()
            .to_problem();
        assert_eq!(p.errors[0].location, "query.page_size");
        let p = parse_query::<Q>(Some("size=1")).unwrap_err().to_problem();
        assert_eq!(p.errors[0].location, "query.size");
        assert!(p.errors[0].message.contains("unknown field `size`"));
        assert!(parse_query::<Q>(None).is_ok());
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct W {
            #[serde(default, deserialize_with = "optional_whole")]
            n: Option<u8>,
        }
        let n = |body: &str| parse_json::<W>(body.as_bytes()).map(|w| w.n);
        assert_eq!(n(r#"{"n": 5}"#).unwrap(), Some(5));
        assert_eq!(n(r#"{"n": 5.0}"#).unwrap(), Some(5));
        assert_eq!(n(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(n("{}").unwrap(), None);
        for bad in [
            r#"{"n": 5.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": 256}"#,
            r#"{"n": "5"}"#,
            r#"{"n": 1e300}"#,
        ] {
            assert!(n(bad).is_err(), "{bad}");
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Q {
            #[serde(default, deserialize_with = "optional_query_whole")]
            n: Option<u8>,
        }
        let q = |query: &str| parse_query::<Q>(Some(query)).map(|w| w.n);
        assert_eq!(q("n=7").unwrap(), Some(7));
        assert_eq!(q("n=7.0").unwrap(), Some(7));
        assert!(q("n=7.5").is_err());
        assert!(q("n=NaN").is_err());
        assert!(q("n=x").is_err());
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let v: serde_json::Value = parse_json(b"\xEF\xBB\xBF{\"a\": 1}").unwrap();
        assert_eq!(v["a"], 1);
    }
}
