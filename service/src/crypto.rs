//! Encryption at rest for sensitive fields (AES-256-GCM, random 96-bit nonce per value) and a
//! keyed fingerprint (HMAC-SHA256) to find equal SSNs without decrypting them.
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "v1:";

pub struct Crypto {
    cipher: Aes256Gcm,
    fingerprint_key: [u8; 32],
}

impl Crypto {
    /// `key` is 32 bytes.
    pub fn new(key: &[u8; 32]) -> Self {
        let cipher = Aes256Gcm::new(key.into());
        // A separate key for fingerprints, derived so one configured secret suffices.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"clearhire/ssn-fingerprint/v1");
        let fingerprint_key = mac.finalize().into_bytes().into();
        Self {
            cipher,
            fingerprint_key,
        }
    }

    /// Parses a base64 32-byte key.
    pub fn parse_key(b64: &str) -> anyhow::Result<[u8; 32]> {
        let bytes = B64.decode(b64.trim())?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the encryption key must be 32 bytes (base64)"))
    }

    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        B64.encode(key)
    }

    pub fn seal(&self, plaintext: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<String> {
        let body = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| anyhow::anyhow!("unknown ciphertext version"))?;
        let raw = B64.decode(body)?;
        if raw.len() < 12 {
            anyhow::bail!("ciphertext too short");
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into()?;
        let pt = self
            .cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| anyhow::anyhow!("decryption failed (wrong key or corrupted value)"))?;
        Ok(String::from_utf8(pt)?)
    }

    pub fn fingerprint(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.fingerprint_key)
            .expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_nonces_differ() {
        let c = Crypto::new(&[7u8; 32]);
        let a = c.seal("123456789").expect("seal");
        let b = c.seal("123456789").expect("seal");
        assert_ne!(a, b);
        assert!(!a.contains("123456789"));
        assert_eq!(c.open(&a).expect("open"), "123456789");
        let other = Crypto::new(&[8u8; 32]);
        assert!(other.open(&a).is_err());
        assert_eq!(c.fingerprint("1"), c.fingerprint("1"));
        assert_ne!(c.fingerprint("1"), other.fingerprint("1"));
    }
}
