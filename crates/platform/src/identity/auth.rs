//! Who is calling: the [`Principal`] that the RPC layer attaches to every request, and the
//! [`Authenticator`] seam that decides it.
//!
//! Two authenticators: [`JwtAuthenticator`] verifies bearer tokens (what any deployment beyond
//! a developer's machine uses), [`DevelopmentAuthenticator`] trusts identity headers for local
//! use. [`from_settings`] picks one. Verified client certificates (mutual TLS) are mapped to
//! principals by [`crate::identity::tls::ClientIdentities`].

use std::sync::Arc;

use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::settings::{AuthMode, Settings};
use crate::wire::error::AppError;

/// Roles a caller acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Site research coordinator.
    SiteCoordinator,
    /// Pharmacist.
    Pharmacist,
    /// Investigator.
    Investigator,
    /// Central reviewer.
    CentralReviewer,
    /// Study statistician.
    Statistician,
    /// Administrator.
    Administrator,
    /// Another trialops service.
    Service,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::SiteCoordinator,
        Role::Pharmacist,
        Role::Investigator,
        Role::CentralReviewer,
        Role::Statistician,
        Role::Administrator,
        Role::Service,
    ];

    /// The role's name in credentials and the audit trail, for example "site_coordinator".
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SiteCoordinator => "site_coordinator",
            Role::Pharmacist => "pharmacist",
            Role::Investigator => "investigator",
            Role::CentralReviewer => "central_reviewer",
            Role::Statistician => "statistician",
            Role::Administrator => "administrator",
            Role::Service => "service",
        }
    }

    /// The role with this name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable identifier of the person or system (never a patient identifier).
    pub subject: String,
    /// The role acted in.
    pub role: Role,
    /// The caller's site, for site-bound roles.
    pub site: Option<String>,
    /// The person's printed name (a token's `name`), which an electronic signature shows.
    pub name: Option<String>,
    /// When the person last authenticated, Unix seconds (a token's `auth_time`, else its `iat`):
    /// an electronic signature needs a recent one.
    pub authenticated_at: Option<i64>,
}

/// Decides the principal of a call from its metadata.
pub trait Authenticator: Send + Sync + 'static {
    /// The caller, or `Unauthenticated`.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AppError>;

    /// Whether the role policy ([`crate::identity::policy`]) applies to the principals it vouches for.
    fn enforces_policy(&self) -> bool {
        true
    }
}

/// Metadata keys the development authenticator reads.
pub const ACTOR_HEADER: &str = "x-trialops-actor";
/// Role metadata key.
pub const ROLE_HEADER: &str = "x-trialops-role";
/// Site metadata key.
pub const SITE_HEADER: &str = "x-trialops-site";
/// Printed-name metadata key (development only).
pub const NAME_HEADER: &str = "x-trialops-name";

/// Development only: trusts `x-trialops-actor`, `x-trialops-role`, `x-trialops-site` and
/// `x-trialops-name`, and without them acts as `local-developer` in the administrator role. It
/// verifies nothing; every call counts as freshly authenticated.
#[derive(Debug, Clone, Default)]
pub struct DevelopmentAuthenticator;

impl Authenticator for DevelopmentAuthenticator {
    /// Unverified identities authorize nothing meaningful: development mode allows every call.
    fn enforces_policy(&self) -> bool {
        false
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AppError> {
        let header = |name: &str| -> Result<Option<String>, AppError> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && s.len() <= 128)
                    .map(|s| Some(s.to_owned()))
                    .ok_or_else(|| AppError::Unauthenticated(format!("{name} must be 1 to 128 visible characters"))),
            }
        };
        let role = match header(ROLE_HEADER)? {
            None => Role::Administrator,
            Some(name) => {
                Role::parse(&name).ok_or_else(|| AppError::Unauthenticated(format!("unknown role {name:?}")))?
            }
        };
        let subject = header(ACTOR_HEADER)?.unwrap_or_else(|| "local-developer".to_owned());
        Ok(Principal {
            name: Some(header(NAME_HEADER)?.unwrap_or_else(|| subject.clone())),
            subject,
            role,
            site: header(SITE_HEADER)?,
            authenticated_at: Some(chrono::Utc::now().timestamp()),
        })
    }
}

