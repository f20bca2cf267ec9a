//! Identifier normalisation and hashing: the forms identifiers are matched and hashed in.
//!
//! Emails are trimmed and lower-cased, phones reduced to 10 digits (dropping `+1`, spaces and
//! punctuation), addresses lower-cased with punctuation and repeated spaces removed, mobile ad ids
//! trimmed and lower-cased. A hashed identifier is the hex digest of that normal form. Anyone who
//! sends identifiers to a provider normalises and hashes them the same way, which is why this
//! lives in the contract.
//!
//! Every function is `#[inline]`: the population engine calls them for every identifier it
//! indexes or looks up, and an inline function is compiled into its caller, so they stay as fast
//! as they were inside the engine (optimised with it, and inlined into its loops).

use crate::{HashType, IdType};

#[inline]
pub fn normalize_email(s: &str) -> Option<String> {
    normalize(IdType::Email, s)
}

/// Ten digits, or nothing. A leading country code 1 is dropped from 11 digits.
#[inline]
pub fn normalize_phone(s: &str) -> Option<String> {
    normalize(IdType::Phone, s)
}

#[inline]
pub fn normalize_address(s: &str) -> Option<String> {
    normalize(IdType::Address, s)
}

#[inline]
pub fn normalize_maid(s: &str) -> Option<String> {
    normalize(IdType::Maid, s)
}

#[inline]
pub fn normalize(id_type: IdType, s: &str) -> Option<String> {
    let mut out = String::new();
    normalize_into(id_type, s, &mut out).then_some(out)
}

/// The normal form of `s` into `out` (replacing what it held); false when `s` is not an
/// identifier of that type. Look-ups reuse one buffer instead of allocating per value.
#[inline]
pub fn normalize_into(id_type: IdType, s: &str, out: &mut String) -> bool {
    out.clear();
    normalize_append(id_type, s, out)
}

/// The normal form of `s` appended to `out`; false (and `out` as it was) when `s` is not an
/// identifier of that type.
#[inline]
pub fn normalize_append(id_type: IdType, s: &str, out: &mut String) -> bool {
    let start = out.len();
    let ok = match id_type {
        IdType::Email => {
            trimmed_lower_append(s, out);
            out.len() - start >= 3 && out[start..].contains('@')
        }
        IdType::Phone => phone_append(s, out),
        IdType::Address => address_append(s, out),
        IdType::Maid => {
            trimmed_lower_append(s, out);
            out.len() > start
        }
    };
    if !ok {
        out.truncate(start);
    }
    ok
}

/// Trimmed and lower-cased (ASCII, the usual case, without Unicode case tables).
#[inline]
fn trimmed_lower_append(s: &str, out: &mut String) {
    let t = s.trim();
    if t.is_ascii() {
        let start = out.len();
        out.push_str(t);
        out[start..].make_ascii_lowercase();
    } else {
        out.extend(t.chars().flat_map(char::to_lowercase));
    }
}

#[inline]
fn phone_append(s: &str, out: &mut String) -> bool {
    let mut digits = [0u8; 11];
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        if n == digits.len() {
            return false;
        }
        digits[n] = b;
        n += 1;
    }
    let d = match n {
        11 if digits[0] == b'1' => &digits[1..],
        10 => &digits[..10],
        _ => return false,
    };
    out.push_str(std::str::from_utf8(d).unwrap_or_default());
    true
}

/// Words (runs of alphanumerics) lower-cased, joined by single spaces.
#[inline]
fn address_append(s: &str, out: &mut String) -> bool {
    let start = out.len();
    let mut gap = false;
    if s.is_ascii() {
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() {
                if gap && out.len() > start {
                    out.push(' ');
                }
                gap = false;
                out.push(char::from(b.to_ascii_lowercase()));
            } else {
                gap = true;
            }
        }
    } else {
        for c in s.chars() {
            if c.is_alphanumeric() {
                if gap && out.len() > start {
                    out.push(' ');
                }
                gap = false;
                out.extend(c.to_lowercase());
            } else {
                gap = true;
            }
        }
    }
    out.len() > start
}

