//! Identity (ARCHITECTURE §7, contract): every service verifies the bearer token itself.
//!
//! The algorithm is pinned by the key, never taken from the token: a JWKS key verifies only with
//! the algorithm the key declares (RS256, ES256 or EdDSA), and HS256 is accepted only when a
//! development secret is configured. `alg=none` cannot verify at all. `exp`, `iss`, `aud` and `sub`
//! are required; `nbf` is honoured; a small leeway absorbs clock skew.
//!
//! [`AuthInterceptor`] puts the verified [`Caller`] into the request's extensions, where handlers
//! read it with [`caller`].
//!
//! Service tokens (`roles: [service]`, minted by [`crate::service_tokens`]) verify only with the
//! services' keys (`auth.service_jwks_file`) or the development secret, and are accepted only on
//! the gRPC methods a service opened with [`AuthInterceptor::open_to_services`]; every other
//! method refuses them with `PERMISSION_DENIED`. A tonic interceptor never sees the method, so a
//! server that opens methods is wrapped with [`AuthInterceptor::wrap`]; the plain interceptor
//! refuses service tokens everywhere.

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::settings::AuthSettings;

mod jwks;

/// The claims a desk token carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Team ids the subject belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

crate::string_enum! {
    /// A role from the `roles` claim (ARCHITECTURE §7). Every service reads the same set, so a
    /// role means the same thing wherever a token is shown; a service decides what each allows.
    pub enum Role {
        /// Raises and follows their own tickets and requests.
        Requester => "requester",
        /// Works tickets.
        Agent => "agent",
        /// Leads agents and tunes the tenant's settings.
        Manager => "manager",
        ChangeManager => "change_manager",
        CabMember => "cab_member",
        CatalogAdmin => "catalog_admin",
        Admin => "admin",
        /// A machine client: monitoring, provisioning robots, chat bots.
        Integrator => "integrator",
        /// Keeps the CMDB: writes CIs and ranks discovery sources, works no tickets.
        ConfigurationManager => "configuration_manager",
        /// Another desk service with a service token: work no user started.
        Service => "service",
    }
}

/// Who is calling, parsed once from a verified token. Handlers see only this, never the raw
/// token or claims: the tenant is a valid tenant id (others are refused before any handler
/// runs), the subject is not empty, and the roles are typed. Role names no service knows are
/// left out rather than refused: a token may carry roles of other applications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `sub`: the IdP's subject, matched against requester, watcher and person ids.
    pub subject: String,
    /// `tenant`: every row and event subject is scoped by it.
    pub tenant: String,
    pub roles: Vec<Role>,
    /// `groups`: the teams the caller belongs to.
    pub groups: Vec<String>,
    /// `name`: shown as the author of comments and history entries.
    pub name: Option<String>,
    pub email: Option<String>,
    pub locale: Option<String>,
}

/// The role name of a service token (`roles: [service]`), as the claim carries it.
pub const SERVICE_ROLE: &str = Role::Service.as_str();

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller holds at least one of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|role| roles.contains(role))
    }

    /// True for another desk service calling with a service token: `subject` is that service's
    /// name (`sla`), `tenant` the tenant of the work. Only methods open to services see one.
    pub fn is_service(&self) -> bool {
        self.has(Role::Service)
    }

    /// The caller as audit entries and events name them.
    pub fn actor(&self) -> desk_proto::common::v1::Actor {
        desk_proto::common::v1::Actor {
            subject: self.subject.clone(),
            name: self.name.clone().unwrap_or_default(),
            roles: self.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed bearer token")]
    Malformed,
    #[error("token signed with an algorithm or key this service does not accept")]
    UnknownKey,
    #[error("token rejected: {0}")]
    Invalid(String),
}

#[derive(Clone)]
struct TrustedKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
    signs: Signs,
}

/// Whose tokens a key may sign: the IdP's keys sign users' tokens, the services' keys sign
/// service tokens, so neither can pass for the other (a user whose IdP roles say `service`
/// gets no service access). The development secret signs both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signs {
    Users,
    Services,
    Both,
}

