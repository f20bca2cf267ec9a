//! The identifier rules in the spec: which values have a normal form, as JSON Schema patterns.
//!
//! A value with no normal form is left out, not refused, and a request is refused only when no
//! value of any group is left (`input.rs`). So the spec does not constrain each value: it says,
//! with `contains`, that `multi_identifiers` holds at least one group with at least one usable
//! value. "Usable" is `normalization::normal_form` accepting it; the patterns below state that
//! rule, and the tests at the bottom hold them to it so they cannot drift apart.
//!
//! Character classes that depend on Unicode tables (what `str::trim` strips, what counts as a
//! letter or digit of an address, what still lower-cases to two bytes) are computed from the same
//! functions the server runs, over every character. Escapes are `\xHH`, `\uHHHH` and
//! `\UHHHHHHHH`, which Python's `re` (the fuzzer's) and the `regex` crate (the tests') read alike.

use std::fmt::Write as _;
use std::sync::LazyLock;

use icp_contract::{HashType, IdType};
use serde_json::{Value, json};

use crate::normalization::{MAX_VALUE_LEN, normal_form};

/// The pattern a single value of `(id_type, hash)` matches when it has a normal form (together
/// with `maxLength` `MAX_VALUE_LEN`); `None` for a pair that is refused whole (hashed addresses).
pub fn value_pattern(id_type: IdType, hash: HashType) -> Option<String> {
    let c = &CLASSES;
    let any = r"[^\x00]";
    Some(match (id_type, hash) {
        (IdType::Address, HashType::Plaintext) => {
            format!("^{any}*{}{any}*$", c.address_word)
        }
        (IdType::Address, _) => return None,
        (_, HashType::Md5 | HashType::Sha1 | HashType::Sha256) => format!(
            "^{ws}*[0-9a-fA-F]{{{}}}{ws}*$",
            2 * icp_contract::digest_len(hash),
            ws = c.space
        ),
        // Ten ASCII digits, or eleven starting with the country code 1, among anything else.
        (IdType::Phone, HashType::Plaintext) => {
            let other = r"[^0-9\x00]";
            format!("^{other}*(?:1{other}*)?(?:[0-9]{other}*){{10}}$")
        }
        // Trimmed, it holds an `@` and lower-cases to at least 3 bytes: three characters, or
        // `@` beside one that lower-cases to two bytes or more.
        (IdType::Email, HashType::Plaintext) => {
            let (ws, solid, wide) = (&c.space, &c.solid, &c.email_wide);
            format!(
                "^{ws}*(?:@{any}+{solid}|{solid}{any}*@{any}*{solid}|{solid}{any}+@|@{wide}|{wide}@){ws}*$"
            )
        }
        // Anything but white space, once trimmed.
        (IdType::Maid, HashType::Plaintext) => format!("^{any}*{}{any}*$", c.solid),
    })
}

/// A string that is not all white space (`str::trim` leaves something): the pattern of a
/// feedback message.
pub fn not_blank_pattern() -> String {
    CLASSES.not_space.clone()
}

/// The class of what `str::trim` strips, as `[…]`.
pub fn space_class() -> String {
    CLASSES.space.clone()
}

/// The groups of `IdentifierGroup` whose values may hold a usable one, each with the pattern
/// its values must match: the schema `multi_identifiers` must `contain` at least once.
pub fn usable_group_schema() -> Value {
    let mut variants = Vec::new();
    for hash in HashType::ALL {
        let ids: Vec<IdType> = IdType::ALL
            .into_iter()
            .filter(|&t| value_pattern(t, hash).is_some())
            .collect();
        // One variant per distinct pattern: hashed values have one pattern for every type.
        let mut by_pattern: Vec<(String, Vec<&str>)> = Vec::new();
        for t in ids {
            let pattern = value_pattern(t, hash).unwrap_or_default();
            match by_pattern.iter_mut().find(|(p, _)| *p == pattern) {
                Some((_, names)) => names.push(t.as_str()),
                None => by_pattern.push((pattern, vec![t.as_str()])),
            }
        }
        for (pattern, names) in by_pattern {
            variants.push(json!({
                "type": "object",
                "required": ["id_type", "hash_type", "values"],
                "properties": {
                    "id_type": {"enum": names},
                    "hash_type": {"const": hash.as_str()},
                    "values": {
                        "type": "array",
                        "contains": {"type": "string", "maxLength": MAX_VALUE_LEN, "pattern": pattern},
                    },
                },
            }));
        }
    }
    json!({
        "description": "A group with at least one value that has a normal form (see `normalization`).",
        "anyOf": variants,
    })
}

/// The character classes, computed once from the functions the server runs.
struct Classes {
    /// What `str::trim` strips.
    space: String,
    /// Neither white space nor NUL.
    solid: String,
    /// Not white space.
    not_space: String,
    /// A character that makes an address: a Unicode letter or digit.
    address_word: String,
    /// A character that, beside an `@`, makes an email: it lower-cases to two bytes or more.
    email_wide: String,
}