/// Metadata key of bearer credentials.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The claims trialops reads from a token (iss, aud, exp and nbf are checked by validation).
#[derive(Debug, serde::Deserialize)]
struct Claims {
    sub: String,
    role: String,
    #[serde(default)]
    site: Option<String>,
    /// OpenID Connect: the person's full name.
    #[serde(default)]
    name: Option<String>,
    /// OpenID Connect: when the person authenticated.
    #[serde(default)]
    auth_time: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Verifies `authorization: Bearer <JWT>`: signature, issuer, audience, expiry and not-before
/// (with a small leeway); the principal is `sub`, `role` (a [`Role`] name) and `site`, with the
/// `name` and authentication time (`auth_time`, else `iat`) an electronic signature needs.
pub struct JwtAuthenticator {
    /// Verification keys with their key ids (`kid`); one key without an id from a PEM file.
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

impl JwtAuthenticator {
    /// An authenticator for tokens signed with `key` by `algorithm`, from `issuer` for `audience`.
    pub fn new(key: DecodingKey, algorithm: Algorithm, issuer: &str, audience: &str, leeway_seconds: u64) -> Self {
        Self::with_keys(vec![(None, key)], algorithm, issuer, audience, leeway_seconds)
    }

    /// Like [`JwtAuthenticator::new`] with several keys told apart by the token's `kid` header
    /// (a JWKS: identity providers rotate keys by publishing the next one beside the current).
    pub fn with_keys(
        keys: Vec<(Option<String>, DecodingKey)>,
        algorithm: Algorithm,
        issuer: &str,
        audience: &str,
        leeway_seconds: u64,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = leeway_seconds;
        JwtAuthenticator { keys, validation }
    }

    /// The key for a token: the one its `kid` names, or the only key when the token names none.
    fn key_for(&self, token: &str) -> Result<&DecodingKey, AppError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AppError::Unauthenticated("the token is not valid".into()))?;
        // RFC 7515 4.1.11: a recipient must refuse a token whose "crit" names an extension it
        // does not understand; trialops understands none.
        if header.crit.is_some() {
            return Err(AppError::Unauthenticated(
                "the token names critical header extensions (crit) that trialops does not understand".into(),
            ));
        }
        let found = match header.kid.as_deref() {
            Some(kid) => self
                .keys
                .iter()
                .find(|(id, _)| id.as_deref() == Some(kid))
                .or(match self.keys.as_slice() {
                    [(None, _)] => self.keys.first(),
                    _ => None,
                }),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        };
        found
            .map(|(_, key)| key)
            .ok_or_else(|| AppError::Unauthenticated("the token's signing key (kid) is not known".into()))
    }
}

/// Verification keys from a JWKS document (`{"keys": [...]}`): those usable with `algorithm`.
fn jwks_keys(bytes: &[u8], algorithm: Algorithm) -> anyhow::Result<Vec<(Option<String>, DecodingKey)>> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        // A key that declares another algorithm cannot verify these tokens.
        if let Some(declared) = jwk.common.key_algorithm
            && declared.to_string() != format!("{algorithm:?}")
        {
            continue;
        }
        keys.push((jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)?));
    }
    if keys.is_empty() {
        anyhow::bail!("the JWKS has no key for {algorithm:?}");
    }
    Ok(keys)
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AppError> {
        // Which of two credentials is meant is ambiguous: refuse rather than pick one.
        if headers.get_all(AUTHORIZATION_HEADER).iter().count() > 1 {
            return Err(AppError::Unauthenticated(
                "more than one authorization header: send exactly one".into(),
            ));
        }
        let token = headers
            .get(AUTHORIZATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| AppError::Unauthenticated("a bearer token is required".into()))?;
        let token = token.trim();
        let key = self.key_for(token)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            AppError::Unauthenticated(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    ErrorKind::InvalidIssuer => "the token's issuer is not trusted",
                    ErrorKind::InvalidAudience => "the token is not for trialops",
                    ErrorKind::InvalidSignature => "the token's signature does not verify",
                    _ => "the token is not valid",
                }
                .into(),
            )
        })?;
        let role = Role::parse(&data.claims.role)
            .ok_or_else(|| AppError::Unauthenticated(format!("unknown role {:?}", data.claims.role)))?;
        let claims = data.claims;
        Ok(Principal {
            subject: claims.sub,
            role,
            site: claims.site.filter(|s| !s.is_empty()),
            name: claims.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            // The OpenID Connect authentication time when the token has one (a refreshed token
            // is issued later than the person authenticated), otherwise the time of issue.
            authenticated_at: claims.auth_time.or(claims.iat),
        })
    }
}

