//! Deploy aliases (branch deploys): `<alias>--<site>.<base-domain>` serves the deploy the
//! alias points at, beside the live site, which it never touches. Deploying to an alias
//! moves it; removing it stops its host at once on every replica.

use std::fmt;
use std::sync::Arc;

use hosting_api as api;
use hosting_api::{DeployState, MAX_ALIAS_NAME};

use super::deploys::owned_deploy;
use super::sites::owned_site;
use super::{ActionError, ActionResult};
use crate::domain::names::{DeployId, SiteName};
use crate::state::App;
use crate::store::AliasRecord;

/// An alias name: the rules of a site name (it is part of one DNS label), at most
/// [`MAX_ALIAS_NAME`] characters so `<alias>--<site>` fits a label, and never 16 hex
/// characters, which would be read as a deploy id (`<deploy>--<site>` is a preview).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AliasName(String);

impl AliasName {
    pub fn parse(raw: &str) -> Result<AliasName, String> {
        let name = SiteName::parse(raw).map_err(|e| e.replace("site name", "alias name"))?;
        if name.as_str().len() > MAX_ALIAS_NAME {
            return Err(format!(
                "an alias name has 1 to {MAX_ALIAS_NAME} characters"
            ));
        }
        if DeployId::parse(name.as_str()).is_ok() {
            return Err("an alias name cannot be 16 hex characters: that names a deploy".into());
        }
        Ok(AliasName(name.as_str().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<alias>--<site>.<base-domain>`
pub fn alias_host(app: &App, site: &str, alias: &str) -> String {
    format!("{alias}--{}", app.site_host(site))
}

pub fn alias_view(app: &App, site: &str, alias: &AliasRecord) -> api::Alias {
    api::Alias {
        name: alias.name.clone(),
        site: site.to_owned(),
        deploy_id: alias.deploy_id.clone(),
        url: app.preview_url(site, &alias.name),
        created_at: alias.created_at,
        updated_at: alias.updated_at,
    }
}

/// Points alias `raw_alias` of the caller's site at `deploy_id`, a ready deploy of that
/// site (creating the alias or moving it), and drops the alias host from every cache.
pub async fn set_alias(
    app: &Arc<App>,
    owner_id: i64,
    site: &str,
    raw_alias: &str,
    deploy_id: &str,
) -> ActionResult<api::Alias> {
    let site = owned_site(app, owner_id, site).await?;
    let alias = AliasName::parse(raw_alias)
        .map_err(|reason| ActionError::Invalid(format!("alias {raw_alias:?}: {reason}")))?;
    let deploy = owned_deploy(app, owner_id, deploy_id).await?;
    if deploy.site_id != site.id {
        return Err(ActionError::OtherSite { deploy: deploy.id });
    }
    if deploy.state != DeployState::Ready {
        return Err(ActionError::Conflict(format!(
            "deploy {} is not ready (it is {:?}); an alias points only at a ready deploy",
            deploy.id, deploy.state
        )));
    }
    if !app
        .store
        .set_alias(owner_id, site.id, alias.as_str(), &deploy.id)
        .await?
    {
        // The site or deploy went away between the checks and the write.
        return Err(ActionError::not_found(format!("deploy {deploy_id:?}")));
    }
    crate::publish::invalidate_host(app, &alias_host(app, &site.name, alias.as_str())).await;
    tracing::info!(site.name = %site.name, alias.name = %alias, deploy.id = %deploy.id, "alias moved");
    let record = app
        .store
        .list_aliases(owner_id, site.id)
        .await?
        .into_iter()
        .find(|a| a.name == alias.as_str())
        .ok_or_else(|| ActionError::not_found(format!("alias {raw_alias:?}")))?;
    Ok(alias_view(app, &site.name, &record))
}

/// The aliases of the caller's site, by name.
pub async fn list_aliases(app: &App, owner_id: i64, site: &str) -> ActionResult<Vec<api::Alias>> {
    let site = owned_site(app, owner_id, site).await?;
    let aliases = app.store.list_aliases(owner_id, site.id).await?;
    Ok(aliases
        .iter()
        .map(|alias| alias_view(app, &site.name, alias))
        .collect())
}

/// Removes an alias of the caller's site; its host stops serving on every replica.
pub async fn remove_alias(
    app: &Arc<App>,
    owner_id: i64,
    site: &str,
    raw_alias: &str,
) -> ActionResult<()> {
    let site = owned_site(app, owner_id, site).await?;
    let missing = || ActionError::not_found(format!("alias {raw_alias:?}"));
    let alias = AliasName::parse(raw_alias).map_err(|_| missing())?;
    if !app
        .store
        .delete_alias(owner_id, site.id, alias.as_str())
        .await?
    {
        return Err(missing());
    }
    crate::publish::invalidate_host(app, &alias_host(app, &site.name, alias.as_str())).await;
    tracing::info!(site.name = %site.name, alias.name = %alias, "alias removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_follow_the_site_name_rules() {
        assert!(AliasName::parse("staging").is_ok());
        assert!(AliasName::parse("feature-1").is_ok());
        for bad in [
            "",
            "Staging",
            "a--b",
            "-a",
            "a-",
            "www",
            "a_b",
            "seventeen-chars-x",
        ] {
            assert!(AliasName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn alias_names_never_look_like_deploy_ids() {
        assert!(AliasName::parse("0123456789abcdef").is_err());
        // Fifteen hex characters, or sixteen with a non-hex letter, are not deploy ids.
        assert!(AliasName::parse("0123456789abcde").is_ok());
        assert!(AliasName::parse("0123456789abcdeg").is_ok());
    }
}
