//! The ACME (RFC 8555) client: one account per directory, kept sealed in the database so
//! every replica uses the same one, and one HTTP-01 order per custom domain (DNS-01 for
//! the platform's wildcard, `order_dns01`).

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use zeroize::Zeroizing;

use super::challenge::ChallengeAnswers;
use super::seal::Sealer;
use crate::config::Config;
use crate::shared::SharedState;
use crate::store::Store;

/// How long the CA may take to validate and to issue.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

/// Where an order failed: the label of `hosting_acme_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Account,
    Order,
    Challenge,
    Finalize,
    Store,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Account => "account",
            Stage::Order => "order",
            Stage::Challenge => "challenge",
            Stage::Finalize => "finalize",
            Stage::Store => "store",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", stage.as_str())]
pub struct OrderError {
    pub stage: Stage,
    pub message: String,
    /// The CA no longer knows the platform's account (a test CA restarted, or the
    /// account was deactivated): a new one must be created.
    pub account_gone: bool,
}

impl OrderError {
    pub fn new(stage: Stage, message: impl std::fmt::Display) -> OrderError {
        OrderError {
            stage,
            message: message.to_string(),
            account_gone: false,
        }
    }

    /// From the ACME client's error, noting an account the CA does not know.
    fn acme(stage: Stage, error: instant_acme::Error) -> OrderError {
        let account_gone = matches!(
            &error,
            instant_acme::Error::Api(problem)
                if problem.r#type.as_deref() == Some("urn:ietf:params:acme:error:accountDoesNotExist")
        );
        OrderError {
            account_gone,
            ..OrderError::new(stage, error)
        }
    }
}

/// Why the CA refused a new account, with what the operator can do about the usual causes.
fn account_error(error: instant_acme::Error) -> String {
    let hint = match &error {
        instant_acme::Error::Api(problem) => match problem.r#type.as_deref() {
            Some("urn:ietf:params:acme:error:externalAccountRequired") => {
                " (this CA needs an external account binding: set HOSTING_ACME_EAB_KID and \
                 HOSTING_ACME_EAB_HMAC_KEY to what the CA gave you)"
            }
            Some(
                "urn:ietf:params:acme:error:unauthorized" | "urn:ietf:params:acme:error:malformed",
            ) if error
                .to_string()
                .to_ascii_lowercase()
                .contains("external account") =>
            {
                " (check HOSTING_ACME_EAB_KID and HOSTING_ACME_EAB_HMAC_KEY)"
            }
            _ => "",
        },
        _ => "",
    };
    format!("creating the ACME account: {error}{hint}")
}

/// A certificate just issued: the chain (leaf first) and its private key.
pub struct NewCertificate {
    pub chain_pem: String,
    pub key_pem: Zeroizing<String>,
}

pub struct AcmeClient {
    account: Account,
    directory: String,
    /// The stored credentials this client was made from (to forget them if the CA has).
    sealed: Vec<u8>,
}

