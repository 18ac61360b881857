//! `hostctl deploy DIR --site NAME`: hash the folder, check it against the server's
//! limits, create a digest deploy, upload what the server lacks, publish, and print
//! where it went. A site this run created is deleted again when the deploy fails, so a
//! failed first deploy leaves nothing behind.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use backon::Retryable;
use hosting_api::{CreateDeploy, CreatedDeploy, Deploy, Limits, MAX_DEPLOY_MESSAGE_CHARS};
use indicatif::MultiProgress;
use reqwest::StatusCode;
use serde::Serialize;

use super::{live_url, Context};
use crate::cli::DeployArgs;
use crate::client::{self, ApiError, Client};
use crate::deploy::bulk::{upload_early, upload_in_batches, Batching};
use crate::deploy::cache::DigestCache;
use crate::deploy::hashing::{hash_folder_with, CacheSaved};
use crate::deploy::progress::{self, bars_on_terminal};
use crate::deploy::timings::Timings;
use crate::deploy::upload::files_for;
use crate::deploy::walk::{walk, Hashed, HashedFile};
use crate::deploy::{digest_map, idempotency_key, limits, FileCounts};
use crate::output::{self, human_size};

/// What `--json` prints: the deploy, where it is live, and what was uploaded.
#[derive(Debug, Serialize)]
struct DeployOutput<'a> {
    #[serde(flatten)]
    deploy: &'a Deploy,
    /// The site's live URL; `null` with `--no-publish`.
    url: Option<&'a str>,
    uploaded: usize,
    unchanged: usize,
}

/// Runs the whole deploy.
pub async fn run(ctx: &Context, args: DeployArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut timings = Timings::new(args.timings);
    let client = ctx.client()?;
    if !args.dir.exists() {
        bail!("{} does not exist", args.dir.display());
    }
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    if let Some(message) = &args.message {
        let chars = message.chars().count();
        if chars > MAX_DEPLOY_MESSAGE_CHARS {
            bail!("the message has {chars} characters; at most {MAX_DEPLOY_MESSAGE_CHARS} are allowed");
        }
    }
    let bars = bars_on_terminal();

    let server_limits = match client.limits().await {
        Ok(server) => Some(server),
        // A server from before `GET /limits`: it still refuses oversized files itself.
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => None,
        Err(e) => return Err(e.into()),
    };
    timings.step("limits", String::new);
    let early = args.early_upload.then_some(Early {
        client: &client,
        limits: server_limits,
        shape: args.batching(),
    });
    let hashing = Hashing {
        dir: &args.dir,
        cached: !args.no_cache,
        bars,
    };
    let (files, uploaded_early) = find_and_hash(ctx, hashing, early, &mut timings).await?;
    if !files.iter().any(|f| f.site_path == "/index.html") {
        eprintln!(
            "warning: {} has no index.html, so the site's front page will be a 404",
            args.dir.display()
        );
    }
    if let Some(server) = &server_limits {
        limits::check(&files, server)?;
    }

    let site_created = ensure_site(ctx, &client, &args.site).await?;
    timings.step("site", String::new);
    let body = digest_map(&files, args.message.clone());
    let upload = Upload {
        files: &files,
        body: &body,
        uploaded_early: &uploaded_early,
        bars,
    };
    let result = upload_and_publish(ctx, &client, &args, upload, &mut timings).await;
    let (deploy, counts) = match result {
        Ok(done) => done,
        Err(error) if site_created => {
            // Best effort: the deploy's own error is what the user needs to see.
            match client.delete_site(&args.site).await {
                Ok(()) => ctx.note(&format!(
                    "Deleted site {} again: its first deploy failed",
                    args.site
                )),
                Err(e) => eprintln!("warning: could not delete the new site {}: {e}", args.site),
            }
            return Err(error);
        }
        Err(error) => return Err(error),
    };

    let live = if args.no_publish {
        None
    } else if let Some(alias) = &args.alias {
        // `<id>--<site>` -> `<alias>--<site>`: where the alias serves this deploy.
        Some(
            deploy
                .preview_url
                .replacen(&format!("{}--", deploy.id), &format!("{alias}--"), 1),
        )
    } else {
        Some(live_url(&client, &deploy).await)
    };
    if ctx.json {
        return output::print_json(&DeployOutput {
            deploy: &deploy,
            url: live.as_deref(),
            uploaded: counts.uploaded,
            unchanged: counts.unchanged,
        });
    }
    if !bars {
        if let Some(url) = &live {
            ctx.note(&format!("Live at {url}"));
        }
    }
    output::out(&summary(
        &counts,
        started.elapsed(),
        live.as_deref(),
        &deploy,
    ))?;
    timings.total();
    Ok(())
}

