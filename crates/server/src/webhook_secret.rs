//! A webhook signing secret and the Standard Webhooks signature it makes
//! (<https://www.standardwebhooks.com>): `whsec_<base64 of the key bytes>`, and
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
//!
//! A signature needs the secret itself, so it is stored as it is (not hashed); it is never
//! logged, and `Debug` shows none of it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const PREFIX: &str = "whsec_";
/// 32 random bytes: HMAC-SHA256's block of strength.
const SECRET_BYTES: usize = 32;
/// Standard Webhooks asks for 24 to 64 bytes.
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;

/// The key a message is signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads `whsec_<base64>` (24 to 64 bytes once decoded).
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("a webhook secret reads {PREFIX}<base64>"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "the part after whsec_ is not base64".to_owned())?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
            return Err(format!(
                "a webhook secret holds {MIN_BYTES} to {MAX_BYTES} bytes, not {}",
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// The secret as the receiver configures it: `whsec_<base64>`. Show it only to its holder.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` header's value for message `id` sent at `timestamp` (unix
    /// seconds) with `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn round_trips_and_hides_itself() {
        let secret = WebhookSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
        for bad in ["", "whsec_", "whsec_!!!", "sk_AAAA", "whsec_AAAA"] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad:?}");
        }
    }
}