impl AcmeClient {
    /// The platform's account at the configured directory: the stored one, or a new one
    /// stored for every replica (the first replica to store one wins).
    pub async fn connect(
        config: &Config,
        store: &dyn Store,
        sealer: &Sealer,
    ) -> Result<AcmeClient, OrderError> {
        let fail = |e: &dyn std::fmt::Display| OrderError::new(Stage::Account, e);
        let directory = config
            .acme
            .acme_directory
            .clone()
            .ok_or_else(|| fail(&"HOSTING_ACME_DIRECTORY is not set"))?;
        let context = format!("acme-account:{directory}");
        let builder = || match &config.acme.acme_ca_root {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        let stored = store.acme_account(&directory).await.map_err(|e| fail(&e))?;
        let sealed = match stored {
            Some(sealed) => sealed,
            None => {
                let contact = config
                    .acme
                    .acme_contact
                    .as_ref()
                    .map(|c| format!("mailto:{c}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let binding = config
                    .acme
                    .external_account()
                    .map(|account| ExternalAccountKey::new(account.key_id, &account.hmac_key));
                let (_, credentials) = builder()
                    .map_err(|e| fail(&e))?
                    .create(
                        &NewAccount {
                            contact: &contacts,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        directory.clone(),
                        binding.as_ref(),
                    )
                    .await
                    .map_err(|e| fail(&account_error(e)))?;
                let json = Zeroizing::new(serde_json::to_vec(&credentials).map_err(|e| fail(&e))?);
                let sealed = sealer.seal(&context, &json).map_err(|e| fail(&e))?;
                tracing::info!(acme.directory = %directory, "created an ACME account");
                store
                    .save_acme_account(&directory, &sealed, chrono::Utc::now())
                    .await
                    .map_err(|e| fail(&e))?
            }
        };
        let json = sealer.open(&context, &sealed).map_err(|e| fail(&e))?;
        let credentials: AccountCredentials =
            serde_json::from_slice(&json).map_err(|e| fail(&e))?;
        let account = builder()
            .map_err(|e| fail(&e))?
            .from_credentials(credentials)
            .await
            .map_err(|e| fail(&e))?;
        Ok(AcmeClient {
            account,
            directory,
            sealed,
        })
    }

    /// Drops the stored account (the CA no longer knows it); the next connect creates one.
    pub async fn forget(&self, store: &dyn Store) -> Result<(), crate::store::StoreError> {
        tracing::warn!(acme.directory = %self.directory, "the ACME server no longer knows the platform's account; creating a new one");
        store
            .forget_acme_account(&self.directory, &self.sealed)
            .await
    }

    /// Orders a certificate for `domain`, answering HTTP-01 through `answers` (shared
    /// with every replica, since any of them may receive the CA's validation request).
    pub async fn order(
        &self,
        domain: &str,
        answers: &ChallengeAnswers,
        shared: &dyn SharedState,
    ) -> Result<NewCertificate, OrderError> {
        let identifiers = [Identifier::Dns(domain.to_owned())];
        let mut order = self
            .account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| OrderError::acme(Stage::Order, e))?;
        let mut tokens = Vec::new();
        let outcome = async {
            let mut authorizations = order.authorizations();
            while let Some(authorization) = authorizations.next().await {
                let mut authorization =
                    authorization.map_err(|e| OrderError::acme(Stage::Order, e))?;
                if !needs_answer(authorization.status)? {
                    continue;
                }
                let mut challenge =
                    authorization
                        .challenge(ChallengeType::Http01)
                        .ok_or_else(|| {
                            OrderError::new(Stage::Challenge, "the CA offers no http-01 challenge")
                        })?;
                let token = challenge.token.clone();
                answers
                    .publish(
                        shared,
                        domain,
                        &token,
                        challenge.key_authorization().as_str(),
                    )
                    .await
                    .map_err(|e| OrderError::new(Stage::Challenge, e))?;
                tokens.push(token);
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| OrderError::acme(Stage::Challenge, e))?;
            }
            issue(&mut order).await
        }
        .await;
        for token in &tokens {
            answers.withdraw(shared, token).await;
        }
        outcome
    }
}

/// The CA's reasons for failed challenges, as `: <detail>; <detail>` (empty if none).
/// Whether an authorization still needs its challenge answered (pending) or is already
/// valid (the CA remembers an earlier one); any other state fails the order.
fn needs_answer(status: AuthorizationStatus) -> Result<bool, OrderError> {
    match status {
        AuthorizationStatus::Pending => Ok(true),
        AuthorizationStatus::Valid => Ok(false),
        other => Err(OrderError::new(
            Stage::Challenge,
            format!("the authorization is {other:?}"),
        )),
    }
}

/// Once every challenge is answered: waits for the CA to validate them, then finalizes
/// with a new key and fetches the chain.
async fn issue(order: &mut instant_acme::Order) -> Result<NewCertificate, OrderError> {
    match order.poll_ready(&POLL).await {
        Ok(OrderStatus::Ready) => {}
        Ok(status) => {
            let why = challenge_errors(order).await;
            return Err(OrderError::new(
                Stage::Challenge,
                format!("the order is {status:?}{why}"),
            ));
        }
        Err(e) => return Err(OrderError::acme(Stage::Challenge, e)),
    }
    let key_pem = Zeroizing::new(
        order
            .finalize()
            .await
            .map_err(|e| OrderError::acme(Stage::Finalize, e))?,
    );
    let chain_pem = order
        .poll_certificate(&POLL)
        .await
        .map_err(|e| OrderError::acme(Stage::Finalize, e))?;
    Ok(NewCertificate { chain_pem, key_pem })
}

async fn challenge_errors(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                reasons.push(problem.to_string());
            }
        }
    }
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join("; "))
    }
}

impl AcmeClient {
    /// One order for `names` (a wildcard allowed) with DNS-01 answers published through
    /// `dns`; the records are cleared again whatever the outcome.
    pub async fn order_dns01(
        &self,
        names: &[String],
        dns: &super::dns01::DnsUpdater,
    ) -> Result<NewCertificate, OrderError> {
        use super::dns01::DnsUpdater;
        let identifiers: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
        let mut order = self
            .account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| OrderError::acme(Stage::Order, e))?;
        let mut published: Vec<String> = Vec::new();
        let outcome = async {
            let mut authorizations = order.authorizations();
            while let Some(authorization) = authorizations.next().await {
                let mut authorization =
                    authorization.map_err(|e| OrderError::acme(Stage::Order, e))?;
                if !needs_answer(authorization.status)? {
                    continue;
                }
                let mut challenge =
                    authorization
                        .challenge(ChallengeType::Dns01)
                        .ok_or_else(|| {
                            OrderError::new(Stage::Challenge, "the CA offers no dns-01 challenge")
                        })?;
                let Identifier::Dns(domain) = challenge.identifier().identifier else {
                    return Err(OrderError::new(Stage::Challenge, "not a DNS identifier"));
                };
                let record = DnsUpdater::challenge_name(domain);
                // Left-overs of an earlier, interrupted order would only confuse the CA.
                if !published.contains(&record) {
                    dns.clear_txt(&record)
                        .await
                        .map_err(|e| OrderError::new(Stage::Challenge, e))?;
                    published.push(record.clone());
                }
                dns.add_txt(&record, &challenge.key_authorization().dns_value())
                    .await
                    .map_err(|e| OrderError::new(Stage::Challenge, e))?;
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| OrderError::acme(Stage::Challenge, e))?;
            }
            issue(&mut order).await
        }
        .await;
        for record in &published {
            if let Err(e) = dns.clear_txt(record).await {
                tracing::warn!(dns.name = %record, error = %e, "clearing a DNS-01 answer failed");
            }
        }
        outcome
    }
}