impl Signs {
    fn may_sign(self, service_token: bool) -> bool {
        match self {
            Signs::Users => !service_token,
            Signs::Services => service_token,
            Signs::Both => true,
        }
    }
}

/// Verifies tokens against the configured keys. Cheap to share (`Arc`).
///
/// The IdP's keys (`auth.jwks_file`, `auth.jwks_url`) rotate: [`Verifier::start`] refreshes them
/// in the background (see `auth/jwks.rs`), and verification reads the current set under a read lock,
/// so it stays synchronous. The services' keys and the development secret are read once.
pub struct Verifier {
    fixed: Vec<TrustedKey>,
    idp: RwLock<Arc<IdpKeys>>,
    source: jwks::Source,
    /// Woken when a token names a `kid` no key has; the refresher rate-limits what it does.
    unknown_kid: tokio::sync::Notify,
    /// Set with the first unknown `kid` since the refresher last fetched, so a flood of them
    /// asks for one refresh, not one after another.
    unknown_kid_pending: AtomicBool,
    issuer: String,
    audience: String,
    leeway_seconds: u64,
}

/// The IdP's keys, each source's last good set: a failed fetch leaves the URL's keys as they
/// were, while the file's may still change (and the other way round).
#[derive(Default)]
struct IdpKeys {
    file: Vec<TrustedKey>,
    url: Vec<TrustedKey>,
}

