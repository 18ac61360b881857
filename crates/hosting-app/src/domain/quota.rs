//! Per-user quotas: which limit applies to a user (an admin's override, else the platform
//! default) and whether an action that adds to a user's usage is admitted. Written once
//! here; the stores call [`QuotaPolicy::admit`] inside the transaction that holds the
//! user's row lock, so the usage compared is the one the write commits against.

use hosting_api::QuotaKind;

use crate::config::Config;

/// An admin's per-user limits: `None` = the platform default, `Some(0)` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaOverrides {
    pub storage_bytes: Option<u64>,
    pub sites: Option<u64>,
    pub deploys_per_hour: Option<u64>,
}

impl QuotaOverrides {
    pub fn get(&self, kind: QuotaKind) -> Option<u64> {
        match kind {
            QuotaKind::StorageBytes => self.storage_bytes,
            QuotaKind::Sites => self.sites,
            QuotaKind::DeploysPerHour => self.deploys_per_hour,
        }
    }
}

/// What a user uses now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Distinct blobs the user uploaded that one of their deploys references.
    pub storage_bytes: u64,
    pub sites: u64,
    /// Deploys created in the last rolling hour.
    pub deploys_last_hour: u64,
}

impl QuotaUsage {
    pub fn get(&self, kind: QuotaKind) -> u64 {
        match kind {
            QuotaKind::StorageBytes => self.storage_bytes,
            QuotaKind::Sites => self.sites,
            QuotaKind::DeploysPerHour => self.deploys_last_hour,
        }
    }
}

/// A user's quota state as the store reads it (under the row lock when writing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserQuota {
    /// Admins operate the platform: the platform defaults do not apply to them (their
    /// own overrides do).
    pub is_admin: bool,
    pub overrides: QuotaOverrides,
    pub usage: QuotaUsage,
}

/// A refused action: which quota, its limit, and the usage before the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*.kind, *.limit, *.used, *.adding))]
pub struct QuotaExceeded {
    pub kind: QuotaKind,
    pub limit: u64,
    pub used: u64,
    /// What the refused action would have added (bytes, sites or deploys).
    pub adding: u64,
}

fn describe(kind: QuotaKind, limit: u64, used: u64, adding: u64) -> String {
    match kind {
        QuotaKind::StorageBytes => format!(
            "storage quota exceeded: this account stores {used} of its {limit} bytes, and this \
             request adds {adding} more; delete sites or ask an admin for more storage"
        ),
        QuotaKind::Sites => format!(
            "sites quota exceeded: this account owns {used} of its {limit} sites; delete one \
             or ask an admin for more"
        ),
        QuotaKind::DeploysPerHour => format!(
            "deploys-per-hour quota exceeded: this account created {used} deploys in the last \
             hour, its limit is {limit}; try again later"
        ),
    }
}

/// Whether an action may add to a user's usage; the stores ask inside their transaction.
pub trait QuotaPolicy: Send + Sync {
    /// Admits adding `adding` to `kind` on top of `quota.usage`, or says which limit it breaks.
    fn admit(&self, quota: &UserQuota, kind: QuotaKind, adding: u64) -> Result<(), QuotaExceeded>;
}

/// The platform's quota policy: the configured defaults (0 = unlimited) and per-user overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    defaults: QuotaOverrides,
}

impl Quotas {
    pub fn from_config(config: &Config) -> Quotas {
        Quotas {
            defaults: QuotaOverrides {
                storage_bytes: Some(config.quotas.quota_storage_bytes.0),
                sites: Some(config.quotas.quota_sites),
                deploys_per_hour: Some(config.quotas.quota_deploys_per_hour),
            },
        }
    }

    /// The limit on `kind` for this user; `None` is unlimited.
    pub fn limit(&self, quota: &UserQuota, kind: QuotaKind) -> Option<u64> {
        let configured = match quota.overrides.get(kind) {
            Some(limit) => limit,
            None if quota.is_admin => 0,
            None => self.defaults.get(kind).unwrap_or(0),
        };
        (configured > 0).then_some(configured)
    }

    /// Bytes the user may still add (`u64::MAX` when unlimited).
    pub fn storage_left(&self, quota: &UserQuota) -> u64 {
        match self.limit(quota, QuotaKind::StorageBytes) {
            Some(limit) => limit.saturating_sub(quota.usage.storage_bytes),
            None => u64::MAX,
        }
    }
}

impl QuotaPolicy for Quotas {
    fn admit(&self, quota: &UserQuota, kind: QuotaKind, adding: u64) -> Result<(), QuotaExceeded> {
        let used = quota.usage.get(kind);
        match self.limit(quota, kind) {
            // An action that adds nothing is never refused, even over a lowered limit: a
            // redeploy of files the user already stores costs nothing.
            Some(limit) if adding > 0 && used.saturating_add(adding) > limit => {
                Err(QuotaExceeded {
                    kind,
                    limit,
                    used,
                    adding,
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas() -> Quotas {
        Quotas {
            defaults: QuotaOverrides {
                storage_bytes: Some(100),
                sites: Some(2),
                deploys_per_hour: Some(0),
            },
        }
    }

    fn member(usage: QuotaUsage) -> UserQuota {
        UserQuota {
            is_admin: false,
            overrides: QuotaOverrides::default(),
            usage,
        }
    }

    #[test]
    fn the_platform_default_applies_to_members_and_zero_is_unlimited() {
        let user = member(QuotaUsage {
            storage_bytes: 60,
            sites: 2,
            deploys_last_hour: 1_000,
        });
        assert!(quotas().admit(&user, QuotaKind::StorageBytes, 40).is_ok());
        let refused = quotas()
            .admit(&user, QuotaKind::StorageBytes, 41)
            .expect_err("over");
        assert_eq!((refused.limit, refused.used, refused.adding), (100, 60, 41));
        assert_eq!(
            quotas()
                .admit(&user, QuotaKind::Sites, 1)
                .map_err(|e| e.kind),
            Err(QuotaKind::Sites)
        );
        assert!(quotas().admit(&user, QuotaKind::DeploysPerHour, 1).is_ok());
    }

    #[test]
    fn an_override_wins_over_the_default_and_admins_have_no_default() {
        let mut user = member(QuotaUsage {
            sites: 5,
            ..QuotaUsage::default()
        });
        user.overrides.sites = Some(10);
        assert!(quotas().admit(&user, QuotaKind::Sites, 1).is_ok());
        user.overrides.sites = Some(0);
        assert_eq!(quotas().limit(&user, QuotaKind::Sites), None);
        let admin = UserQuota {
            is_admin: true,
            ..member(user.usage)
        };
        assert_eq!(quotas().limit(&admin, QuotaKind::StorageBytes), None);
    }

    #[test]
    fn adding_nothing_is_admitted_even_over_the_limit() {
        let user = member(QuotaUsage {
            storage_bytes: 500,
            ..QuotaUsage::default()
        });
        assert!(quotas().admit(&user, QuotaKind::StorageBytes, 0).is_ok());
        assert_eq!(quotas().storage_left(&user), 0);
    }
}
