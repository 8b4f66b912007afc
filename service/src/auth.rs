//! JWT bearer tokens (HS256) and a short-lived cache of token validity, so that revocation is
//! checked against the database without a query on every request.
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Counts this process's revocations and role changes: a verdict loaded from the database
    /// before one of them may be stale, and is not cached ([`TokenAuthority::remember_loaded`]).
    changes: AtomicU64,
}

impl TokenAuthority {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Tokens are issued and checked by this deployment's own clocks: no leeway, so a token
        // is refused from the second it expires.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            cache: Mutex::new(HashMap::new()),
            changes: AtomicU64::new(0),
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

    /// Where the process's revocations and role changes stand, before a verdict is loaded.
    pub(crate) fn changes_seen(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Caches a verdict loaded from the database, unless a revocation or role change happened
    /// in this process since `seen` ([`Self::changes_seen`] before the load): the load may have
    /// read the row before it, and would put back what the change took out.
    pub(crate) fn remember_loaded(&self, jti: &str, verdict: Option<Actor>, seen: u64) {
        if let Ok(mut cache) = self.cache.lock()
            && self.changes.load(Ordering::Acquire) == seen
        {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(jti.to_string(), (Instant::now(), verdict));
        }
    }

    /// A revocation: the token is refused from now on in this process.
    pub(crate) fn revoked(&self, jti: &str) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.remember(jti, None);
    }

    fn remember(&self, jti: &str, verdict: Option<Actor>) {
        if let Ok(mut cache) = self.cache.lock() {
            // Bounded: drop everything when it grows past what any partner set needs.
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(jti.to_string(), (Instant::now(), verdict));
        }
    }

    pub(crate) fn forget_all(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> TokenAuthority {
        TokenAuthority::new(b"a test secret of at least thirty-two bytes")
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            partner: "p".into(),
            sub: "s".into(),
            role: Role::TeamMember,
            jti: "t".into(),
            iat: exp - 60,
            exp,
        }
    }

    #[test]
    fn a_token_is_refused_from_the_second_it_expires() {
        let a = authority();
        let now = chrono::Utc::now().timestamp();
        let live = a.sign(&claims(now + 30)).expect("sign");
        assert!(a.verify(&live).is_ok());
        let expired = a.sign(&claims(now - 1)).expect("sign");
        assert_eq!(
            a.verify(&expired).err().as_deref(),
            Some("the token has expired")
        );
    }

    #[test]
    fn a_verdict_loaded_before_a_revocation_does_not_put_the_token_back() {
        let a = authority();
        let ttl = Duration::from_secs(60);
        // A request read the token row, then the token was revoked, then the request's verdict
        // came back to be cached.
        let seen = a.changes_seen();
        a.revoked("t");
        a.remember_loaded("t", Some(Actor::system("p")), seen);
        assert!(matches!(a.cached("t", ttl), Some(None)), "still revoked");
        // A load begun after it is cached as it is.
        let seen = a.changes_seen();
        a.remember_loaded("u", Some(Actor::system("p")), seen);
        assert!(matches!(a.cached("u", ttl), Some(Some(_))));
        // A role change (every verdict forgotten) likewise outdates a load begun before it.
        let seen = a.changes_seen();
        a.forget_all();
        a.remember_loaded("v", Some(Actor::system("p")), seen);
        assert!(a.cached("v", ttl).is_none());
    }
}
