//! The audit log: the statements and the row, written once for both databases. Entries
//! are only ever inserted and, past the retention, deleted; nothing updates them.

use chrono::{DateTime, Utc};

use super::columns::time;

pub(super) const INSERT: &str = "INSERT INTO audit_log \
     (at, actor_id, actor, client_addr, action, target, site, owner_id, outcome, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Newest first, below the cursor. `$1`: the reader's id when they only see what they
/// own or did (NULL for an admin); `$4` matches an action or its group (`deploy`
/// matches `deploy.publish`).
pub(super) const LIST: &str = "SELECT * FROM audit_log WHERE \
     ($1 IS NULL OR owner_id = $1 OR actor_id = $1) \
     AND ($2 IS NULL OR actor = $2) \
     AND ($3 IS NULL OR site = $3) \
     AND ($4 IS NULL OR action = $4 OR action LIKE $4 || '.%') \
     AND ($5 IS NULL OR at >= $5) \
     AND ($6 IS NULL OR at < $6) \
     AND ($7 IS NULL OR id < $7) \
     ORDER BY id DESC LIMIT $8";

pub(super) const PRUNE: &str = "DELETE FROM audit_log WHERE at < $1";

/// Whether an audited action succeeded or was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor_id: Option<i64>,
    pub actor: String,
    pub client_addr: Option<String>,
    pub action: &'static str,
    pub target: String,
    pub site: Option<String>,
    pub owner_id: Option<i64>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

/// One stored entry.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub client_addr: Option<String>,
    pub action: String,
    pub target: String,
    pub site: Option<String>,
    pub owner_id: Option<i64>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries on what this user owns or did; `None` for an admin (everything).
    pub visible_to: Option<i64>,
    pub actor: Option<String>,
    pub site: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries with an id below this (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor: String,
    client_addr: Option<String>,
    action: String,
    target: String,
    site: Option<String>,
    owner_id: Option<i64>,
    outcome: String,
    detail: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> AuditRecord {
        AuditRecord {
            id: row.id,
            at: time(row.at),
            actor_id: row.actor_id,
            actor: row.actor,
            client_addr: row.client_addr,
            action: row.action,
            target: row.target,
            site: row.site,
            owner_id: row.owner_id,
            outcome: row.outcome,
            detail: row.detail,
        }
    }
}