impl IdpKeys {
    fn iter(&self) -> impl Iterator<Item = &TrustedKey> {
        self.file.iter().chain(&self.url)
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idp = self.idp_keys();
        f.debug_struct("Verifier")
            .field("fixed_keys", &self.fixed.len())
            .field("idp_keys", &idp.iter().count())
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Verifier {
    /// A verifier with the keys as they are now, without refreshing: the JWKS file is read, the
    /// JWKS URL is not fetched (its keys come with [`Verifier::start`]).
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Verifier> {
        let source = jwks::Source::from_settings(settings)?;
        let mut fixed = Vec::new();
        if let Some(path) = &settings.service_jwks_file {
            fixed.extend(load_jwks(path, Signs::Services)?);
        }
        if let Some(secret) = &settings.dev_hs256_secret {
            anyhow::ensure!(
                secret.expose().len() >= 32,
                "auth.dev_hs256_secret must be at least 32 bytes"
            );
            fixed.push(TrustedKey {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
                signs: Signs::Both,
            });
        }
        let mut idp = IdpKeys::default();
        if let Some(path) = &source.file {
            idp.file = load_jwks(path, Signs::Users)?;
        }
        anyhow::ensure!(
            !fixed.is_empty() || !idp.file.is_empty() || source.url.is_some(),
            "no token keys configured: set auth.jwks_file or auth.jwks_url (or auth.dev_hs256_secret for development)"
        );
        Ok(Verifier {
            fixed,
            idp: RwLock::new(Arc::new(idp)),
            source,
            unknown_kid: tokio::sync::Notify::new(),
            unknown_kid_pending: AtomicBool::new(false),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_seconds: settings.leeway_seconds,
        })
    }

    /// The verifier a process runs with: [`Verifier::from_settings`], the JWKS URL fetched once
    /// (a failure is logged and retried: tokens of the IdP are refused until a fetch succeeds),
    /// and a task refreshing the IdP's keys until `shutdown` (see `auth/jwks.rs`).
    pub async fn start(
        settings: &AuthSettings,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Arc<Verifier>> {
        let verifier = Arc::new(Verifier::from_settings(settings)?);
        if verifier.source.refreshes() {
            let loaded = verifier.refresh().await;
            tokio::spawn(jwks::refresh_until(verifier.clone(), loaded, shutdown));
        }
        Ok(verifier)
    }

    fn idp_keys(&self) -> Arc<IdpKeys> {
        self.idp
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the JWKS file and fetches the JWKS URL, keeping each source's last good keys
    /// when it fails. True when every source loaded.
    async fn refresh(&self) -> bool {
        let (file, url) = self.source.load().await;
        let all_loaded =
            file.as_ref().is_none_or(Result::is_ok) && url.as_ref().is_none_or(Result::is_ok);
        let current = self.idp_keys();
        let mut next = IdpKeys::default();
        let mut changed = false;
        for (loaded, kept, into, what) in [
            (file, &current.file, &mut next.file, "auth.jwks_file"),
            (url, &current.url, &mut next.url, "auth.jwks_url"),
        ] {
            match loaded {
                Some(Ok(jwks)) => match keys_from_jwks(&jwks, Signs::Users) {
                    Ok(keys) => {
                        *into = keys;
                        changed = true;
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(source = what, %error, "JWKS refused; keeping the last good keys");
                    }
                },
                Some(Err(error)) => {
                    tracing::warn!(source = what, %error, "JWKS not loaded; keeping the last good keys");
                }
                None => {}
            }
            *into = kept.clone();
        }
        if changed {
            *self.idp.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        }
        all_loaded
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let idp = self.idp_keys();
        let keys = || self.fixed.iter().chain(idp.iter());
        if let Some(kid) = &header.kid
            && !keys().any(|k| k.kid.as_ref() == Some(kid))
            && self.source.refreshes()
        {
            // Perhaps the IdP rotated before our next refresh: ask for one (the refresher decides
            // when), and refuse this token now rather than wait on the network.
            if !self.unknown_kid_pending.swap(true, Ordering::AcqRel) {
                self.unknown_kid.notify_one();
            }
        }
        // The key decides the algorithm: a token naming another algorithm for that key is refused.
        let candidates = keys().filter(|k| {
            k.algorithm == header.alg
                && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
        });
        let mut last_error = AuthError::UnknownKey;
        for trusted in candidates {
            let mut validation = Validation::new(trusted.algorithm);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.validate_nbf = true;
            validation.leeway = self.leeway_seconds;
            match jsonwebtoken::decode::<Claims>(token, &trusted.key, &validation) {
                Ok(data) => {
                    let service_token = data.claims.roles.iter().any(|r| r == SERVICE_ROLE);
                    if trusted.signs.may_sign(service_token) {
                        return caller_from_claims(data.claims);
                    }
                    last_error = AuthError::Invalid(if service_token {
                        "a service token must be signed by a service key".into()
                    } else {
                        "a service key signs only service tokens".into()
                    });
                }
                Err(error) => last_error = AuthError::Invalid(describe(&error)),
            }
        }
        Err(last_error)
    }
}

fn caller_from_claims(claims: Claims) -> Result<Caller, AuthError> {
    if claims.sub.trim().is_empty() {
        return Err(AuthError::Invalid("empty subject".into()));
    }
    // Every service scopes rows and event subjects by the tenant: one that is not a tenant id
    // (`Demo`, `demo `, `a.b`) is refused here, for every service alike, before any handler runs.
    if !crate::ids::is_tenant_id(&claims.tenant) {
        return Err(AuthError::Invalid(format!(
            "tenant {:?} is not a tenant id (1-63 lower-case letters, digits, '_' or '-')",
            claims.tenant
        )));
    }
    Ok(Caller {
        subject: claims.sub,
        tenant: claims.tenant,
        roles: claims.roles.iter().filter_map(|r| Role::parse(r)).collect(),
        groups: claims.groups,
        name: claims.name,
        email: claims.email,
        locale: claims.locale,
    })
}

fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired".into(),
        ErrorKind::ImmatureSignature => "not yet valid".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        _ => "invalid token".into(),
    }
}

fn load_jwks(path: &Path, signs: Signs) -> anyhow::Result<Vec<TrustedKey>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading JWKS {}: {e}", path.display()))?;
    keys_from_jwks(&text, signs).map_err(|e| anyhow::anyhow!("JWKS {}: {e}", path.display()))
}

fn keys_from_jwks(text: &str, signs: Signs) -> anyhow::Result<Vec<TrustedKey>> {
    let set: JwkSet = serde_json::from_str(text)?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
        let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
            (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
            (Some(KeyAlgorithm::EdDSA), _) => Algorithm::EdDSA,
            (None, AlgorithmParameters::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            // HMAC keys and unknown algorithms are never trusted from a JWKS.
            _ => continue,
        };
        keys.push(TrustedKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key: DecodingKey::from_jwk(jwk)?,
            signs,
        });
    }
    anyhow::ensure!(!keys.is_empty(), "no usable RS256/ES256/EdDSA key");
    Ok(keys)
}

