//! The OpenAPI 3 document of the API, generated from one route table. The router
//! test checks that every entry here is a real route and that the router has no
//! route missing here.

use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

/// One API operation: method, path, summary, request schema, success status and schema.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub request: Option<&'static str>,
    pub status: u16,
    pub response: Option<&'static str>,
    pub admin: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    status: u16,
    response: Option<&'static str>,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        request,
        status,
        response,
        admin: false,
    }
}

const fn admin(mut doc: RouteDoc) -> RouteDoc {
    doc.admin = true;
    doc
}

pub const ROUTES: &[RouteDoc] = &[
    route("get", "/api/v1/openapi.json", "This document", None, 200, None),
    route("get", "/api/v1/whoami", "The caller and their quota usage", None, 200, Some("WhoAmI")),
    admin(route("get", "/api/v1/users", "List users (admin)", None, 200, Some("UserList"))),
    admin(route("post", "/api/v1/users", "Create a user and a first token (admin)", Some("CreateUser"), 201, Some("CreatedUser"))),
    admin(route("patch", "/api/v1/users/{id}", "Disable or enable a user (admin)", Some("UpdateUser"), 200, Some("User"))),
    // Quotas (see `quota_schemas`).
    admin(route("get", "/api/v1/users/{id}/quota", "A user's quota usage and limits (admin)", None, 200, Some("Quota"))),
    admin(route("put", "/api/v1/users/{id}/quota", "Set a user's quota overrides: null = platform default, 0 = unlimited (admin)", Some("SetQuota"), 200, Some("Quota"))),
    route("get", "/api/v1/tokens", "List the caller's API tokens", None, 200, Some("TokenList")),
    route("post", "/api/v1/tokens", "Create an API token; the secret is shown once", Some("CreateToken"), 201, Some("CreatedToken")),
    route("delete", "/api/v1/tokens/{id}", "Revoke an API token", None, 204, None),
    route("get", "/api/v1/sites", "List the caller's sites", None, 200, Some("SiteList")),
    route("post", "/api/v1/sites", "Create a site", Some("CreateSite"), 201, Some("Site")),
    route("get", "/api/v1/sites/{site}", "Get a site", None, 200, Some("Site")),
    route("delete", "/api/v1/sites/{site}", "Delete a site and its deploys", None, 204, None),
    route("get", "/api/v1/sites/{site}/deploys", "Deploy history, newest first", None, 200, Some("DeployList")),
    route(
        "post",
        "/api/v1/sites/{site}/deploys",
        "Create a deploy: a JSON file list (digest protocol; `Idempotency-Key` supported) answered with the \
         hashes to upload, or a `.tar.gz` body (`Content-Type: application/gzip`) published unless `?publish=false`",
        Some("CreateDeploy"),
        201,
        Some("CreatedDeploy"),
    ),
    route("post", "/api/v1/sites/{site}/rollback", "Publish an earlier deploy (by default the one live before)", Some("Rollback"), 200, Some("Deploy")),
    route("get", "/api/v1/sites/{site}/domains", "List a site's custom domains", None, 200, Some("DomainList")),
    route("post", "/api/v1/sites/{site}/domains", "Claim a custom domain for a site (409 when verified or claimed elsewhere)", Some("AddDomain"), 201, Some("Domain")),
    route("delete", "/api/v1/sites/{site}/domains/{domain}", "Remove a custom domain; it stops serving at once", None, 204, None),
    route("post", "/api/v1/sites/{site}/domains/{domain}/verify", "Check domain ownership now (DNS TXT record or HTTP token)", None, 200, Some("Domain")),
    route("post", "/api/v1/sites/{site}/domains/{domain}/certificate", "Order the domain's certificate now (first order, retry or early renewal; 409 unless verified and ACME is on)", None, 202, Some("Domain")),
    route("get", "/api/v1/deploys/{id}", "Get a deploy", None, 200, Some("Deploy")),
    route("put", "/api/v1/deploys/{id}/files/{sha256}", "Upload one required file; the bytes must hash to `sha256`", Some("Bytes"), 204, None),
    route("post", "/api/v1/deploys/{id}/publish", "Make a ready deploy the site's live one, atomically", None, 200, Some("Deploy")),
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn list_of(name: &str) -> Value {
    json!({ "type": "object", "required": ["items"], "properties": { "items": { "type": "array", "items": schema_ref(name) } } })
}

fn schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let opt_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let mut schemas = json!({
        "Problem": { "type": "object", "required": ["type", "title", "status"], "properties": {
            "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
            "detail": { "type": "string" }, "instance": { "type": "string" } } },
        "User": { "type": "object", "required": ["id", "username", "role", "disabled", "created_at"], "properties": {
            "id": { "type": "integer" }, "username": { "type": "string" },
            "role": { "type": "string", "enum": ["admin", "member"] }, "disabled": { "type": "boolean" }, "created_at": time } },
        "UserList": list_of("User"),
        "CreateUser": { "type": "object", "required": ["username"], "properties": {
            "username": { "type": "string" }, "role": { "type": "string", "enum": ["admin", "member"] },
            "password": { "type": "string", "minLength": 10 } } },
        "CreatedUser": { "type": "object", "required": ["user", "token"], "properties": {
            "user": schema_ref("User"), "token": schema_ref("CreatedToken") } },
        "UpdateUser": { "type": "object", "required": ["disabled"], "properties": { "disabled": { "type": "boolean" } } },
        "Token": { "type": "object", "required": ["id", "name", "created_at"], "properties": {
            "id": { "type": "integer" }, "name": { "type": "string" }, "created_at": time, "last_used_at": opt_time } },
        "TokenList": list_of("Token"),
        "CreateToken": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } },
        "CreatedToken": { "allOf": [schema_ref("Token"), { "type": "object", "required": ["secret"], "properties": { "secret": { "type": "string" } } }] },
        "Site": { "type": "object", "required": ["name", "url", "created_at", "updated_at"], "properties": {
            "name": { "type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 45 }, "url": { "type": "string" },
            "live_deploy_id": { "type": ["string", "null"] }, "created_at": time, "updated_at": time } },
        "SiteList": list_of("Site"),
        "CreateSite": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } },
        "Deploy": { "type": "object", "required": ["id", "site", "state", "live", "file_count", "total_bytes", "created_by", "created_at", "preview_url"], "properties": {
            "id": { "type": "string" }, "site": { "type": "string" },
            "state": { "type": "string", "enum": ["uploading", "ready", "expired", "failed"] },
            "live": { "type": "boolean" }, "file_count": { "type": "integer" }, "total_bytes": { "type": "integer" },
            "created_by": { "type": "string" }, "created_at": time, "published_at": opt_time,
            "preview_url": { "type": "string" }, "error": { "type": "string" } } },
        "DeployList": list_of("Deploy"),
        "CreateDeploy": { "type": "object", "required": ["files"], "properties": { "files": {
            "type": "object", "description": "site path (`/index.html`) -> lower-case hex SHA-256",
            "additionalProperties": { "type": "string", "pattern": "^[0-9a-f]{64}$" } } } },
        "CreatedDeploy": { "allOf": [schema_ref("Deploy"), { "type": "object", "required": ["required"], "properties": {
            "required": { "type": "array", "items": { "type": "string" } } } }] },
        "Rollback": { "type": "object", "properties": { "deploy_id": { "type": ["string", "null"] } } },
        "Bytes": { "type": "string", "format": "binary" },
        "AddDomain": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } },
        "Domain": { "type": "object", "required": ["name", "site", "status", "verification", "created_at"], "properties": {
            "name": { "type": "string" }, "site": { "type": "string" },
            "status": { "type": "string", "enum": ["pending", "verified", "failed"] },
            "status_detail": { "type": ["string", "null"] },
            "verification": { "type": "object", "required": ["txt_name", "txt_value", "http_path", "http_token"], "properties": {
                "txt_name": { "type": "string" }, "txt_value": { "type": "string" },
                "http_path": { "type": "string" }, "http_token": { "type": "string" } } },
            "created_at": time, "verified_at": opt_time, "checked_at": opt_time,
            "certificate": { "oneOf": [{ "type": "null" }, schema_ref("Certificate")] } } },
        "Certificate": { "type": "object", "required": ["status", "failures"], "properties": {
            "status": { "type": "string", "enum": ["pending", "issued", "failed"] },
            "serial": { "type": ["string", "null"] }, "issuer": { "type": ["string", "null"] },
            "not_before": opt_time, "not_after": opt_time, "issued_at": opt_time,
            "failures": { "type": "integer" }, "last_error": { "type": ["string", "null"] },
            "next_attempt_at": opt_time } },
        "DomainList": list_of("Domain"),
    });
    if let (Value::Object(all), Value::Object(quota)) = (&mut schemas, quota_schemas()) {
        all.extend(quota);
    }
    schemas
}