/// What to hash and how to show it.
struct Hashing<'a> {
    dir: &'a Path,
    /// Trust the digest cache for unchanged files.
    cached: bool,
    bars: bool,
}

/// The early upload's server, and its limits when it tells them.
struct Early<'a> {
    client: &'a Client,
    limits: Option<Limits>,
    shape: Batching,
}

/// Walks and hashes the folder off the async runtime (blocking disk work), reading only
/// the files the digest cache cannot vouch for when `cached`, and saves the cache. With
/// `early`, the files it reads are uploaded while it reads the rest (`upload_early`);
/// their digests come back with the files.
async fn find_and_hash(
    ctx: &Context,
    hashing: Hashing<'_>,
    early: Option<Early<'_>>,
    timings: &mut Timings,
) -> anyhow::Result<(Vec<HashedFile>, Vec<String>)> {
    let Hashing { dir, cached, bars } = hashing;
    let root = dir.to_owned();
    let cache = tokio::task::spawn_blocking(move || match cached {
        true => DigestCache::for_folder(&root),
        false => DigestCache::off(),
    })
    .await
    .context("reading the digest cache was interrupted")?;
    timings.step("cache", || match (&cache.ignored, cache.enabled()) {
        (_, false) => "off".to_owned(),
        (Some(why), true) => format!("ignored: {why}"),
        (None, true) => format!("{} digests", cache.len()),
    });
    let root = dir.to_owned();
    let found = tokio::task::spawn_blocking(move || walk(&root))
        .await
        .context("listing the folder was interrupted")??;
    timings.step("walk", || progress::files(found.len()));
    if !bars {
        ctx.note(&format!("Hashing {}", progress::files(found.len())));
    }
    // A folder over the file limit is refused after hashing: nothing to send early.
    let early = early.filter(|early| {
        early
            .limits
            .is_none_or(|limits| found.len() as u64 <= limits.max_files)
    });
    let bars_shown = MultiProgress::new();
    let bar = bars_shown.add(progress::hashing_bar(found.len(), bars));
    let threads = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .min(16);
    let hashing = bar.clone();
    let (fresh, read) = tokio::sync::mpsc::unbounded_channel();
    let sending = early.is_some().then_some(fresh);
    let hashed = tokio::task::spawn_blocking(move || {
        let on_read = move |file: &HashedFile| {
            if let Some(fresh) = &sending {
                // The early upload stopped (an old server): the files go after the create.
                let _ = fresh.send(file.clone());
            }
        };
        hash_folder_with(found, threads, &hashing, &cache, &on_read)
    });
    let hashed = async {
        let hashed = hashed.await;
        (hashed, Instant::now())
    };
    let early_bar = bars_shown.add(progress::upload_bar(0, bars && early.is_some()));
    let uploading = async {
        match &early {
            Some(early) => {
                let max_file_bytes = early.limits.map_or(u64::MAX, |l| l.max_file_bytes);
                upload_early(early.client, read, max_file_bytes, early.shape, &early_bar)
                    .await
                    .map(Some)
            }
            None => Ok(None),
        }
    };
    let ((hashed, hashed_at), uploaded) = tokio::join!(hashed, uploading);
    let hashed = hashed.context("hashing was interrupted")?;
    bar.finish_and_clear();
    early_bar.finish_and_clear();
    let (Hashed { files, read, .. }, saved) = hashed?;
    timings.step_at("hash", hashed_at, || {
        let saved = match &saved {
            CacheSaved::Off => "",
            CacheSaved::Saved => ", cache saved",
            CacheSaved::Failed(_) => ", cache not saved",
        };
        format!("{read} read, {} from the cache{saved}", files.len() - read)
    });
    if let CacheSaved::Failed(e) = saved {
        eprintln!(
            "warning: could not save the digest cache ({e}); the next deploy reads every file"
        );
    }
    let uploaded = uploaded?;
    if let Some(early) = &uploaded {
        timings.step("early", || match early.supported {
            false => "not supported by the server".to_owned(),
            true => format!(
                "{} asked, {} uploaded in {} batches, {} (after hashing ended)",
                early.asked,
                early.uploaded,
                early.batches,
                human_size(early.bytes)
            ),
        });
    }
    Ok((
        files,
        uploaded.map(|early| early.digests).unwrap_or_default(),
    ))
}

