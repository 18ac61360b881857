//! Conversions between the stores' column encodings and the domain types, and the
//! mapping of driver errors, shared by every backend so they cannot drift apart: times
//! are Unix milliseconds, roles and states lower-case words, constraints named alike.

use chrono::{DateTime, TimeZone, Utc};
use hosting_api::{DeployState, Role};

use super::StoreError;

pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(super) fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

/// A count or size column; negative values (never written) read as 0.
pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// A failure counter column, saturating.
pub(super) fn failures(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) fn role_str(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

pub(super) fn parse_role(raw: &str) -> Role {
    if raw == "admin" {
        Role::Admin
    } else {
        Role::Member
    }
}

pub(super) fn state_str(state: DeployState) -> &'static str {
    match state {
        DeployState::Uploading => "uploading",
        DeployState::Ready => "ready",
        DeployState::Expired => "expired",
        DeployState::Failed => "failed",
    }
}

pub(super) fn parse_state(raw: &str) -> DeployState {
    match raw {
        "ready" => DeployState::Ready,
        "expired" => DeployState::Expired,
        "failed" => DeployState::Failed,
        _ => DeployState::Uploading,
    }
}

/// The named unique constraints the API reports as conflicts: `(constraint, the
/// `table.column` list SQLite names instead, what already exists)`. Both migration trees
/// declare these names.
const UNIQUE_CONSTRAINTS: [(&str, &str, &str); 3] = [
    (
        "users_username_key",
        "users.username",
        "a user with this name",
    ),
    ("sites_name_key", "sites.name", "a site with this name"),
    ("domains_name_key", "domains.name", "a claim on this domain"),
];

/// The constraint a unique violation hit. PostgreSQL names it; SQLite's driver exposes
/// no constraint name, only its message `UNIQUE constraint failed: <table.column, ...>`,
/// whose column list is looked up in [`UNIQUE_CONSTRAINTS`].
fn violated_constraint(db: &dyn sqlx::error::DatabaseError) -> Option<&'static str> {
    if let Some(name) = db.constraint() {
        return UNIQUE_CONSTRAINTS
            .iter()
            .find(|(constraint, _, _)| *constraint == name)
            .map(|(constraint, _, _)| *constraint);
    }
    let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(_, sqlite_columns, _)| *sqlite_columns == columns)
        .map(|(constraint, _, _)| *constraint)
}

/// What a foreign key violation says is gone. PostgreSQL names the constraint
/// (`<table>_<column>_fkey`, the default names of the migrations' `REFERENCES`); SQLite
/// reports only `FOREIGN KEY constraint failed`, so its answer is the general one.
fn referenced_record(db: &dyn sqlx::error::DatabaseError) -> &'static str {
    let Some(key) = db.constraint().and_then(|name| name.strip_suffix("_fkey")) else {
        return "a record this write refers to";
    };
    const REFERENCED: [(&str, &str); 7] = [
        ("_site_id", "the site"),
        ("_owner_id", "the user"),
        ("_user_id", "the user"),
        ("_created_by", "the user"),
        ("_deploy_id", "the deploy"),
        ("_domain_id", "the domain"),
        ("_sha256", "the blob"),
    ];
    REFERENCED
        .iter()
        .find(|(column, _)| key.ends_with(column))
        .map_or("a record this write refers to", |(_, what)| what)
}

/// Maps a driver error: a named unique constraint -> `Conflict`; a foreign key -> `Gone`; an unreachable or
/// read-only database (a replica promoted badly, a primary in recovery) -> `Unavailable`.
pub(super) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let constraint = violated_constraint(db.as_ref());
            StoreError::Conflict(
                UNIQUE_CONSTRAINTS
                    .iter()
                    .find(|(name, _, _)| Some(*name) == constraint)
                    .map_or("a record with these values", |(_, _, what)| what),
            )
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Gone(referenced_record(db.as_ref()))
        }
        // 25006: read_only_sql_transaction (PostgreSQL).
        sqlx::Error::Database(db) if db.code().as_deref() == Some("25006") => unavailable(e),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => unavailable(e),
        _ => other(e),
    }
}

/// A cause outside any statement (connecting, migrating), with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
struct Doing {
    what: &'static str,
    #[source]
    cause: super::BoxError,
}

pub(super) fn failed_while(what: &'static str, e: impl Into<super::BoxError>) -> StoreError {
    other(Doing {
        what,
        cause: e.into(),
    })
}

pub(super) fn other(e: impl Into<super::BoxError>) -> StoreError {
    StoreError::Other(e.into())
}

pub(super) fn unavailable(e: impl Into<super::BoxError>) -> StoreError {
    StoreError::Unavailable(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_conflict_constraint_has_a_distinct_sqlite_column_list() {
        for (i, (name, columns, _)) in UNIQUE_CONSTRAINTS.iter().enumerate() {
            let (table, _) = columns.split_once('.').unwrap_or_default();
            assert!(name.starts_with(table), "{name} is not on {table}");
            assert!(UNIQUE_CONSTRAINTS[i + 1..]
                .iter()
                .all(|(_, later, _)| later != columns));
        }
    }
}