/// Quota schemas. A refused quota is a 403 problem of type `/problems/quota-exceeded`
/// (`QuotaProblem`) on site creation, deploy creation and file uploads.
fn quota_schemas() -> Value {
    let limit = json!({ "type": ["integer", "null"], "minimum": 0 });
    let item = json!({ "type": "object", "required": ["used", "limit", "overridden"], "properties": {
        "used": { "type": "integer" },
        "limit": { "type": ["integer", "null"], "description": "null: unlimited" },
        "overridden": { "type": "boolean", "description": "set by an admin (else the platform default)" } } });
    json!({
        "Quota": { "type": "object", "required": ["storage_bytes", "sites", "deploys_per_hour"], "properties": {
            "storage_bytes": item, "sites": item, "deploys_per_hour": item } },
        "WhoAmI": { "allOf": [schema_ref("User"), { "type": "object", "required": ["quota"], "properties": {
            "quota": schema_ref("Quota") } }] },
        "SetQuota": { "type": "object", "description": "absent or null: the platform default; 0: unlimited", "properties": {
            "storage_bytes": limit, "sites": limit, "deploys_per_hour": limit } },
        "QuotaProblem": { "allOf": [schema_ref("Problem"), { "type": "object", "required": ["quota", "limit", "used"], "properties": {
            "quota": { "type": "string", "enum": ["storage_bytes", "sites", "deploys_per_hour"] },
            "limit": { "type": "integer" }, "used": { "type": "integer", "description": "usage before the refused request" } } }] },
    })
}

