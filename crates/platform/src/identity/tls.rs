//! Transport security (rustls): the gRPC port's TLS identity, mutual TLS with a configured CA,
//! the mapping of verified client certificates to principals, and TLS on calls to other
//! trialops services.
//!
//! A client certificate identifies a system (another trialops service, a hospital system): the
//! TLS handshake verifies it chains to `tls_client_ca_file`, then [`ClientIdentities`] maps a
//! DNS name it is valid for to a role (and site). A call that also carries a bearer token acts
//! as the token's principal (the person on whose behalf the system calls); the certificate's
//! name is kept beside it as the system that carried the call.

use std::path::Path;

use rustls_pki_types::{CertificateDer, ServerName};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::settings::Settings;
use crate::identity::auth::{Principal, Role};

fn read(setting: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{setting} {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
        anyhow::bail!("{setting} {}: not a PEM file", path.display());
    }
    Ok(bytes)
}

fn identity(settings: &Settings) -> anyhow::Result<Option<Identity>> {
    match (&settings.tls_cert_file, &settings.tls_key_file) {
        (Some(cert), Some(key)) => Ok(Some(Identity::from_pem(
            read("tls_cert_file", cert)?,
            read("tls_key_file", key)?,
        ))),
        _ => Ok(None),
    }
}

/// The gRPC port's TLS configuration, `None` when TLS is not configured. Files that cannot be
/// read stop the start with the setting named.
pub fn server_config(settings: &Settings) -> anyhow::Result<Option<ServerTlsConfig>> {
    let Some(identity) = identity(settings)? else {
        return Ok(None);
    };
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(std::time::Duration::from_secs(10));
    if let Some(ca) = &settings.tls_client_ca_file {
        config = config
            .client_ca_root(Certificate::from_pem(read("tls_client_ca_file", ca)?))
            .client_auth_optional(!settings.tls_require_client_cert);
    }
    Ok(Some(config))
}

/// TLS for calls to another trialops service at `url`: `None` for `http://`; for `https://`
/// the server must chain to `tls_ca_file`, and this service's own certificate (if any) is
/// presented for mutual TLS.
pub fn client_config(settings: &Settings, url: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
    if !url.starts_with("https://") {
        return Ok(None);
    }
    let ca = settings
        .tls_ca_file
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{url} uses https: tls_ca_file must name the CA to verify it with"))?;
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("tls_ca_file", ca)?));
    if let Some(identity) = identity(settings)? {
        config = config.identity(identity);
    }
    Ok(Some(config))
}

/// One `name=role[@site]` entry of `tls_client_identities`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientIdentity {
    name: String,
    /// `name`, parsed once for matching against certificates.
    dns_name: ServerName<'static>,
    role: Role,
    site: Option<String>,
}

/// Which verified client certificates act as whom (`tls_client_identities`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentities(Vec<ClientIdentity>);

impl ClientIdentities {
    /// Parses `name=role[@site],…`; an error names the entry.
    pub fn parse(spec: &str) -> anyhow::Result<ClientIdentities> {
        let mut entries = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: &str| anyhow::anyhow!("tls_client_identities entry {entry:?}: {why}");
            let (name, grant) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected name=role or name=role@site"))?;
            let (role, site) = match grant.split_once('@') {
                Some((role, site)) => (role, Some(site.trim().to_owned())),
                None => (grant, None),
            };
            let name = name.trim();
            let dns_name = ServerName::try_from(name.to_owned())
                .map_err(|_| bad("the name must be a DNS name the certificate is valid for"))?;
            let role = Role::parse(role.trim()).ok_or_else(|| bad("unknown role"))?;
            if site.as_deref() == Some("") {
                return Err(bad("the site after @ is empty"));
            }
            if role.is_site_bound() && site.is_none() {
                return Err(bad("this role belongs to one site: write name=role@site"));
            }
            entries.push(ClientIdentity {
                name: name.to_owned(),
                dns_name,
                role,
                site,
            });
        }
        Ok(ClientIdentities(entries))
    }

    /// The principal of a verified client certificate chain (leaf first): the first configured
    /// name the leaf is valid for. `None` for an unmapped or unreadable certificate.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Option<Principal> {
        let leaf = chain.first()?;
        let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
        self.0.iter().find_map(|id| {
            cert.verify_is_valid_for_subject_name(&id.dns_name).ok()?;
            Some(Principal {
                subject: id.name.clone(),
                role: id.role,
                site: id.site.clone(),
                // A system never signs: no person, no authentication to show.
                name: None,
                authenticated_at: None,
            })
        })
    }

    /// Whether any certificate is mapped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_and_name_the_bad_entry() {
        let ids =
            ClientIdentities::parse(" dosing.trialops.svc=service, his.cog-101.example=site_coordinator@COG-101 ,")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids.0.len(), 2);
        assert_eq!(ids.0[1].role, Role::SiteCoordinator);
        assert_eq!(ids.0[1].site.as_deref(), Some("COG-101"));
        for (spec, why) in [
            ("dosing", "expected name=role"),
            ("dosing=root", "unknown role"),
            ("his.example=pharmacist", "belongs to one site"),
            ("his.example=pharmacist@", "empty"),
            ("not a name=service", "DNS name"),
        ] {
            let err = ClientIdentities::parse(spec)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(why) && err.contains(spec), "{spec}: {err}");
        }
    }
}
