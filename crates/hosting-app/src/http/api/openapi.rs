//! The route table of `/api/v1` and the OpenAPI 3.1 document generated from it.
//!
//! [`api_routes`] is the one list of operations: the router serves it and the document
//! describes it, so neither can miss an operation of the other. Each handler's
//! `#[utoipa::path]` gives its method, path, parameters and responses; the wire types
//! (`hosting-api`, feature `openapi`) give the schemas, with the constraints the server
//! enforces (name patterns and lengths, digest format, paths starting with `/`).
//! [`finish`] adds what every operation shares: the problem+json body of every error
//! response and the errors any authenticated request can meet.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use hosting_api::{Problem, PROBLEM_JSON};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::hsts;
use super::{
    aliases, analytics, audit, blobs, bulk, deploys, domains, limits, protection, sites, tokens,
    upload, users, webhooks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hosting API",
        description = "Deploy and manage static sites. Authenticate with \
            `Authorization: Bearer <token>`. Every error is an RFC 9457 \
            `application/problem+json` document saying what was wrong."
    ),
    servers((url = "/")),
    security(("bearer" = [])),
    components(schemas(Problem, hosting_api::schema::IdempotencyKey)),
    tags(
        (name = "users", description = "The caller, and the admin's user management"),
        (name = "tokens", description = "API tokens"),
        (name = "sites", description = "Sites"),
        (name = "deploys", description = "Deploys: the digest protocol, archives, publish and rollback"),
        (name = "domains", description = "Custom domains and their certificates"),
        (name = "analytics", description = "Per-site traffic figures"),
        (name = "audit", description = "The audit log (read-only)"),
        (name = "webhooks", description = "Signed deploy, domain and certificate notifications"),
    )
)]
struct ApiDoc;

/// Every operation of the API, routed and documented.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(serve))
        .routes(routes!(users::whoami))
        .routes(routes!(limits::get))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::update))
        .routes(routes!(users::get_quota, users::put_quota))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(sites::list, sites::create))
        .routes(routes!(sites::get, sites::delete))
        .routes(routes!(deploys::list, deploys::create))
        .routes(routes!(deploys::rollback))
        .routes(routes!(domains::list, domains::add))
        .routes(routes!(domains::remove))
        .routes(routes!(domains::verify))
        .routes(routes!(domains::request_certificate))
        .routes(routes!(deploys::get))
        .routes(routes!(upload::put_file))
        .routes(routes!(deploys::publish))
        .routes(routes!(analytics::get))
        .routes(routes!(bulk::upload_files))
        .routes(routes!(blobs::missing))
        .routes(routes!(blobs::upload))
        .routes(routes!(aliases::list))
        .routes(routes!(aliases::put, aliases::remove))
        .routes(routes!(
            protection::get,
            protection::put,
            protection::delete
        ))
        .routes(routes!(audit::list))
        .routes(routes!(webhooks::list, webhooks::add))
        .routes(routes!(webhooks::remove))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(hsts::get, hsts::put))
}

/// Statuses any authenticated operation can answer, whatever it does.
const SHARED_ERRORS: [(&str, &str); 3] = [
    ("401", "Missing, unknown or revoked API token"),
    (
        "429",
        "Rate limit reached; `Retry-After` says when to try again",
    ),
    (
        "503",
        "A backing service (database, session store) is unavailable; retry shortly",
    ),
];

/// Completes the generated document: the bearer scheme, the errors every authenticated
/// operation shares, and `application/problem+json` (the `Problem` schema) as the body of
/// every error response.
pub fn finish(mut doc: Document) -> Document {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            // `security(())`: the operation needs no token.
            let anonymous = operation
                .security
                .as_ref()
                .is_some_and(|requirements| requirements.contains(&SecurityRequirement::default()));
            if let Some(body) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    if let Some(schema) = content.schema.as_mut() {
                        drop_null_alternative(schema);
                    }
                }
            }
            let responses = &mut operation.responses.responses;
            if !anonymous {
                for (status, description) in SHARED_ERRORS {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| ResponseBuilder::new().description(description).into());
                }
            }
            for (status, response) in responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if status.starts_with('4') || status.starts_with('5') {
                    response
                        .content
                        .entry(PROBLEM_JSON.to_owned())
                        .or_insert_with(|| {
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Problem")))
                                .build()
                        });
                }
            }
        }
    }
    doc
}

/// An optional body is one that may be absent (`required: false`), never a JSON `null`,
/// which the server refuses; `Option<T>` bodies come out of the generator as
/// `oneOf: [null, T]`.
fn drop_null_alternative(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::OneOf(one_of)) = schema else {
        return;
    };
    let is_null = |item: &RefOr<Schema>| {
        matches!(item, RefOr::T(Schema::Object(object))
            if object.schema_type == SchemaType::Type(Type::Null))
    };
    if one_of.items.len() == 2 && one_of.items.iter().any(is_null) {
        if let Some(other) = one_of.items.iter().find(|item| !is_null(item)) {
            *schema = other.clone();
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The document as served: generated once, on first use.
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
    let (_, doc) = api_routes().split_for_parts();
    // Serializing plain schema values cannot fail; an empty body would fail the tests.
    Bytes::from(serde_json::to_vec(&finish(doc)).unwrap_or_default())
});

/// The OpenAPI document of the API, as JSON.
pub fn openapi_document() -> serde_json::Value {
    serde_json::from_slice(&DOCUMENT).unwrap_or_default()
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "users",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::SiteName;

    #[test]
    fn the_site_name_pattern_names_only_names_the_server_reserves() {
        let pattern = hosting_api::schema::SITE_NAME_PATTERN;
        let reserved = pattern
            .strip_prefix("^(?!(?:")
            .and_then(|rest| rest.split_once(")$)"))
            .map(|(names, _)| names)
            .expect("the pattern starts with the reserved names");
        for name in reserved.split('|') {
            assert!(SiteName::parse(name).is_err(), "{name} is not reserved");
        }
    }

    #[test]
    fn every_error_response_is_problem_json() {
        let doc = openapi_document();
        let paths = doc["paths"].as_object().expect("paths");
        assert!(!paths.is_empty());
        for (path, methods) in paths {
            for (method, operation) in methods.as_object().expect("methods") {
                let responses = operation["responses"].as_object().expect("responses");
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            response["content"][PROBLEM_JSON]["schema"]["$ref"],
                            "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
