//! ACME HTTP-01 answers: `GET /.well-known/acme-challenge/<token>` on the domain being
//! validated. The CA's request may reach any replica, so answers go into the shared state
//! (Redis) as well as into this process (which is all there is in embedded mode).

use std::time::Duration;

use crate::shared::SharedState;

pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// An answer outlives any CA's validation of a pending order.
const ANSWER_TTL: Duration = Duration::from_secs(600);

pub struct ChallengeAnswers {
    local: moka::sync::Cache<String, String>,
}

impl Default for ChallengeAnswers {
    fn default() -> Self {
        ChallengeAnswers {
            local: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ANSWER_TTL)
                .build(),
        }
    }
}

fn shared_key(token: &str) -> String {
    format!("acme-challenge:{token}")
}

/// `<domain>\n<key authorization>`: an answer is given only on the domain it is for.
fn entry(domain: &str, key_authorization: &str) -> String {
    format!("{domain}\n{key_authorization}")
}

/// ACME tokens are base64url (RFC 8555 section 8.3); anything else is never looked up.
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ChallengeAnswers {
    /// Makes the answer available on every replica; an error when the shared state
    /// (which the other replicas read) did not take it.
    pub async fn publish(
        &self,
        shared: &dyn SharedState,
        domain: &str,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), String> {
        if !is_token(token) {
            return Err(format!("the CA sent a malformed challenge token {token:?}"));
        }
        let value = entry(domain, key_authorization);
        self.local.insert(token.to_owned(), value.clone());
        if shared.is_enabled()
            && !shared
                .set(&shared_key(token), value.as_bytes(), ANSWER_TTL)
                .await
        {
            return Err(
                "Redis did not store the challenge answer, so other replicas could not give it"
                    .into(),
            );
        }
        Ok(())
    }

    pub async fn withdraw(&self, shared: &dyn SharedState, token: &str) {
        self.local.invalidate(token);
        if shared.is_enabled() {
            shared.delete(&shared_key(token)).await;
        }
    }

    /// The key authorization to answer for `token` on `host`, if an order is waiting for it.
    pub async fn answer(
        &self,
        shared: &dyn SharedState,
        host: &str,
        token: &str,
    ) -> Option<String> {
        if !is_token(token) {
            return None;
        }
        let stored = match self.local.get(token) {
            Some(value) => value,
            None if shared.is_enabled() => {
                String::from_utf8(shared.get(&shared_key(token)).await?.to_vec()).ok()?
            }
            None => return None,
        };
        let (domain, key_authorization) = stored.split_once('\n')?;
        (domain == host).then(|| key_authorization.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Disabled;

    #[tokio::test]
    async fn an_answer_is_given_only_for_its_token_and_domain() {
        let answers = ChallengeAnswers::default();
        answers
            .publish(&Disabled, "shop.example.test", "tok_en-1", "tok_en-1.thumb")
            .await
            .expect("publish");
        assert_eq!(
            answers
                .answer(&Disabled, "shop.example.test", "tok_en-1")
                .await,
            Some("tok_en-1.thumb".to_owned())
        );
        assert_eq!(
            answers
                .answer(&Disabled, "other.example.test", "tok_en-1")
                .await,
            None
        );
        assert_eq!(
            answers
                .answer(&Disabled, "shop.example.test", "unknown")
                .await,
            None
        );
        assert_eq!(
            answers.answer(&Disabled, "shop.example.test", "../x").await,
            None
        );
        answers.withdraw(&Disabled, "tok_en-1").await;
        assert_eq!(
            answers
                .answer(&Disabled, "shop.example.test", "tok_en-1")
                .await,
            None
        );
    }

    #[tokio::test]
    async fn a_malformed_token_is_refused() {
        let answers = ChallengeAnswers::default();
        assert!(answers
            .publish(&Disabled, "shop.example.test", "a/b", "x")
            .await
            .is_err());
    }
}
