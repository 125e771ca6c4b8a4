//! Service tokens (ARCHITECTURE §7): what a service presents when it calls another for work that
//! no user started (a timer, a consumer's effect).
//!
//! A service token is a short-lived JWT the service signs itself: `sub` = the service's name,
//! `tenant` = the tenant of the work, `roles: ["service"]`. Production signs with the service's
//! own private key (`auth.service_signing_key_file`, Ed25519 or P-256, `kid` =
//! `auth.service_signing_key_id`), whose public half every service trusts through
//! `auth.service_jwks_file`; development and `desk up` sign with the HS256 development secret.
//! Callees accept one only on the methods they open to services (see [`crate::auth`]).
//!
//! Tokens are cached per tenant and re-minted once half of their lifetime has passed, so a token
//! handed to a call always has at least half of `auth.service_token_ttl_seconds` left — far more
//! than any call's deadline.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::{
    auth::{Claims, SERVICE_ROLE},
    settings::AuthSettings,
};

/// Beyond this many cached tenants, expired tokens are dropped before another is added.
const CACHED_TENANTS_BEFORE_SWEEP: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServiceTokenError {
    /// The work's tenant must be a tenant id: it is the token's `tenant` and a subject token.
    #[error("{0:?} is not a tenant id")]
    NotATenant(String),
    #[error("signing a service token failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// Mints and caches this service's tokens. Cheap to share behind an `Arc`.
pub struct ServiceTokens {
    service: String,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
    header: Header,
    key: EncodingKey,
    cache: Mutex<HashMap<String, MintedToken>>,
}

struct MintedToken {
    token: String,
    expires_at: i64,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("service", &self.service)
            .field("algorithm", &self.header.alg)
            .field("kid", &self.header.kid)
            .finish()
    }
}