/// Why a submitted identifier has no normal form. `code` is the stable name reports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// Nothing but white space.
    Empty,
    /// A plaintext email without `@` (or shorter than `a@b`).
    NotAnEmail,
    /// A plaintext phone that is not 10 digits (11 with a leading country code 1).
    NotAPhone,
    /// A plaintext address with no letters or digits.
    NotAnAddress,
    /// A hashed value with characters other than hex digits.
    NotHex,
    /// Hex digits, but not as many as the hash type's digest has.
    WrongDigestLength,
}

impl Rejection {
    pub fn code(self) -> &'static str {
        match self {
            Rejection::Empty => "empty",
            Rejection::NotAnEmail => "not_an_email",
            Rejection::NotAPhone => "not_a_phone",
            Rejection::NotAnAddress => "not_an_address",
            Rejection::NotHex => "not_hex",
            Rejection::WrongDigestLength => "wrong_digest_length",
        }
    }
}

/// The form an identifier is sent to a provider in: plaintext values in their normal form,
/// hashed values as lower-case hex of their digest's length (surrounding space removed).
pub fn normalize_identifier(
    id_type: IdType,
    hash: HashType,
    value: &str,
) -> Result<String, Rejection> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Rejection::Empty);
    }
    if hash == HashType::Plaintext {
        return normalize(id_type, trimmed).ok_or(match id_type {
            IdType::Email => Rejection::NotAnEmail,
            IdType::Phone => Rejection::NotAPhone,
            IdType::Address => Rejection::NotAnAddress,
            IdType::Maid => Rejection::Empty,
        });
    }
    if !trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Rejection::NotHex);
    }
    if trimmed.len() != 2 * digest_len(hash) {
        return Err(Rejection::WrongDigestLength);
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// The hex digest of an already-normalised identifier (`plaintext` returns it unchanged).
#[inline]
pub fn digest_hex(hash: HashType, normal: &str) -> String {
    match hash {
        HashType::Plaintext => normal.to_owned(),
        _ => hex::encode(digest(hash, normal).as_bytes()),
    }
}

/// A digest of at most 32 bytes, held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DigestBytes {
    bytes: [u8; 32],
    len: usize,
}

