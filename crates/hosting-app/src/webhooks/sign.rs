//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the secret is
//! `whsec_` and the base64 of the key; a message is signed as
//! `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

/// A new endpoint secret: 192 random bits, as Standard Webhooks libraries make them.
pub fn generate_secret() -> String {
    let mut key = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

#[derive(Debug, thiserror::Error)]
#[error("the stored webhook secret is not `whsec_<base64>`")]
pub struct BadSecret;

/// The `webhook-signature` header value of `body` sent as message `id` at `timestamp`
/// (Unix seconds).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|key| STANDARD.decode(key).ok())
        .ok_or(BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signed = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
            .expect("valid secret");
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_sign_and_malformed_ones_are_refused() {
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_"));
        assert!(signature(&secret, "msg_1", 1, b"{}").is_ok());
        assert!(signature("whsec_not base64!", "msg_1", 1, b"{}").is_err());
        assert!(signature("no-prefix", "msg_1", 1, b"{}").is_err());
    }
}
