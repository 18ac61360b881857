//! Visitor access (Netlify's "protected sites"): a password in front of a whole site, or
//! only in front of its deploy previews and aliases. The password is kept as an argon2id
//! hash; a random key stored beside it signs the visitors' cookies (`http::visitor`), and
//! both are replaced together, so a new password signs every visitor out.

use std::sync::Arc;

use chrono::Utc;
use hosting_api as api;
use rand::RngCore;

use super::sites::owned_site;
use super::{ActionError, ActionResult};
use crate::state::App;
use crate::store::ProtectionRecord;

/// Shortest visitor password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest one: argon2 takes any length, but a bound keeps hashing cheap.
pub const MAX_PASSWORD_CHARS: usize = 1024;

pub fn protection_view(site: &str, protection: Option<&ProtectionRecord>) -> api::Protection {
    api::Protection {
        site: site.to_owned(),
        protected: protection.is_some(),
        scope: protection.map_or(api::ProtectionScope::All, |p| p.scope),
        updated_at: protection.map(|p| p.updated_at),
    }
}

/// The caller's site's visitor access.
pub async fn protection(app: &App, owner_id: i64, site: &str) -> ActionResult<api::Protection> {
    let site = owned_site(app, owner_id, site).await?;
    let current = app.store.protection(owner_id, site.id).await?;
    Ok(protection_view(&site.name, current.as_ref()))
}

/// Protects the caller's site with `password` for `scope`; applies at once on every
/// replica (the site's hosts are dropped from every cache).
pub async fn protect(
    app: &Arc<App>,
    owner_id: i64,
    site: &str,
    password: &str,
    scope: api::ProtectionScope,
) -> ActionResult<api::Protection> {
    let site = owned_site(app, owner_id, site).await?;
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ActionError::Invalid(format!(
            "a visitor password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| ActionError::Invalid(format!("hashing the password failed: {e}")))??;
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let record = ProtectionRecord {
        site_id: site.id,
        scope,
        password_hash,
        cookie_key: hex::encode(key),
        updated_at: Utc::now(),
    };
    if !app.store.set_protection(owner_id, site.id, &record).await? {
        return Err(ActionError::not_found(format!("site {:?}", site.name)));
    }
    crate::publish::invalidate_site(app, &site.name).await;
    tracing::info!(site.name = %site.name, scope = scope.as_str(), "site protected");
    Ok(protection_view(&site.name, Some(&record)))
}

/// Makes the caller's site public again (idempotent).
pub async fn unprotect(app: &Arc<App>, owner_id: i64, site: &str) -> ActionResult<()> {
    let site = owned_site(app, owner_id, site).await?;
    if app.store.delete_protection(owner_id, site.id).await? {
        crate::publish::invalidate_site(app, &site.name).await;
        tracing::info!(site.name = %site.name, "site protection removed");
    }
    Ok(())
}

fn hash(password: &str) -> ActionResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ActionError::Invalid(format!("the password cannot be hashed: {e}")))
}
