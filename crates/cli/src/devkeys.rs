//! Development credentials for local use: `trialops up` creates a signing key in its data folder
//! and runs the services in JWT mode with it; `trialops token` mints tokens with the same key.
//! HS256 with a random 256-bit secret, issuer [`DEV_ISSUER`]: verification is the same code path
//! as production, but anyone who can read the data folder can mint tokens, so a development key
//! never leaves the developer's machine (deployments use ES256/RS256 from an identity provider).

use std::path::{Path, PathBuf};

use trialops_platform::Settings;
use trialops_platform::config::settings::AuthMode;
use trialops_platform::identity::auth::Role;

/// Issuer of development tokens.
pub const DEV_ISSUER: &str = "trialops-development";
/// File name of the development key in the data folder.
pub const KEY_FILE: &str = "dev-jwt-hs256.key";

/// The development key file in `data_dir`, created (readable by its owner only) if missing.
pub fn ensure_key(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        return Ok(path);
    }
    trialops_platform::config::private_files::create_dir(data_dir)?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    // Written whole under a temporary name, then linked into place: a reader never sees a
    // partial key, and of two starts racing, the first key wins.
    let temporary = data_dir.join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
    let written = trialops_platform::config::private_files::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, hex::encode(secret).as_bytes())?;
            file.sync_all()
        });
    written.map_err(|e| anyhow::anyhow!("{}: {e}", temporary.display()))?;
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
    Ok(path)
}

/// Switches `settings` to JWT verification with the development key at `key`.
pub fn apply(settings: &mut Settings, key: &Path) {
    settings.auth_mode = AuthMode::Jwt;
    settings.jwt_algorithm = "HS256".to_owned();
    settings.jwt_key_file = Some(key.to_owned());
    settings.jwt_issuer = Some(DEV_ISSUER.to_owned());
}

/// A development token for `subject` acting as `role` (at `site`), valid for `ttl_seconds`,
/// signed with the key in `data_dir` (which `trialops up` created).
pub fn mint(
    data_dir: &Path,
    audience: &str,
    subject: &str,
    role: Role,
    site: Option<&str>,
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    mint_named(data_dir, audience, (subject, None), role, site, ttl_seconds)
}

/// Like [`mint`] for a person with a printed name (claim `name`), as an electronic signature
/// needs: `who` is (subject, name). Authenticated now (`iat`).
pub fn mint_named(
    data_dir: &Path,
    audience: &str,
    who: (&str, Option<&str>),
    role: Role,
    site: Option<&str>,
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    let (subject, name) = who;
    let path = data_dir.join(KEY_FILE);
    let secret = std::fs::read(&path).map_err(|e| {
        anyhow::anyhow!(
            "no development key at {} ({e}): run `trialops up` with this --data-dir first",
            path.display()
        )
    })?;
    if role.is_site_bound() && site.is_none() {
        anyhow::bail!("the {} role belongs to one site: give --site", role.as_str());
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "iss": DEV_ISSUER,
        "aud": audience,
        "sub": subject,
        "role": role.as_str(),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
    });
    if let (Some(site), Some(map)) = (site, claims.as_object_mut()) {
        map.insert("site".into(), site.into());
    }
    if let (Some(name), Some(map)) = (name, claims.as_object_mut()) {
        map.insert("name".into(), name.into());
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret.trim_ascii());
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialops_platform::identity::auth::from_settings;

    #[test]
    fn minted_tokens_verify_with_the_settings_up_applies() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(mint(dir.path(), "trialops", "x", Role::Administrator, None, 60).is_err());
        let key = ensure_key(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let first = std::fs::read(&key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.len(), 64);
        // A second start keeps the key, so tokens stay valid.
        ensure_key(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&key).unwrap_or_else(|e| panic!("{e}")), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key)
                .unwrap_or_else(|e| panic!("{e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
        }

        let mut settings = Settings::default();
        apply(&mut settings, &key);
        let auth = from_settings(&settings).unwrap_or_else(|e| panic!("{e}"));
        let token = mint(
            dir.path(),
            "trialops",
            "pharmacist-3",
            Role::Pharmacist,
            Some("COG-101"),
            60,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut headers = http::HeaderMap::new();
        let value = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap_or_else(|e| panic!("{e}"));
        headers.insert("authorization", value);
        let principal = auth.authenticate(&headers).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(principal.subject, "pharmacist-3");
        assert_eq!(principal.role, Role::Pharmacist);
        assert_eq!(principal.site.as_deref(), Some("COG-101"));

        // Site-bound roles need a site; another folder's key does not verify.
        assert!(mint(dir.path(), "trialops", "p", Role::Pharmacist, None, 60).is_err());
        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        ensure_key(other.path()).unwrap_or_else(|e| panic!("{e}"));
        let foreign =
            mint(other.path(), "trialops", "x", Role::Administrator, None, 60).unwrap_or_else(|e| panic!("{e}"));
        let value = http::HeaderValue::from_str(&format!("Bearer {foreign}")).unwrap_or_else(|e| panic!("{e}"));
        headers.insert("authorization", value);
        assert!(auth.authenticate(&headers).is_err());
    }
}