/// Mints a development token signed with the HS256 secret (what `desk token` and tests use).
pub fn mint_dev_token(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Claims for a development token valid for `ttl_seconds` from now.
pub fn dev_claims(
    settings: &AuthSettings,
    subject: &str,
    tenant: &str,
    roles: &[&str],
    ttl_seconds: i64,
) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: subject.to_owned(),
        tenant: tenant.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: Vec::new(),
        region: None,
        locale: None,
        name: None,
        email: None,
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        exp: now + ttl_seconds,
        nbf: None,
        iat: Some(now),
    }
}

/// Verifies `authorization: Bearer …` and stores the [`Caller`] (and the caller's deadline,
/// for [`crate::calls`]) in the request's extensions.
///
/// As a tonic interceptor (`InterceptedService::new(server, interceptor)`) it refuses every
/// service token, since an interceptor is not told the method. A server with methods open to
/// services is wrapped instead: `AuthInterceptor::new(verifier).open_to_services(&[…]).wrap(server)`.
#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    verifier: Arc<Verifier>,
    open_to_services: Arc<BTreeSet<String>>,
}

impl AuthInterceptor {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            open_to_services: Arc::default(),
        }
    }

    /// The gRPC methods, by path (`/desk.tickets.v1.TicketService/EscalateTicket`), that accept a
    /// service token. Only [`AuthInterceptor::wrap`] sees the path; see the type's docs.
    pub fn open_to_services(mut self, methods: &[&str]) -> Self {
        let mut open = (*self.open_to_services).clone();
        open.extend(methods.iter().map(|m| (*m).to_owned()));
        self.open_to_services = Arc::new(open);
        self
    }

    /// Wraps a generated tonic server (or any `http` service): every call is authenticated with
    /// its method known, so service tokens reach the methods open to them.
    pub fn wrap<S>(self, server: S) -> Authenticated<S> {
        Authenticated {
            inner: server,
            auth: self,
        }
    }

    /// The caller of a request to `method` (`None` when the method is not known).
    fn authenticate(
        &self,
        headers: &http::HeaderMap,
        method: Option<&str>,
    ) -> Result<Caller, Status> {
        let token = bearer_token(headers).map_err(|e| Status::unauthenticated(e.to_string()))?;
        let caller = self.verifier.verify(token).map_err(|error| {
            tracing::debug!(reason = %error, "token refused");
            Status::unauthenticated(error.to_string())
        })?;
        if caller.is_service() && !method.is_some_and(|m| self.open_to_services.contains(m)) {
            tracing::debug!(
                service = %caller.subject,
                method = method.unwrap_or("(not known to an interceptor)"),
                "service token refused on a method not open to services"
            );
            return Err(Status::permission_denied(
                "this method does not accept service tokens",
            ));
        }
        tracing::Span::current().record("enduser.id", caller.subject.as_str());
        Ok(caller)
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.authenticate(request.metadata().as_ref(), None)?;
        let deadline = crate::calls::IncomingDeadline::from_headers(request.metadata().as_ref());
        let extensions = request.extensions_mut();
        extensions.insert(caller);
        if let Some(deadline) = deadline {
            extensions.insert(deadline);
        }
        Ok(request)
    }
}

