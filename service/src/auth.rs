//! JWT bearer tokens (HS256) and a short-lived cache of token validity, so that revocation is
//! checked against the database without a query on every request.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use entity::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::Actor;

/// The claims of a clearhire token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Partner (tenant) id.
    pub partner: String,
    /// Subject: the user id, or the token id for machine tokens.
    pub sub: String,
    /// Role at issue time; the effective role is the token row's.
    pub role: Role,
    /// Token id: the `api_tokens` row.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct TokenAuthority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    cache: Mutex<HashMap<String, (Instant, Option<Actor>)>>,
}

impl TokenAuthority {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature and expiry; says nothing of revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "the token has expired".to_string()
                }
                _ => "the token is invalid".to_string(),
            })
    }

    /// A cached verdict for a token id: `Some(Some(actor))` valid, `Some(None)` revoked,
    /// `None` unknown or stale.
    pub(crate) fn cached(&self, jti: &str, ttl: Duration) -> Option<Option<Actor>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(jti)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, actor)| actor.clone())
    }

    pub(crate) fn remember(&self, jti: &str, verdict: Option<Actor>) {
        if let Ok(mut cache) = self.cache.lock() {
            // Bounded: drop everything when it grows past what any partner set needs.
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(jti.to_string(), (Instant::now(), verdict));
        }
    }

    pub(crate) fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}