impl ServiceTokens {
    /// The tokens of `service` (its name: `sla`, `notifications`), signed with
    /// `auth.service_signing_key_file`, else with `auth.dev_hs256_secret`; `None` when neither is
    /// set. A key that cannot sign is refused here, at start, not at the first call.
    pub fn from_settings(
        settings: &AuthSettings,
        service: &str,
    ) -> anyhow::Result<Option<ServiceTokens>> {
        let Some((header, key)) = signing_key(settings)? else {
            return Ok(None);
        };
        anyhow::ensure!(
            (30..=3600).contains(&settings.service_token_ttl_seconds),
            "auth.service_token_ttl_seconds must be 30..=3600: service tokens are short-lived"
        );
        anyhow::ensure!(
            !service.trim().is_empty(),
            "a service token needs the service's name"
        );
        let tokens = ServiceTokens {
            service: service.to_owned(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_seconds: i64::try_from(settings.service_token_ttl_seconds)?,
            header,
            key,
            cache: Mutex::default(),
        };
        // A P-384 key parses as an EC key but cannot sign ES256: find out now.
        tokens
            .sign(&tokens.claims("startup-check", unix_now()))
            .context("the service signing key cannot sign ES256 or EdDSA tokens")?;
        Ok(Some(tokens))
    }

    /// The service these tokens name as `sub`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// A token for work of `tenant`, from the cache while at least half of its lifetime is left.
    pub fn token_for(&self, tenant: &str) -> Result<String, ServiceTokenError> {
        // The callee checks `exp` against its real clock (jsonwebtoken reads the system time), so
        // tokens are minted on the same real clock, never on an injected test clock.
        self.token_at(tenant, unix_now())
    }

    fn token_at(&self, tenant: &str, now: i64) -> Result<String, ServiceTokenError> {
        if !crate::ids::is_tenant_id(tenant) {
            return Err(ServiceTokenError::NotATenant(tenant.to_owned()));
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(minted) = cache.get(tenant)
            && minted.expires_at - now > self.ttl_seconds / 2
        {
            return Ok(minted.token.clone());
        }
        let claims = self.claims(tenant, now);
        let token = self.sign(&claims)?;
        if cache.len() >= CACHED_TENANTS_BEFORE_SWEEP {
            cache.retain(|_, minted| minted.expires_at > now);
        }
        cache.insert(
            tenant.to_owned(),
            MintedToken {
                token: token.clone(),
                expires_at: claims.exp,
            },
        );
        Ok(token)
    }

    fn claims(&self, tenant: &str, now: i64) -> Claims {
        Claims {
            sub: self.service.clone(),
            tenant: tenant.to_owned(),
            roles: vec![SERVICE_ROLE.to_owned()],
            groups: Vec::new(),
            region: None,
            locale: None,
            name: None,
            email: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + self.ttl_seconds,
            nbf: None,
            iat: Some(now),
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&self.header, claims, &self.key)
    }
}

/// The configured key and the header naming its algorithm (and `kid`).
fn signing_key(settings: &AuthSettings) -> anyhow::Result<Option<(Header, EncodingKey)>> {
    if let Some(path) = &settings.service_signing_key_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the service signing key {}", path.display()))?;
        let (algorithm, key) = if let Ok(key) = EncodingKey::from_ed_pem(&pem) {
            (Algorithm::EdDSA, key)
        } else if let Ok(key) = EncodingKey::from_ec_pem(&pem) {
            (Algorithm::ES256, key)
        } else {
            anyhow::bail!(
                "{} is neither an Ed25519 nor a P-256 private key in PKCS#8 PEM",
                path.display()
            );
        };
        // Callees pick the key by `kid` among every service's public key.
        let kid = settings
            .service_signing_key_id
            .clone()
            .filter(|kid| !kid.trim().is_empty())
            .context(
                "auth.service_signing_key_id must name the signing key's kid in the services' JWKS",
            )?;
        let mut header = Header::new(algorithm);
        header.kid = Some(kid);
        return Ok(Some((header, key)));
    }
    if let Some(secret) = &settings.dev_hs256_secret {
        anyhow::ensure!(
            secret.expose().len() >= 32,
            "auth.dev_hs256_secret must be at least 32 bytes"
        );
        return Ok(Some((
            Header::new(Algorithm::HS256),
            EncodingKey::from_secret(secret.expose().as_bytes()),
        )));
    }
    Ok(None)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::{AuthError, Verifier, dev_claims},
        settings::{Secret, Settings},
    };

    const SECRET: &str = "a-development-secret-of-32-bytes!!";
    const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

    fn dev_settings() -> AuthSettings {
        let mut auth = Settings::defaults().auth;
        auth.dev_hs256_secret = Some(Secret::new(SECRET.into()));
        auth
    }

    /// Users' tokens from the IdP key (Ed25519), services' tokens from the ES256 service key.
    fn production_settings() -> AuthSettings {
        let mut auth = Settings::defaults().auth;
        auth.jwks_file = Some(format!("{TESTDATA}/jwks.json").into());
        auth.service_jwks_file = Some(format!("{TESTDATA}/service-jwks.json").into());
        auth.service_signing_key_file =
            Some(format!("{TESTDATA}/service-es256-private.pem").into());
        auth.service_signing_key_id = Some("test-service-es256".into());
        auth
    }

    fn tokens(settings: &AuthSettings) -> ServiceTokens {
        ServiceTokens::from_settings(settings, "sla")
            .expect("loads")
            .expect("a key is configured")
    }