/// Creates the site when it does not exist yet; true when this run created it.
async fn ensure_site(ctx: &Context, client: &Client, site: &str) -> anyhow::Result<bool> {
    match client.get_site(site).await {
        Ok(_) => return Ok(false),
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {}
        Err(e) => return Err(e.into()),
    }
    match client.create_site(site).await {
        Ok(_) => {
            ctx.note(&format!("Created site {site}"));
            Ok(true)
        }
        // Someone created it between our two requests: just as good, and not ours to delete.
        Err(e) if e.status() == Some(StatusCode::CONFLICT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What the deploy holds and what was uploaded already.
struct Upload<'a> {
    files: &'a [HashedFile],
    body: &'a CreateDeploy,
    /// Digests uploaded before the deploy was created.
    uploaded_early: &'a [String],
    bars: bool,
}

/// Creates the deploy, uploads what the server lacks, and publishes unless told not to.
async fn upload_and_publish(
    ctx: &Context,
    client: &Client,
    args: &DeployArgs,
    upload: Upload<'_>,
    timings: &mut Timings,
) -> anyhow::Result<(Deploy, FileCounts)> {
    let Upload {
        files,
        body,
        uploaded_early,
        bars,
    } = upload;
    let created = create_deploy(client, &args.dir, &args.site, body).await?;
    let deploy_id = created.deploy.id.clone();
    let uploaded: Vec<String> = created
        .required
        .iter()
        .chain(uploaded_early)
        .cloned()
        .collect();
    let counts = FileCounts::new(files, &uploaded);
    timings.step("create", || {
        format!(
            "{} in the file list, {} required",
            body.files.len(),
            created.required.len()
        )
    });

    let to_upload = files_for(&created.required, files)?;
    let bytes: u64 = to_upload.iter().map(|f| f.size).sum();
    if !bars {
        // The whole upload: what went up while hashing and what the deploy still needs.
        let all = files_for(&uploaded, files)?;
        ctx.note(&format!(
            "Uploading {} of {} ({})",
            all.len(),
            progress::files(files.len()),
            human_size(all.iter().map(|f| f.size).sum())
        ));
    }
    let bar = progress::upload_bar(bytes, bars);
    let uploaded = upload_in_batches(
        client,
        &deploy_id,
        &to_upload,
        args.batching(),
        usize::from(args.concurrency),
        &bar,
    )
    .await;
    bar.finish_and_clear();
    uploaded?;
    timings.step("upload", || {
        format!(
            "{}, {}",
            progress::files(to_upload.len()),
            human_size(bytes)
        )
    });

    let deploy = if args.no_publish {
        // Re-read it: the state has moved on from `uploading` since it was created.
        client.get_deploy(&deploy_id).await?
    } else if let Some(alias) = &args.alias {
        client.set_alias(&args.site, alias, &deploy_id).await?;
        client.get_deploy(&deploy_id).await?
    } else {
        client.publish(&deploy_id).await?
    };
    timings.step("publish", String::new);
    Ok((deploy, counts))
}

/// `POST /sites/{site}/deploys`, retrying transient failures under one idempotency key,
/// so at most one deploy comes of it.
async fn create_deploy(
    client: &Client,
    dir: &Path,
    site: &str,
    body: &CreateDeploy,
) -> Result<CreatedDeploy, ApiError> {
    let key = idempotency_key(dir, site, 0);
    (|| client.create_deploy(site, body, &key))
        .retry(client::backoff())
        .when(ApiError::is_retryable)
        .await
}

/// The human summary printed after a deploy.
fn summary(counts: &FileCounts, elapsed: Duration, live: Option<&str>, deploy: &Deploy) -> String {
    let mut text = format!(
        "Deployed {} ({} uploaded, {} unchanged) in {:.1}s\n",
        progress::files(counts.total),
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
            message: None,
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
    fn an_unpublished_one_file_summary_says_so() {
        let counts = FileCounts {
            total: 1,
            uploaded: 1,
            unchanged: 0,
        };
        let text = summary(&counts, Duration::from_millis(50), None, &deploy());
        assert!(text.starts_with("Deployed 1 file (1 uploaded"), "{text}");
        assert!(text.contains("\nNot published\nPreview: "), "{text}");
    }
}
