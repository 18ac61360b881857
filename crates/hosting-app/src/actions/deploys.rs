//! Deploys of a tenant: the ownership check, creation from a file list or from the
//! files of an archive, publish and rollback.

use std::collections::BTreeMap;
use std::sync::Arc;

use hosting_api::{self as api, DeployState};

use super::{ActionError, ActionResult};
use crate::domain::names::{DeployId, DeployPath, Sha256};
use crate::domain::quota::Quotas;
use crate::state::App;
use crate::store::{CreatedDeploy, DeployRecord, ManifestEntry, NewDeploy, SiteRecord};

/// The caller's deploy `raw`, or not found (also for another tenant's).
pub async fn owned_deploy(app: &App, owner_id: i64, raw: &str) -> ActionResult<DeployRecord> {
    let id = DeployId::parse(raw).map_err(|_| ActionError::not_found(format!("deploy {raw:?}")))?;
    app.store
        .deploy(owner_id, id.as_str())
        .await?
        .ok_or_else(|| ActionError::not_found(format!("deploy {raw:?}")))
}

/// The deploy message as stored: trimmed, `None` when blank, one line of at most
/// [`api::MAX_DEPLOY_MESSAGE_CHARS`] characters (it is shown in tables and history).
pub fn deploy_message(raw: Option<String>) -> ActionResult<Option<String>> {
    let Some(message) = raw.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let chars = message.chars().count();
    if chars > api::MAX_DEPLOY_MESSAGE_CHARS {
        return Err(ActionError::Malformed(format!(
            "the deploy message has {chars} characters; at most {} are allowed",
            api::MAX_DEPLOY_MESSAGE_CHARS
        )));
    }
    if message.chars().any(char::is_control) {
        return Err(ActionError::Malformed(
            "the deploy message must be one line without control characters".into(),
        ));
    }
    Ok(Some(message))
}

/// A file list's entries, checked: at least one file, at most the platform's limit,
/// valid paths and digests.
pub fn file_list(app: &App, files: &BTreeMap<String, String>) -> ActionResult<Vec<ManifestEntry>> {
    if files.is_empty() {
        return Err(ActionError::Invalid(
            "a deploy has at least one file".into(),
        ));
    }
    if files.len() as u64 > app.config.limits.max_files {
        return Err(ActionError::TooLarge(format!(
            "a deploy has at most {} files; this one has {}",
            app.config.limits.max_files,
            files.len()
        )));
    }
    // SECURITY: the archive route's name rules, so a site path maps to one file on any
    // filesystem or CDN whichever way it was deployed: no two paths differing only in
    // case or Unicode normalization, no path both a file and a directory.
    let mut names = hosting_archive::Names::default();
    let mut entries = Vec::with_capacity(files.len());
    for (path, sha) in files {
        let path = DeployPath::parse(path).map_err(ActionError::Invalid)?;
        names.add_file(path.as_str()).map_err(|e| {
            ActionError::Malformed(format!(
                "the file list was refused, nothing was created: {e}"
            ))
        })?;
        let sha256 = Sha256::parse(sha)
            .map_err(|e| ActionError::Invalid(format!("file {:?}: {e}", path.as_str())))?;
        entries.push(ManifestEntry {
            path: path.into_string(),
            sha256,
            size: 0,
        });
    }
    Ok(entries)
}

/// What a new deploy of `site` holds.
pub struct DeployInput {
    pub files: Vec<ManifestEntry>,
    /// `(key, fingerprint of the request)`: a retry with both answers the first deploy.
    pub idempotency: Option<(String, String)>,
    /// True when every file is in the blob store already (an archive): the deploy is
    /// ready at once.
    pub files_uploaded: bool,
    pub message: Option<String>,
}

/// Records a new deploy of the caller's site through the deploy quotas.
pub async fn create_deploy(
    app: &App,
    owner_id: i64,
    site: &SiteRecord,
    input: DeployInput,
) -> ActionResult<CreatedDeploy> {
    let new = NewDeploy {
        id: DeployId::generate(),
        site_id: site.id,
        owner_id,
        created_by: owner_id,
        files: input.files,
        idempotency: input.idempotency,
        files_uploaded: input.files_uploaded,
        message: input.message,
    };
    let quotas = Quotas::from_config(&app.config);
    let created = app.store.create_deploy(new, &quotas).await?;
    crate::audit::events::deploy_created(app, owner_id, &created).await;
    Ok(created)
}

/// Publishes the caller's ready deploy `id` and makes every cache see it at once.
pub async fn publish(app: &Arc<App>, owner_id: i64, id: &str) -> ActionResult<DeployRecord> {
    let deploy = owned_deploy(app, owner_id, id).await?;
    let refused = match deploy.state {
        DeployState::Ready => None,
        DeployState::Uploading => {
            let missing = app.store.missing_blobs(&deploy.id).await?.len();
            Some(format!(
                "deploy {} is still waiting for {missing} file(s); upload them first",
                deploy.id
            ))
        }
        DeployState::Expired | DeployState::Failed => Some(format!(
            "deploy {} is {:?} and cannot be published",
            deploy.id, deploy.state
        )),
    };
    let published = match refused {
        None => app.store.publish(owner_id, &deploy.id).await?,
        Some(_) => None,
    };
    let Some(published) = published else {
        let why = refused.unwrap_or_else(|| format!("deploy {} cannot be published", deploy.id));
        let actor = crate::audit::Actor::Id(owner_id);
        crate::audit::events::deploy_failed_on(app, actor, "deploy.publish", &deploy, &why).await;
        return Err(ActionError::Conflict(why));
    };
    crate::publish::invalidate_site(app, &published.site_name).await;
    metrics::counter!(crate::metrics::DEPLOYS_TOTAL, "kind" => "publish", "result" => "ok")
        .increment(1);
    tracing::info!(site.name = %published.site_name, deploy.id = %published.id, "deploy published");
    crate::audit::events::deploy_published(app, owner_id, &published).await;
    Ok(published)
}

/// The deploy a rollback of the caller's `site` publishes: `deploy_id`, which must be
/// of that site, or by default the one live before the current one.
pub async fn rollback_target(
    app: &App,
    owner_id: i64,
    site: &SiteRecord,
    deploy_id: Option<&str>,
) -> ActionResult<DeployRecord> {
    match deploy_id {
        Some(id) => {
            let deploy = owned_deploy(app, owner_id, id).await?;
            if deploy.site_id != site.id {
                return Err(ActionError::OtherSite {
                    deploy: id.to_owned(),
                });
            }
            Ok(deploy)
        }
        None => app
            .store
            .previous_live(owner_id, site.id)
            .await?
            .ok_or_else(|| {
                ActionError::Conflict(format!(
                    "site {:?} has no earlier deploy to roll back to",
                    site.name
                ))
            }),
    }
}
