//! Who may claim a custom domain name: one pure rule, asked by the store inside the
//! transaction that holds the existing claim, so the store gets the decision, not the policy.

use chrono::{DateTime, Utc};
use hosting_api::DomainStatus;

/// The claim a name already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingClaim {
    pub owner_id: i64,
    pub status: DomainStatus,
    pub created_at: DateTime<Utc>,
}

/// Why a new claim is refused; each names what already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    Verified,
    OwnClaim,
    RecentClaim,
}

impl ClaimRefused {
    /// What already exists, as the API's 409 names it.
    pub fn what(self) -> &'static str {
        match self {
            ClaimRefused::Verified => "a verified claim on this domain",
            ClaimRefused::OwnClaim => "a claim on this domain by one of your sites",
            ClaimRefused::RecentClaim => {
                "a recent unverified claim on this domain by another account"
            }
        }
    }
}

/// What to do with the name's existing claim when `owner_id` claims it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Nobody holds the name.
    Free,
    /// The existing claim is dropped for the new one.
    Replace,
    Refuse(ClaimRefused),
}

/// A verified claim is never replaced, nor is the owner's own claim; another owner's
/// unverified claim is replaced when it failed or was made before `replace_unverified_before`.
pub fn decide(
    existing: Option<&ExistingClaim>,
    owner_id: i64,
    replace_unverified_before: DateTime<Utc>,
) -> ClaimDecision {
    let Some(existing) = existing else {
        return ClaimDecision::Free;
    };
    if existing.status == DomainStatus::Verified {
        return ClaimDecision::Refuse(ClaimRefused::Verified);
    }
    if existing.owner_id == owner_id {
        return ClaimDecision::Refuse(ClaimRefused::OwnClaim);
    }
    if existing.status == DomainStatus::Failed || existing.created_at < replace_unverified_before {
        ClaimDecision::Replace
    } else {
        ClaimDecision::Refuse(ClaimRefused::RecentClaim)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    const ME: i64 = 1;
    const OTHER: i64 = 2;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0)
            .single()
            .unwrap_or_default()
    }

    fn claim(owner_id: i64, status: DomainStatus, created_at: DateTime<Utc>) -> ExistingClaim {
        ExistingClaim {
            owner_id,
            status,
            created_at,
        }
    }

    #[test]
    fn an_unclaimed_name_is_free() {
        assert_eq!(decide(None, ME, at(0)), ClaimDecision::Free);
    }

    #[test]
    fn a_verified_claim_is_never_replaced_whoever_asks_and_however_old() {
        for owner in [ME, OTHER] {
            let old = claim(owner, DomainStatus::Verified, at(-1_000_000));
            assert_eq!(
                decide(Some(&old), ME, at(0)),
                ClaimDecision::Refuse(ClaimRefused::Verified)
            );
        }
    }

    #[test]
    fn the_owner_cannot_claim_a_name_twice_even_after_a_failure() {
        for status in [DomainStatus::Pending, DomainStatus::Failed] {
            let mine = claim(ME, status, at(-1_000_000));
            assert_eq!(
                decide(Some(&mine), ME, at(0)),
                ClaimDecision::Refuse(ClaimRefused::OwnClaim)
            );
        }
    }

    #[test]
    fn another_owners_failed_claim_is_replaced_at_once() {
        let failed = claim(OTHER, DomainStatus::Failed, at(10));
        assert_eq!(decide(Some(&failed), ME, at(0)), ClaimDecision::Replace);
    }

    #[test]
    fn another_owners_pending_claim_is_replaced_only_once_older_than_the_bound() {
        let bound = at(0);
        let recent = claim(OTHER, DomainStatus::Pending, bound);
        assert_eq!(
            decide(Some(&recent), ME, bound),
            ClaimDecision::Refuse(ClaimRefused::RecentClaim)
        );
        let older = claim(
            OTHER,
            DomainStatus::Pending,
            bound - Duration::milliseconds(1),
        );
        assert_eq!(decide(Some(&older), ME, bound), ClaimDecision::Replace);
    }

    #[test]
    fn refusals_name_what_exists() {
        assert_eq!(
            ClaimRefused::OwnClaim.what(),
            "a claim on this domain by one of your sites"
        );
    }
}
