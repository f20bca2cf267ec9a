//! The shape of an API key and how its secret is kept.
//!
//! A key reads `icp_<id>_<secret>`: the id (16 hex digits) is public — it names the key in
//! `icp keys list` and is the `owner` of the jobs the key creates — and the secret (32 random
//! bytes, base64url) is known only to the holder. The database keeps an Argon2id hash of the
//! secret (a PHC string), never the secret, so a copy of the database grants nothing. With 256
//! random bits a fast hash would do against guessing; Argon2id is there against whatever the
//! secret might one day be derived from, and costs one hash per key and process (see
//! `Auth`'s cache).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

const PREFIX: &str = "icp_";
const ID_HEX_LEN: usize = 16;
const SECRET_BYTES: usize = 32;
/// Base64url without padding of 32 bytes.
const SECRET_LEN: usize = 43;

/// A key just made: shown once, then only `id` and `secret_hash` remain.
pub struct IssuedKey {
    pub id: String,
    /// The whole key, `icp_<id>_<secret>`, for the `Authorization: Bearer` header.
    pub token: String,
    pub secret_hash: String,
}

/// A key as a client presented it, split but not checked.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Argon2id with the parameters OWASP recommends (19 MiB, 2 passes, 1 lane). A stored hash
/// carries its own parameters, so changing these later leaves old keys valid.
fn hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters"),
    )
}

/// Makes a new random key and the hash of its secret.
pub fn issue() -> IssuedKey {
    let mut rng = rand::rng();
    let mut id = [0u8; ID_HEX_LEN / 2];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut secret);
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let id = hex::encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    let secret_hash = hasher()
        .hash_password(secret.as_bytes(), &salt)
        .expect("Argon2 hashes any input with valid parameters")
        .to_string();
    IssuedKey {
        token: format!("{PREFIX}{id}_{secret}"),
        id,
        secret_hash,
    }
}

/// Splits `icp_<id>_<secret>`; `None` for anything else.
pub fn parse(token: &str) -> Option<PresentedKey<'_>> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, rest) = rest.split_at_checked(ID_HEX_LEN)?;
    let secret = rest.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(PresentedKey { id, secret })
}

/// Whether `secret` matches the stored hash (compared in constant time by `argon2`). A hash
/// that does not parse matches nothing.
pub fn verify(secret: &str, secret_hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(secret_hash) else {
        return false;
    };
    hasher().verify_password(secret.as_bytes(), &parsed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_key_parses_and_verifies_and_others_do_not() {
        let key = issue();
        let presented = parse(&key.token).expect("an issued key parses");
        assert_eq!(presented.id, key.id);
        assert!(key.secret_hash.starts_with("$argon2id$"));
        assert!(
            !key.secret_hash.contains(presented.secret),
            "the hash hides the secret"
        );
        assert!(verify(presented.secret, &key.secret_hash));

        let other = issue();
        assert_ne!(other.id, key.id);
        let theirs = parse(&other.token).unwrap();
        assert!(!verify(theirs.secret, &key.secret_hash));
        assert!(!verify(presented.secret, "not a hash"));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let key = issue().token;
        for bad in [
            "",
            "icp_",
            &key[..key.len() - 1],
            &format!("{key}x"),
            &key.replacen("icp_", "xyz_", 1),
            &key.replacen('_', "-", 2),
            "icp_0123456789abcdeg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "icp_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "icp_0123456789ABCDEF_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert!(
            parse("icp_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_some()
        );
    }
}