/// The authenticator the settings ask for; a JWT configuration that cannot be used stops the
/// start with the setting named.
pub fn from_settings(settings: &Settings) -> anyhow::Result<Arc<dyn Authenticator>> {
    match settings.auth_mode {
        AuthMode::Development => Ok(Arc::new(DevelopmentAuthenticator)),
        AuthMode::Jwt => {
            let path = settings
                .jwt_key_file
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("jwt_key_file is required with auth_mode jwt"))?;
            let issuer = settings
                .jwt_issuer
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("jwt_issuer is required with auth_mode jwt"))?;
            let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("jwt_key_file {}: {e}", path.display()))?;
            let algorithm = match settings.jwt_algorithm.as_str() {
                "ES256" => Algorithm::ES256,
                "RS256" => Algorithm::RS256,
                "HS256" => Algorithm::HS256,
                other => anyhow::bail!("jwt_algorithm {other:?}: use ES256, RS256 or HS256"),
            };
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("jwt_key_file {}: {e}", path.display());
            let keys = if algorithm != Algorithm::HS256 && bytes.trim_ascii_start().starts_with(b"{") {
                jwks_keys(&bytes, algorithm).map_err(|e| bad(&e))?
            } else {
                let key = match algorithm {
                    Algorithm::ES256 => DecodingKey::from_ec_pem(&bytes),
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(&bytes),
                    _ => Ok(DecodingKey::from_secret(bytes.trim_ascii())),
                };
                vec![(None, key.map_err(|e| bad(&e))?)]
            };
            let audience = settings.jwt_audience.as_str();
            Ok(Arc::new(JwtAuthenticator::with_keys(
                keys,
                algorithm,
                issuer,
                audience,
                settings.jwt_leeway_seconds,
            )))
        }
    }
}

/// What the RPC layer learned about a call, attached to the request's extensions.
#[derive(Clone)]
pub struct CallContext {
    /// The caller.
    pub principal: Principal,
    /// W3C trace id (32 hex digits) of the call, empty when untraced.
    pub trace_id: String,
    /// The caller's `authorization` value, forwarded on calls to other services (never logged).
    pub credentials: Option<String>,
    /// For a verified site-bound caller (coordinator, pharmacist, investigator): their site.
    /// Such callers see and change only that site's records; `None` means every site.
    pub site_scope: Option<String>,
    /// The verified client certificate name of the system that carried the call (mutual TLS),
    /// when the principal is someone else (the bearer token's); `None` when the system itself
    /// is the principal or no certificate was mapped.
    pub via: Option<String>,
}

impl CallContext {
    /// Whether the caller may see a record of `site`.
    pub fn sees_site(&self, site: &str) -> bool {
        self.site_scope.as_deref().is_none_or(|own| own == site)
    }

    /// NOT_FOUND (never revealing that it exists) unless the caller may see a `what` `id` of `site`.
    pub fn require_visible(&self, site: &str, what: &'static str, id: &str) -> Result<(), AppError> {
        if self.sees_site(site) {
            Ok(())
        } else {
            Err(AppError::NotFound {
                what,
                id: id.to_owned(),
            })
        }
    }

    /// Whether the caller is blinded to treatment allocation: central reviewers judge response
    /// without knowing the arm, so services leave arms out of what they show them.
    pub fn blinded_to_allocation(&self) -> bool {
        self.principal.role == Role::CentralReviewer
    }

    /// PERMISSION_DENIED unless the caller may act for `site` (named by request field `field`).
    pub fn require_own_site(&self, field: &str, site: &str) -> Result<(), AppError> {
        match self.site_scope.as_deref() {
            Some(own) if own != site => Err(AppError::PermissionDenied(format!(
                "{field}: you may act only for site {own}"
            ))),
            _ => Ok(()),
        }
    }
}

impl Role {
    /// Roles whose callers belong to one site.
    pub fn is_site_bound(self) -> bool {
        matches!(self, Role::SiteCoordinator | Role::Pharmacist | Role::Investigator)
    }
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("principal", &self.principal)
            .field("trace_id", &self.trace_id)
            .field("site_scope", &self.site_scope)
            .field("via", &self.via)
            .field("credentials", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl CallContext {
    /// A context for calls made without a request (tests, tools): the principal sees every site.
    pub fn unscoped(principal: Principal) -> CallContext {
        CallContext {
            principal,
            trace_id: String::new(),
            credentials: None,
            site_scope: None,
            via: None,
        }
    }

    /// The context the RPC layer attached; `Unauthenticated` if the layer did not run.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<CallContext, AppError> {
        request
            .extensions()
            .get::<CallContext>()
            .cloned()
            .ok_or_else(|| AppError::Unauthenticated("no authenticated caller".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_identity_comes_from_headers_with_a_local_default() {
        let auth = DevelopmentAuthenticator;
        let p = auth.authenticate(&HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (p.subject.as_str(), p.role, p.site),
            ("local-developer", Role::Administrator, None)
        );

        let mut h = HeaderMap::new();
        h.insert(ACTOR_HEADER, http::HeaderValue::from_static("coordinator-17"));
        h.insert(ROLE_HEADER, http::HeaderValue::from_static("site_coordinator"));
        h.insert(SITE_HEADER, http::HeaderValue::from_static("COG-101"));
        let p = auth.authenticate(&h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (p.subject.as_str(), p.role, p.site.as_deref()),
            ("coordinator-17", Role::SiteCoordinator, Some("COG-101"))
        );

        h.insert(ROLE_HEADER, http::HeaderValue::from_static("superuser"));
        assert!(matches!(auth.authenticate(&h), Err(AppError::Unauthenticated(_))));
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