static CLASSES: LazyLock<Classes> = LazyLock::new(|| Classes {
    space: class(char::is_whitespace),
    solid: class(|c| c != '\0' && !c.is_whitespace()),
    not_space: class(|c| !c.is_whitespace()),
    address_word: class(|c| {
        normal_form(IdType::Address, HashType::Plaintext, &c.to_string()).is_ok()
    }),
    email_wide: class(|c| {
        normal_form(IdType::Email, HashType::Plaintext, &format!("@{c}")).is_ok()
    }),
});

/// The regex character class of every character `pred` holds for. A class that holds most of
/// Unicode is written negated, as what it leaves out: the fuzzer's regex generator enumerates
/// the characters of a positive range one by one, and a million of them make it crawl.
fn class(pred: impl Fn(char) -> bool) -> String {
    let hits = (0..=0x10_FFFFu32)
        .filter(|&c| char::from_u32(c).is_some_and(&pred))
        .count();
    if hits > 0x8_0000 {
        format!("[^{}", &ranges(|c| !pred(c))[1..])
    } else {
        ranges(pred)
    }
}

/// `[…]` listing the ranges of characters `pred` holds for.
fn ranges(pred: impl Fn(char) -> bool) -> String {
    let mut out = String::from("[");
    let mut start: Option<u32> = None;
    for code in 0..=0x11_0000u32 {
        let hit = code < 0x11_0000 && char::from_u32(code).is_some_and(&pred);
        match (hit, start) {
            (true, None) => start = Some(code),
            (false, Some(from)) => {
                push_escaped(&mut out, from);
                if code - 1 > from {
                    if code - 1 > from + 1 {
                        out.push('-');
                    }
                    push_escaped(&mut out, code - 1);
                }
                start = None;
            }
            _ => {}
        }
    }
    out.push(']');
    out
}

fn push_escaped(out: &mut String, code: u32) {
    let _ = match code {
        0..=0xFF => write!(out, "\\x{code:02X}"),
        0x100..=0xFFFF => write!(out, "\\u{code:04X}"),
        _ => write!(out, "\\U{code:08X}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    fn patterns() -> Vec<(IdType, HashType, Regex)> {
        let mut out = Vec::new();
        for id_type in IdType::ALL {
            for hash in HashType::ALL {
                if let Some(p) = value_pattern(id_type, hash) {
                    out.push((id_type, hash, Regex::new(&p).unwrap()));
                }
            }
        }
        out
    }

    /// The spec's verdict on one value: the pattern and `maxLength`.
    fn spec_accepts(re: &Regex, value: &str) -> bool {
        value.chars().count() <= MAX_VALUE_LEN && re.is_match(value)
    }

    fn agree(patterns: &[(IdType, HashType, Regex)], value: &str) -> Result<(), String> {
        for (id_type, hash, re) in patterns {
            let server = normal_form(*id_type, *hash, value).is_ok();
            if spec_accepts(re, value) != server {
                return Err(format!(
                    "{id_type:?}/{hash:?} on {value:?}: server {server}, spec {}",
                    !server
                ));
            }
        }
        Ok(())
    }

    #[test]
    fn patterns_agree_with_normalisation_on_known_cases() {
        let p = patterns();
        let sha = "ab".repeat(32);
        for value in [
            "",
            " ",
            "\u{3000}",
            "a@b",
            "@b",
            "a@",
            "@@",
            "@@@",
            " a@b ",
            "@\u{212A}",
            "@\u{0130}",
            "\u{00E9}@",
            "a\0@b.com",
            "\0",
            "5125550134",
            "+1 (512) 555-0134",
            "15125550134",
            "25125550134",
            "555-0134",
            "1234567890\n",
            "12 Main St.",
            ",.;",
            "東京",
            "\u{1F600}",
            &sha,
            &format!(" {sha}\n"),
            &"ab".repeat(20),
            &"ab".repeat(16),
            &"x".repeat(MAX_VALUE_LEN),
            &"x".repeat(MAX_VALUE_LEN + 1),
            &format!("a@{}", "é".repeat(400)),
        ] {
            agree(&p, value).unwrap();
        }
    }

    #[test]
    fn every_usable_pair_has_a_pattern_and_hashed_addresses_none() {
        for id_type in IdType::ALL {
            for hash in HashType::ALL {
                let refused = id_type == IdType::Address && hash != HashType::Plaintext;
                assert_eq!(value_pattern(id_type, hash).is_none(), refused);
            }
        }
    }

    proptest! {
        #[test]
        fn patterns_agree_with_normalisation(
            value in "[ -~]{0,12}|[\\x00\\t\\n @.,0-9a-fA-F+()\u{85}\u{a0}\u{3000}\u{212A}\u{130}é東]{0,70}|\\PC{0,6}|[0-9 ]{9,13}"
        ) {
            let p = patterns();
            if let Err(e) = agree(&p, &value) {
                prop_assert!(false, "{}", e);
            }
        }
    }

    #[test]
    fn the_blank_pattern_is_trim() {
        let re = Regex::new(&not_blank_pattern()).unwrap();
        for s in ["", " \t\n\u{3000}", "x", " x ", "\u{85}", "\0"] {
            assert_eq!(re.is_match(s), !s.trim().is_empty(), "{s:?}");
        }
    }
}