    #[test]
    fn a_service_token_names_the_service_the_tenant_and_the_service_role() {
        let settings = production_settings();
        let token = tokens(&settings).token_for("acme").expect("mints");
        let caller = Verifier::from_settings(&settings)
            .expect("verifier")
            .verify(&token)
            .expect("verifies with the services' JWKS");
        assert_eq!(
            (caller.subject.as_str(), caller.tenant.as_str()),
            ("sla", "acme")
        );
        assert!(caller.is_service());
        assert_eq!(caller.roles, [crate::auth::Role::Service]);
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::ES256, Some("test-service-es256"))
        );
    }

    #[test]
    fn an_ed25519_signing_key_signs_eddsa_service_tokens() {
        let mut settings = Settings::defaults().auth;
        settings.service_jwks_file = Some(format!("{TESTDATA}/jwks.json").into());
        settings.service_signing_key_file = Some(format!("{TESTDATA}/ed25519-private.pem").into());
        settings.service_signing_key_id = Some("test-ed25519".into());
        let token = tokens(&settings).token_for("acme").expect("mints");
        assert_eq!(
            jsonwebtoken::decode_header(&token).expect("header").alg,
            Algorithm::EdDSA
        );
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        assert!(verifier.verify(&token).expect("verifies").is_service());
    }

    #[test]
    fn without_a_signing_key_the_development_secret_signs_service_tokens() {
        let settings = dev_settings();
        let token = tokens(&settings).token_for("acme").expect("mints");
        assert_eq!(
            jsonwebtoken::decode_header(&token).expect("header").alg,
            Algorithm::HS256
        );
        let caller = Verifier::from_settings(&settings)
            .expect("verifier")
            .verify(&token)
            .expect("verifies");
        assert!(caller.is_service());
    }

    #[test]
    fn no_key_at_all_means_no_service_tokens() {
        let settings = Settings::defaults().auth;
        assert!(
            ServiceTokens::from_settings(&settings, "sla")
                .expect("no error")
                .is_none()
        );
    }

    #[test]
    fn a_signing_key_without_its_kid_is_refused_at_start() {
        let mut settings = production_settings();
        settings.service_signing_key_id = None;
        assert!(ServiceTokens::from_settings(&settings, "sla").is_err());
    }

    #[test]
    fn a_service_token_signed_by_a_users_key_is_refused() {
        // given the IdP's key configured as this service's signing key, but trusted only for users
        let mut settings = Settings::defaults().auth;
        settings.jwks_file = Some(format!("{TESTDATA}/jwks.json").into());
        settings.service_signing_key_file = Some(format!("{TESTDATA}/ed25519-private.pem").into());
        settings.service_signing_key_id = Some("test-ed25519".into());
        let token = tokens(&settings).token_for("acme").expect("mints");
        // then the token does not verify: a user key cannot make a service
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::Invalid(reason)) if reason.contains("service key")
        ));
    }

    #[test]
    fn a_user_token_signed_by_a_service_key_is_refused() {
        let settings = production_settings();
        let claims = dev_claims(&settings, "mallory", "acme", &["admin"], 60);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("test-service-es256".into());
        let pem = std::fs::read(format!("{TESTDATA}/service-es256-private.pem")).expect("key");
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_pem(&pem).expect("key"),
        )
        .expect("signs");
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        assert!(verifier.verify(&token).is_err());
    }

    #[test]
    fn a_token_is_reused_until_half_its_lifetime_has_passed_then_reminted() {
        let tokens = tokens(&dev_settings());
        let ttl = tokens.ttl_seconds;
        let first = tokens.token_at("acme", 1_000_000).expect("mints");
        let before_half = tokens
            .token_at("acme", 1_000_000 + ttl / 2 - 1)
            .expect("mints");
        let after_half = tokens.token_at("acme", 1_000_000 + ttl / 2).expect("mints");
        assert_eq!(before_half, first);
        assert_ne!(after_half, first);
        // and each tenant has its own token
        assert_ne!(
            tokens
                .token_at("globex", 1_000_000 + ttl / 2)
                .expect("mints"),
            after_half
        );
    }

    #[test]
    fn a_tenant_that_is_not_a_tenant_id_gets_no_token() {
        let tokens = tokens(&dev_settings());
        assert!(matches!(
            tokens.token_for("acme.>"),
            Err(ServiceTokenError::NotATenant(_))
        ));
        assert!(tokens.token_for("").is_err());
    }
}
