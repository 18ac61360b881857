//! `hostctl sites hsts`: a site's Strict-Transport-Security setting.

use hosting_api::Hsts;

use super::Context;
use crate::output::{self, outln};

/// Shows the setting, or sets it when `max_age` is given (0 turns it off).
pub async fn run(
    ctx: &Context,
    site: &str,
    max_age: Option<u32>,
    include_subdomains: bool,
) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let hsts = match max_age {
        Some(max_age) => {
            let body = Hsts {
                max_age,
                include_subdomains,
            };
            client.set_site_hsts(site, &body).await?
        }
        None => client.site_hsts(site).await?,
    };
    if ctx.json {
        return output::print_json(&hsts);
    }
    outln!("{}", describe(site, &hsts));
    Ok(())
}

fn describe(site: &str, hsts: &Hsts) -> String {
    match (hsts.max_age, hsts.include_subdomains) {
        (0, _) => format!("Site {site} sends no HSTS header"),
        (max_age, false) => format!(
            "Site {site} sends Strict-Transport-Security: max-age={max_age} over HTTPS"
        ),
        (max_age, true) => format!(
            "Site {site} sends Strict-Transport-Security: max-age={max_age}; includeSubDomains over HTTPS"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_described_as_the_header_it_sends() {
        let off = Hsts::default();
        assert_eq!(describe("blog", &off), "Site blog sends no HSTS header");
        let on = Hsts {
            max_age: 300,
            include_subdomains: true,
        };
        assert_eq!(
            describe("blog", &on),
            "Site blog sends Strict-Transport-Security: max-age=300; includeSubDomains over HTTPS"
        );
    }
}