/// A server behind [`AuthInterceptor::wrap`]: refuses unauthenticated calls with their `Status`,
/// passes the others on with the [`Caller`] in their extensions.
#[derive(Clone, Debug)]
pub struct Authenticated<S> {
    inner: S,
    auth: AuthInterceptor,
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<futures::future::Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self
            .auth
            .authenticate(request.headers(), Some(request.uri().path()))
        {
            Ok(caller) => {
                let deadline = crate::calls::IncomingDeadline::from_headers(request.headers());
                let extensions = request.extensions_mut();
                extensions.insert(caller);
                if let Some(deadline) = deadline {
                    extensions.insert(deadline);
                }
                futures::future::Either::Right(self.inner.call(request))
            }
            Err(status) => {
                futures::future::Either::Left(futures::future::ready(Ok(status.into_http())))
            }
        }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

fn bearer_token(headers: &http::HeaderMap) -> Result<&str, AuthError> {
    let value = headers.get("authorization").ok_or(AuthError::Missing)?;
    let text = value.to_str().map_err(|_| AuthError::Malformed)?;
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .ok_or(AuthError::Malformed)?;
    Ok(token.trim())
}

/// The verified caller of a request that went through [`AuthInterceptor`].
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Secret, Settings};

    const SECRET: &str = "a-development-secret-of-32-bytes!!";

    fn dev_settings() -> AuthSettings {
        let mut auth = Settings::defaults().auth;
        auth.dev_hs256_secret = Some(Secret::new(SECRET.into()));
        auth
    }

    fn jwks_settings() -> AuthSettings {
        let mut auth = Settings::defaults().auth;
        auth.jwks_file = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/jwks.json").into());
        auth
    }

    fn ed25519_token(claims: &Claims) -> String {
        let pem = include_bytes!("../testdata/ed25519-private.pem");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("test-ed25519".into());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_ed_pem(pem).expect("test key"),
        )
        .expect("signs")
    }

    #[test]
    fn a_dev_token_verifies_into_a_caller() {
        let settings = dev_settings();
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        let token = mint_dev_token(
            SECRET,
            &dev_claims(&settings, "ana", "acme", &["agent"], 60),
        )
        .expect("token");
        let caller = verifier.verify(&token).expect("valid");
        assert_eq!(
            (caller.subject.as_str(), caller.tenant.as_str()),
            ("ana", "acme")
        );
        assert!(caller.has(Role::Agent));
    }

    fn caller_with_roles(roles: &[&str]) -> Caller {
        caller_from_claims(dev_claims(&dev_settings(), "ana", "acme", roles, 60)).expect("valid")
    }

    #[test]
    fn role_names_no_service_knows_are_left_out_and_the_known_ones_are_typed() {
        let caller = caller_with_roles(&["superuser", "agent", "Agent", "cmdb:owner", "service"]);
        assert_eq!(caller.roles, [Role::Agent, Role::Service]);
        assert!(caller.is_service());
        assert!(caller_with_roles(&["superuser"]).roles.is_empty());
    }

    #[test]
    fn every_role_round_trips_through_its_claim_name() {
        for &role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        let names: Vec<&str> = Role::NAMES.to_vec();
        assert_eq!(caller_with_roles(&names).roles, Role::ALL);
        assert_eq!(Role::parse("change_manager"), Some(Role::ChangeManager));
        assert_eq!(
            Role::parse("configuration_manager"),
            Some(Role::ConfigurationManager)
        );
        assert_eq!(Role::parse("superuser"), None);
    }

    #[test]
    fn has_looks_for_one_role_and_has_any_for_one_of_several() {
        let caller = caller_with_roles(&["requester", "cab_member"]);
        assert!(caller.has(Role::CabMember));
        assert!(!caller.has(Role::Agent));
        assert!(caller.has_any(&[Role::Agent, Role::CabMember]));
        assert!(!caller.has_any(&[Role::Agent, Role::Admin]));
        assert!(!caller.has_any(&[]));
        assert!(!caller.is_service());
    }

    #[test]
    fn the_actor_of_audit_entries_names_the_roles_by_their_claim_names() {
        let mut caller = caller_with_roles(&["integrator", "superuser", "configuration_manager"]);
        caller.name = Some("Ana".into());
        let actor = caller.actor();
        assert_eq!(
            (actor.subject.as_str(), actor.name.as_str()),
            ("ana", "Ana")
        );
        assert_eq!(actor.roles, ["integrator", "configuration_manager"]);
        assert_eq!(caller_with_roles(&[]).actor().name, "");
    }

    #[test]
    fn a_token_whose_tenant_is_not_a_tenant_id_is_refused() {
        let settings = dev_settings();
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        for tenant in ["Demo", "demo ", " demo", "", "a.b", "acme>", "_deadletter"] {
            let token = mint_dev_token(
                SECRET,
                &dev_claims(&settings, "ana", tenant, &["agent"], 3600),
            )
            .expect("token");
            assert!(
                matches!(verifier.verify(&token), Err(AuthError::Invalid(m)) if m.contains("not a tenant id")),
                "tenant {tenant:?}"
            );
        }
    }

    #[test]
    fn an_expired_token_is_refused() {
        let settings = dev_settings();
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        let token = mint_dev_token(
            SECRET,
            &dev_claims(&settings, "ana", "acme", &["agent"], -3600),
        )
        .expect("token");
        assert!(matches!(verifier.verify(&token), Err(AuthError::Invalid(m)) if m == "expired"));
    }

    #[test]
    fn a_token_for_another_audience_or_issuer_is_refused() {
        let settings = dev_settings();
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        let mut claims = dev_claims(&settings, "ana", "acme", &["agent"], 60);
        claims.aud = "someone-else".into();
        assert!(
            verifier
                .verify(&mint_dev_token(SECRET, &claims).expect("token"))
                .is_err()
        );
        let mut claims = dev_claims(&settings, "ana", "acme", &["agent"], 60);
        claims.iss = "evil".into();
        assert!(
            verifier
                .verify(&mint_dev_token(SECRET, &claims).expect("token"))
                .is_err()
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let settings = dev_settings();
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        let token = mint_dev_token(
            "another-secret-that-is-also-32-bytes",
            &dev_claims(&settings, "ana", "acme", &[], 60),
        )
        .expect("token");
        assert!(verifier.verify(&token).is_err());
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = dev_claims(&dev_settings(), "ana", "acme", &["admin"], 60);
        let token = format!(
            "{}.{}.",
            engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
            engine.encode(serde_json::to_vec(&claims).expect("json"))
        );
        assert!(
            Verifier::from_settings(&dev_settings())
                .expect("verifier")
                .verify(&token)
                .is_err()
        );
        assert!(
            Verifier::from_settings(&jwks_settings())
                .expect("verifier")
                .verify(&token)
                .is_err()
        );
    }

    #[test]
    fn a_jwks_key_verifies_eddsa_tokens() {
        let settings = jwks_settings();
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        let token = ed25519_token(&dev_claims(&settings, "bot", "acme", &["integrator"], 60));
        assert_eq!(verifier.verify(&token).expect("valid").subject, "bot");
    }

    #[test]
    fn hs256_is_refused_when_only_a_jwks_is_configured() {
        // Algorithm confusion: an attacker signs HS256 with the public key's bytes as the secret.
        let settings = jwks_settings();
        let verifier = Verifier::from_settings(&settings).expect("verifier");
        let public_x = "IVqbM0mKPphMpt9gJGj9T_h5ccc2S7IXZR9iAmUl33A";
        let token = mint_dev_token(
            public_x,
            &dev_claims(&settings, "evil", "acme", &["admin"], 60),
        )
        .expect("token");
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::UnknownKey)
        ));
    }

    #[test]
    fn a_jwks_url_alone_is_enough_keys_and_a_bad_one_is_refused_at_start() {
        let mut auth = Settings::defaults().auth;
        auth.jwks_url = Some("https://idp.example.com/.well-known/jwks.json".into());
        assert!(Verifier::from_settings(&auth).is_ok());
        for bad in [
            "idp.example.com/jwks",
            "ftp://idp.example.com/jwks",
            "http://",
            "::",
        ] {
            auth.jwks_url = Some(bad.into());
            assert!(Verifier::from_settings(&auth).is_err(), "{bad}");
        }
        auth.jwks_url = Some("http://idp/jwks".into());
        auth.jwks_refresh_seconds = 0;
        assert!(Verifier::from_settings(&auth).is_err());
    }

    #[test]
    fn a_short_dev_secret_is_refused_at_start() {
        let mut auth = Settings::defaults().auth;
        auth.dev_hs256_secret = Some(Secret::new("short".into()));
        assert!(Verifier::from_settings(&auth).is_err());
    }
}
