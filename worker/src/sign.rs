//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.ts.body")>`,
//! the key being the base64 part of a `whsec_` secret. Several secrets (during rotation) give
//! several space-separated signatures.
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn signature(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> anyhow::Result<String> {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header value for all `secrets`.
pub fn header(
    secrets: &[String],
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> anyhow::Result<String> {
    let sigs: anyhow::Result<Vec<String>> = secrets
        .iter()
        .map(|s| signature(s, msg_id, timestamp, body))
        .collect();
    Ok(sigs?.join(" "))
}

/// Checks a `webhook-signature` header against a secret (constant-time), as a receiver would.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &str, header: &str) -> bool {
    let Ok(key) = B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)) else {
        return false;
    };
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| {
            let Ok(sig) = B64.decode(sig) else {
                return false;
            };
            let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
                return false;
            };
            mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
            mac.update(body.as_bytes());
            mac.verify_slice(&sig).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1614265330;
        let body = r#"{"test": 2432232314}"#;
        let sig = signature(secret, id, ts, body).expect("sign");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(secret, id, ts, body, &sig));
        assert!(!verify(secret, id, ts + 1, body, &sig));
        let two = header(
            &[secret.to_string(), "whsec_dGVzdHRlc3Q=".to_string()],
            id,
            ts,
            body,
        )
        .expect("header");
        assert!(
            verify(secret, id, ts, body, &two) && verify("whsec_dGVzdHRlc3Q=", id, ts, body, &two)
        );
    }
}
