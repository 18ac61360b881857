//! OpenAPI schemas of the validated strings of the API (feature `openapi`).
//!
//! The server parses each of these once at its edge (`hosting-app`'s `domain::names` and
//! `domain::hostname`); the schemas here state the same rules, so a client generating
//! requests from the document (schemathesis, code generators) sends what the server
//! accepts. Patterns are ECMA-262 regular expressions, as JSON Schema specifies. Where a
//! rule counts bytes (UTF-8) the schema bounds characters tightly enough that any string
//! it allows is within the byte limit.

use std::borrow::Cow;

use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// One DNS label of lower-case letters, digits and single inner hyphens, not one of the
/// names the server reserves (hosting-app tests that it refuses each one named here).
pub const SITE_NAME_PATTERN: &str =
    r"^(?!(?:www|api|admin|app|dashboard|status|mail)$)[a-z0-9]+(?:-[a-z0-9]+)*$";
/// Lower-case hex SHA-256.
pub const SHA256_PATTERN: &str = r"^[0-9a-f]{64}$";
/// 16 lower-case hex characters.
pub const DEPLOY_ID_PATTERN: &str = r"^[0-9a-f]{16}$";
/// `/`-separated segments, none empty, `.` or `..`, without backslashes or control characters.
pub const DEPLOY_PATH_PATTERN: &str =
    r"^(?!/[A-Za-z]:)(?:/(?!\.\.?(?:/|$))[^/\\\u0000-\u001f\u007f-\u009f]{1,63})+$";
/// At least two dot-separated lower-case labels of up to 63 characters, the last one not numeric.
pub const DOMAIN_PATTERN: &str =
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?![0-9]+$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$";
/// Letters, digits, `.`, `_`, `-`, `@`.
pub const USERNAME_PATTERN: &str = r"^[A-Za-z0-9._@-]+$";
/// Printable characters, not starting or ending with white space (the server trims).
pub const TOKEN_NAME_PATTERN: &str = r"^[^\s\u0000-\u001f\u007f-\u009f](?:[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f])?$";
/// A site name (same rules) that is not 16 hex characters, which would be a deploy id.
pub const ALIAS_NAME_PATTERN: &str =
    r"^(?![0-9a-f]{16}$)(?!(?:www|api|admin|app|dashboard|status|mail)$)[a-z0-9]+(?:-[a-z0-9]+)*$";
/// Visible ASCII, as an HTTP header value carries it.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]+$";

/// A string schema with a pattern and length bounds, named after a marker type.
fn string_schema(
    description: &str,
    pattern: &str,
    min_length: usize,
    max_length: usize,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(min_length))
        .max_length(Some(max_length))
        .into()
}

macro_rules! string_schemas {
    ($($(#[$doc:meta])* $name:ident = ($description:expr, $pattern:expr, $min:expr, $max:expr);)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    string_schema($description, $pattern, $min, $max)
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )*
    };
}

string_schemas! {
    /// A site's name (also the first label of its host).
    SiteName = (
        "A site name: one DNS label of lower-case letters, digits and single inner hyphens \
         (1 to 45 characters, so `<deploy id>--<site>` fits a label); not one of the reserved \
         names www, api, admin, app, dashboard, status, mail.",
        SITE_NAME_PATTERN, 1, 45
    );
    /// A file's content digest.
    Sha256 = ("Lower-case hex SHA-256 of a file's bytes.", SHA256_PATTERN, 64, 64);
    /// A deploy's id.
    DeployId = ("A deploy id: 16 lower-case hex characters.", DEPLOY_ID_PATTERN, 16, 16);
    /// A file's path in a deploy.
    DeployPath = (
        "A file's path in the deploy: starts with `/`; segments are not empty, `.` or `..` and \
         have no backslash or control character; the first is not a Windows drive (`C:`). The server allows up to 1024 bytes in all and \
         255 bytes a segment (UTF-8); this schema bounds characters so that any path it allows \
         fits. Two paths of one deploy may not differ only in case.",
        DEPLOY_PATH_PATTERN, 2, 256
    );
    /// A custom domain name.
    DomainName = (
        "A custom domain: a lower-case ASCII DNS name of at least two labels (punycode for \
         internationalized names), the last one not numeric; never the platform's base domain, \
         its control host or their subdomains.",
        DOMAIN_PATTERN, 3, 253
    );
    /// A user's login name.
    Username = ("1 to 64 letters, digits, `.`, `_`, `-` or `@`.", USERNAME_PATTERN, 1, 64);
    /// The key that makes a deploy's creation safe to retry.
    IdempotencyKey = ("1 to 255 visible ASCII characters.", IDEMPOTENCY_KEY_PATTERN, 1, 255);
    /// An API token's label.
    TokenName = (
        "1 to 100 printable characters, not starting or ending with white space.",
        TOKEN_NAME_PATTERN, 1, 100
    );
    /// A deploy alias's name (the first part of `<alias>--<site>.<base-domain>`).
    AliasName = (
        "A deploy alias: the rules of a site name, 1 to 16 characters, and never 16 hex \
         characters (those name deploy previews).",
        ALIAS_NAME_PATTERN, 1, 16
    );
}

/// The file list of a digest deploy: site path -> SHA-256 of the file's bytes.
pub struct FileList;

impl PartialSchema for FileList {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .description(Some(
                "Site path (`/index.html`) -> lower-case hex SHA-256 of the file's bytes; at \
                 least one file, at most the server's file limit (20,000 by default).",
            ))
            .property_names(Some(DeployPath::schema()))
            .additional_properties(Some(Sha256::schema()))
            .min_properties(Some(1))
            .into()
    }
}

impl ToSchema for FileList {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FileList")
    }
}

/// A site as a `.tar.gz` (regular files and directories; see the README for the rules).
pub struct SiteArchive;

impl PartialSchema for SiteArchive {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .content_media_type("application/gzip")
            .description(Some(
                "A gzip-compressed tar archive of the site: regular files and directories \
                 only, no links, absolute or `..` paths; within the file count and size limits.",
            ))
            .into()
    }
}

impl ToSchema for SiteArchive {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SiteArchive")
    }
}

/// What creating a deploy answers: a file list's `CreatedDeploy` (with `required`) or an
/// archive's `Deploy`.
pub struct CreatedOrArchivedDeploy;

impl PartialSchema for CreatedOrArchivedDeploy {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(crate::CreatedDeploy::name()))
            .item(Ref::from_schema_name(crate::Deploy::name()))
            .into()
    }
}

impl ToSchema for CreatedOrArchivedDeploy {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CreatedOrArchivedDeploy")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            crate::CreatedDeploy::name().into(),
            crate::CreatedDeploy::schema(),
        ));
        <crate::CreatedDeploy as ToSchema>::schemas(schemas);
        schemas.push((crate::Deploy::name().into(), crate::Deploy::schema()));
        <crate::Deploy as ToSchema>::schemas(schemas);
    }
}

/// The bytes of one file, as uploaded.
pub struct FileBytes;

impl PartialSchema for FileBytes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .description(Some("The file's bytes, as they are served."))
            .into()
    }
}

impl ToSchema for FileBytes {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FileBytes")
    }
}
