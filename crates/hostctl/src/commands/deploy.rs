//! `hostctl deploy DIR --site NAME`: hash the folder, create a digest deploy, upload what
//! the server lacks, publish, and print where it went.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hosting_api::{CreateDeploy, CreatedDeploy, Deploy};
use reqwest::StatusCode;

use super::{live_url, Context};
use crate::cli::DeployArgs;
use crate::client::Client;
use crate::deploy::upload::{files_for, progress_bar, upload_all};
use crate::deploy::walk::{hash_all, walk};
use crate::deploy::{digest_map, idempotency_key, FileCounts};
use crate::output;

/// Retries of `POST /sites/{site}/deploys` after a transient failure.
const CREATE_RETRIES: u32 = 3;

/// Runs the whole deploy.
pub async fn run(ctx: &Context, args: DeployArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let client = ctx.client()?;
    if !args.dir.exists() {
        bail!("{} does not exist", args.dir.display());
    }
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }

    // Walking and hashing are blocking disk work; keep them off the async runtime.
    let dir = args.dir.clone();
    let threads = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .min(16);
    let files =
        tokio::task::spawn_blocking(move || walk(&dir).and_then(|found| hash_all(found, threads)))
            .await
            .context("hashing was interrupted")??;

    let created = create_deploy(ctx, &client, &args.dir, &args.site, &digest_map(&files)).await?;
    let deploy_id = created.deploy.id.clone();
    let counts = FileCounts::new(&files, &created.required);

    let to_upload = files_for(&created.required, &files)?;
    let progress = progress_bar(to_upload.iter().map(|f| f.size).sum());
    let uploaded = upload_all(
        &client,
        &deploy_id,
        &to_upload,
        usize::from(args.concurrency),
        &progress,
    )
    .await;
    progress.finish_and_clear();
    uploaded?;

    let deploy = if args.no_publish {
        // Re-read it: the state has moved on from `uploading` since it was created.
        client.get_deploy(&deploy_id).await?
    } else {
        client.publish(&deploy_id).await?
    };

    if ctx.json {
        return output::print_json(&deploy);
    }
    let live = if args.no_publish {
        None
    } else {
        Some(live_url(&client, &deploy).await)
    };
    output::out(&summary(
        &counts,
        started.elapsed(),
        live.as_deref(),
        &deploy,
    ))?;
    Ok(())
}

/// `POST /sites/{site}/deploys`, creating the site first when it does not exist yet and
/// retrying transient failures under the same idempotency key, so at most one deploy
/// comes of it.
async fn create_deploy(
    ctx: &Context,
    client: &Client,
    dir: &Path,
    site: &str,
    files: &CreateDeploy,
) -> anyhow::Result<CreatedDeploy> {
    let mut attempt = 0;
    let mut key = idempotency_key(dir, site, attempt);
    // Ask first, so a large file list is not sent to a site that does not exist yet.
    let mut site_created = false;
    if let Err(error) = client.get_site(site).await {
        if error.status() != Some(StatusCode::NOT_FOUND) {
            return Err(error.into());
        }
        match client.create_site(site).await {
            Ok(_) => ctx.note(&format!("Created site {site}")),
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => {}
            Err(e) => return Err(e.into()),
        }
        site_created = true;
    }
    let mut retries = 0;
    loop {
        let error = match client.create_deploy(site, files, &key).await {
            Ok(created) => return Ok(created),
            Err(error) => error,
        };
        if error.status() == Some(StatusCode::NOT_FOUND) && !site_created {
            match client.create_site(site).await {
                Ok(_) => ctx.note(&format!("Created site {site}")),
                // Someone created it between our two requests: just as good.
                Err(e) if e.status() == Some(StatusCode::CONFLICT) => {}
                Err(e) => return Err(e.into()),
            }
            site_created = true;
            // A new logical request: the 404 may have been remembered under the old key.
            attempt += 1;
            key = idempotency_key(dir, site, attempt);
        } else if error.is_retryable() && retries < CREATE_RETRIES {
            retries += 1;
            tokio::time::sleep(Duration::from_millis(250 << retries)).await;
        } else {
            return Err(error.into());
        }
    }
}

/// The human summary printed after a deploy.
fn summary(counts: &FileCounts, elapsed: Duration, live: Option<&str>, deploy: &Deploy) -> String {
    let mut text = format!(
        "Deployed {} files ({} uploaded, {} unchanged) in {:.1}s\n",
        counts.total,
        counts.uploaded,
        counts.unchanged,
        elapsed.as_secs_f64()
    );
    match live {
        Some(url) => text.push_str(&format!("Live:    {url}\n")),
        None => text.push_str("Not published\n"),
    }
    text.push_str(&format!("Preview: {}\n", deploy.preview_url));
    text
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use hosting_api::DeployState;

    use super::*;

    fn deploy() -> Deploy {
        Deploy {
            id: "d1".into(),
            site: "blog".into(),
            state: DeployState::Ready,
            live: true,
            file_count: 42,
            total_bytes: 1000,
            created_by: "alice".into(),
            created_at: Utc::now(),
            published_at: None,
            preview_url: "http://d1--blog.localhost:3000/".into(),
            error: None,
        }
    }

    #[test]
    fn the_summary_reads_as_documented() {
        let counts = FileCounts {
            total: 42,
            uploaded: 3,
            unchanged: 39,
        };
        let text = summary(
            &counts,
            Duration::from_millis(1234),
            Some("http://blog.localhost:3000/"),
            &deploy(),
        );
        assert_eq!(
            text,
            "Deployed 42 files (3 uploaded, 39 unchanged) in 1.2s\n\
             Live:    http://blog.localhost:3000/\n\
             Preview: http://d1--blog.localhost:3000/\n"
        );
    }

    #[test]
    fn an_unpublished_summary_says_so() {
        let counts = FileCounts {
            total: 1,
            uploaded: 1,
            unchanged: 0,
        };
        let text = summary(&counts, Duration::from_millis(50), None, &deploy());
        assert!(text.contains("\nNot published\nPreview: "), "{text}");
    }
}