fn operation(doc: &RouteDoc) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), json!(doc.summary));
    let mut responses = Map::new();
    let success = match doc.response {
        Some(name) => {
            json!({ "description": "Success", "content": { "application/json": { "schema": schema_ref(name) } } })
        }
        None => json!({ "description": "Success" }),
    };
    responses.insert(doc.status.to_string(), success);
    let problem = json!({ "description": "Error", "content": { "application/problem+json": { "schema": schema_ref("Problem") } } });
    responses.insert("default".into(), problem);
    op.insert("responses".into(), Value::Object(responses));
    if let Some(name) = doc.request {
        let content = match name {
            "Bytes" => json!({ "application/octet-stream": { "schema": schema_ref(name) } }),
            "CreateDeploy" => json!({
                "application/json": { "schema": schema_ref(name) },
                "application/gzip": { "schema": schema_ref("Bytes") } }),
            _ => json!({ "application/json": { "schema": schema_ref(name) } }),
        };
        op.insert(
            "requestBody".into(),
            json!({ "required": name != "Rollback", "content": content }),
        );
    }
    let params: Vec<Value> = doc
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if doc.path == "/api/v1/openapi.json" {
        op.insert("security".into(), json!([]));
    }
    if doc.admin {
        op.insert("description".into(), json!("Needs an admin token."));
    }
    Value::Object(op)
}

pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for doc in ROUTES {
        let entry = paths
            .entry(doc.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Value::Object(methods) = entry {
            methods.insert(doc.method.to_owned(), operation(doc));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "hosting API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Deploy and manage static sites. Errors are RFC 9457 application/problem+json." },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}

pub async fn serve() -> impl IntoResponse {
    axum::Json(openapi_document())
}
