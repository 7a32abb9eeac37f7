//! Who is calling: the [`Principal`] that the RPC layer attaches to every request, and the
//! [`Authenticator`] seam that decides it.
//!
//! Today the only authenticator is [`DevelopmentAuthenticator`], which trusts identity headers
//! and exists so the audit trail records an actor from day one. Verified credentials (JWT,
//! mutual TLS) plug in behind the same trait (issue: Security).

use http::HeaderMap;

use crate::error::AppError;

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
}

/// Decides the principal of a call from its metadata.
pub trait Authenticator: Send + Sync + 'static {
    /// The caller, or `Unauthenticated`.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AppError>;
}

/// Metadata keys the development authenticator reads.
pub const ACTOR_HEADER: &str = "x-trialops-actor";
/// Role metadata key.
pub const ROLE_HEADER: &str = "x-trialops-role";
/// Site metadata key.
pub const SITE_HEADER: &str = "x-trialops-site";

/// Development only: trusts `x-trialops-actor`, `x-trialops-role` and `x-trialops-site`, and
/// without them acts as `local-developer` in the administrator role. It verifies nothing.
#[derive(Debug, Clone, Default)]
pub struct DevelopmentAuthenticator;

impl Authenticator for DevelopmentAuthenticator {
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
        Ok(Principal {
            subject: header(ACTOR_HEADER)?.unwrap_or_else(|| "local-developer".to_owned()),
            role,
            site: header(SITE_HEADER)?,
        })
    }
}

/// What the RPC layer learned about a call, attached to the request's extensions.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The caller.
    pub principal: Principal,
    /// W3C trace id (32 hex digits) of the call, empty when untraced.
    pub trace_id: String,
}

impl CallContext {
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