impl DigestBytes {
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The digest of an already-normalised identifier (empty for `plaintext`).
#[inline]
pub fn digest(hash: HashType, normal: &str) -> DigestBytes {
    use sha2::Digest;
    let mut out = DigestBytes {
        bytes: [0; 32],
        len: digest_len(hash),
    };
    let d = &mut out.bytes[..out.len];
    match hash {
        HashType::Plaintext => {}
        HashType::Md5 => d.copy_from_slice(&md5::Md5::digest(normal.as_bytes())),
        HashType::Sha1 => d.copy_from_slice(&sha1::Sha1::digest(normal.as_bytes())),
        HashType::Sha256 => d.copy_from_slice(&sha2::Sha256::digest(normal.as_bytes())),
    }
    out
}

/// Bytes in a digest of this hash type (0 for `plaintext`).
#[inline]
pub fn digest_len(hash: HashType) -> usize {
    match hash {
        HashType::Plaintext => 0,
        HashType::Md5 => 16,
        HashType::Sha1 => 20,
        HashType::Sha256 => 32,
    }
}

/// Hex (either case) of exactly `len` bytes, as `hex::decode` reads it.
#[inline]
pub fn decode_digest(s: &str, len: usize) -> Option<DigestBytes> {
    #[inline]
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() != 2 * len {
        return None;
    }
    let mut out = DigestBytes {
        bytes: [0; 32],
        len,
    };
    for (o, pair) in out.bytes.iter_mut().zip(s.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize_email("  Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert!(normalize_email("nobody").is_none());
        assert_eq!(normalize_phone("+1 (512) 555-0134").unwrap(), "5125550134");
        assert_eq!(normalize_phone("512.555.0134").unwrap(), "5125550134");
        assert!(normalize_phone("555-0134").is_none());
        assert!(normalize_phone("25125550134").is_none());
        assert_eq!(
            normalize_address("12  Main St., Austin, TX 78701").unwrap(),
            "12 main st austin tx 78701"
        );
        assert!(normalize_address(" ,. ").is_none());
    }

    #[test]
    fn identifiers_take_the_form_they_are_sent_in() {
        let n = |t, h, v| normalize_identifier(t, h, v);
        assert_eq!(
            n(IdType::Email, HashType::Plaintext, " A@B.Com "),
            Ok("a@b.com".to_owned())
        );
        assert_eq!(
            n(IdType::Phone, HashType::Plaintext, "+1 (512) 555-0134"),
            Ok("5125550134".to_owned())
        );
        assert_eq!(
            n(IdType::Phone, HashType::Plaintext, "555-0134"),
            Err(Rejection::NotAPhone)
        );
        assert_eq!(
            n(IdType::Email, HashType::Plaintext, "nobody"),
            Err(Rejection::NotAnEmail)
        );
        assert_eq!(
            n(IdType::Maid, HashType::Plaintext, "  "),
            Err(Rejection::Empty)
        );
        assert_eq!(
            n(IdType::Address, HashType::Plaintext, ",.;"),
            Err(Rejection::NotAnAddress)
        );
        let upper = "55502F40DC8B7C769880B10874ABC9D0";
        assert_eq!(
            n(IdType::Email, HashType::Md5, upper),
            Ok(upper.to_ascii_lowercase())
        );
        assert_eq!(
            n(IdType::Email, HashType::Sha256, upper),
            Err(Rejection::WrongDigestLength)
        );
        assert_eq!(
            n(IdType::Email, HashType::Md5, "xyz"),
            Err(Rejection::NotHex)
        );
    }

    /// The straightforward forms the buffered, ASCII-fast normalisers must equal.
    mod reference {
        pub fn email(s: &str) -> Option<String> {
            let e = s.trim().to_lowercase();
            (e.len() >= 3 && e.contains('@')).then_some(e)
        }
        pub fn phone(s: &str) -> Option<String> {
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            let d = match digits.len() {
                11 if digits.starts_with('1') => &digits[1..],
                10 => &digits[..],
                _ => return None,
            };
            Some(d.to_owned())
        }
        pub fn address(s: &str) -> Option<String> {
            let mut out = String::new();
            for word in s
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.extend(word.chars().flat_map(char::to_lowercase));
            }
            (!out.is_empty()).then_some(out)
        }
        pub fn maid(s: &str) -> Option<String> {
            let m = s.trim().to_lowercase();
            (!m.is_empty()).then_some(m)
        }
    }

    proptest::proptest! {
        #[test]
        fn normalisers_equal_their_reference(s in "[ -~]{0,24}|\\PC{0,16}|[+1 ().0-9-]{0,16}") {
            proptest::prop_assert_eq!(normalize_email(&s), reference::email(&s));
            proptest::prop_assert_eq!(normalize_phone(&s), reference::phone(&s));
            proptest::prop_assert_eq!(normalize_address(&s), reference::address(&s));
            proptest::prop_assert_eq!(normalize_maid(&s), reference::maid(&s));
        }

        #[test]
        fn digest_decoding_equals_hex_decode(s in "[0-9a-fA-F]{30,34}|[0-9a-gA-G]{32}|\\PC{0,34}") {
            for len in [16, 20, 32] {
                let ours = decode_digest(&s, len).map(|d| d.as_bytes().to_vec());
                let theirs = hex::decode(&s).ok().filter(|b| b.len() == len);
                proptest::prop_assert_eq!(ours, theirs);
            }
        }
    }

    #[test]
    fn normalisers_handle_unicode_like_their_reference() {
        for s in [
            " Ünïcode@Exämple.COM ",
            "İstanbul Cd. 5, İzmir",
            "ＡＢＣ １２３",
            "\u{2003}x@y\u{2003}",
            "ß@straße.de",
        ] {
            assert_eq!(normalize_email(s), reference::email(s));
            assert_eq!(normalize_address(s), reference::address(s));
            assert_eq!(normalize_maid(s), reference::maid(s));
            assert_eq!(normalize_phone(s), reference::phone(s));
        }
    }

    #[test]
    fn digests_are_lower_hex_of_the_normal_form() {
        assert_eq!(
            digest_hex(HashType::Md5, "test@example.com"),
            "55502f40dc8b7c769880b10874abc9d0"
        );
        assert_eq!(
            digest_hex(HashType::Sha1, "abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest_hex(HashType::Sha256, "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
