//! `hostctl domains add | list | verify | renew | remove`.

use hosting_api::{Certificate, CertificateStatus, Domain, DomainStatus};

use super::Context;
use crate::cli::DomainsCommand;
use crate::output::{self, outln};

fn status_text(status: DomainStatus) -> &'static str {
    match status {
        DomainStatus::Pending => "pending",
        DomainStatus::Verified => "verified",
        DomainStatus::Failed => "failed",
    }
}

/// `issued, expires 2027-02-01 10:00` / `failed (3x): <why>` / `-` (no certificate).
fn certificate_text(certificate: Option<&Certificate>) -> String {
    let Some(c) = certificate else {
        return "-".to_owned();
    };
    match c.status {
        CertificateStatus::Pending => "pending".to_owned(),
        CertificateStatus::Issued => match &c.not_after {
            Some(not_after) => format!("issued, expires {}", output::timestamp(not_after)),
            None => "issued".to_owned(),
        },
        CertificateStatus::Failed => format!(
            "failed ({}x): {}",
            c.failures,
            c.last_error.as_deref().unwrap_or("unknown error")
        ),
    }
}

/// What the owner must do to prove control of a domain.
fn print_instructions(domain: &Domain) -> std::io::Result<()> {
    outln!("Prove you control {} with either:", domain.name);
    outln!(
        "  a DNS TXT record   {}  =  \"{}\"",
        domain.verification.txt_name,
        domain.verification.txt_value
    );
    outln!(
        "  or point the domain at the platform (CNAME to the site's host, or A/AAAA);\n  \
         the platform then answers http://{}{} itself.",
        domain.name,
        domain.verification.http_path
    );
    outln!(
        "Then run `hostctl domains verify --site {} {}` (it is also re-checked periodically).",
        domain.site,
        domain.name
    );
    Ok(())
}

/// Runs one `domains` subcommand.
pub async fn run(ctx: &Context, command: DomainsCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        DomainsCommand::Add { site, domain } => {
            let domain = client.add_domain(&site, &domain).await?;
            if ctx.json {
                return output::print_json(&domain);
            }
            outln!("Added {} to site {} (pending)", domain.name, domain.site);
            print_instructions(&domain)?;
        }
        DomainsCommand::List { site } => {
            let domains = client.list_domains(&site).await?;
            if ctx.json {
                return output::print_json(&domains);
            }
            let rows: Vec<Vec<String>> = domains
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        status_text(d.status).to_owned(),
                        d.checked_at
                            .as_ref()
                            .map_or_else(|| "-".to_owned(), output::timestamp),
                        d.status_detail.clone().unwrap_or_else(|| "-".to_owned()),
                        certificate_text(d.certificate.as_ref()),
                    ]
                })
                .collect();
            output::print_table(
                &["DOMAIN", "STATUS", "CHECKED", "DETAIL", "CERTIFICATE"],
                &rows,
                "No custom domains: add one with `hostctl domains add --site NAME DOMAIN`",
            )?;
        }
        DomainsCommand::Verify { site, domain } => {
            let domain = client.verify_domain(&site, &domain).await?;
            if ctx.json {
                return output::print_json(&domain);
            }
            outln!("{}: {}", domain.name, status_text(domain.status));
            if let Some(detail) = &domain.status_detail {
                outln!("  {detail}");
            }
            if domain.status != DomainStatus::Verified {
                print_instructions(&domain)?;
            }
        }
        DomainsCommand::Renew { site, domain } => {
            let domain = client.request_certificate(&site, &domain).await?;
            if ctx.json {
                return output::print_json(&domain);
            }
            outln!(
                "Ordering a certificate for {} now (currently: {})",
                domain.name,
                certificate_text(domain.certificate.as_ref())
            );
            outln!(
                "Follow it with `hostctl domains list --site {}`.",
                domain.site
            );
        }
        DomainsCommand::Remove { site, domain } => {
            client.remove_domain(&site, &domain).await?;
            if !ctx.json {
                outln!("Removed {domain} from site {site}");
            }
        }
    }
    Ok(())
}
