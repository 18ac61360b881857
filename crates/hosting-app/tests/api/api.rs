//! The API surface: authentication, problem+json errors, users, tokens, sites, the
//! OpenAPI document, and the management endpoints.

use hosting_api as api;
use serde_json::Value;

use crate::helpers::{assert_problem, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_with_problem_json() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.api("/sites"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_problem(response, 401).await;
    let response = app
        .get("hst_wrong", "/sites")
        .send()
        .await
        .expect("request");
    assert_problem(response, 401).await;
}

#[tokio::test]
async fn whoami_names_the_token_owner() {
    let app = TestApp::spawn().await;
    let me: api::User = app
        .get(ADMIN_TOKEN, "/whoami")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(me.username, "admin");
    assert_eq!(me.role, api::Role::Admin);
}

#[tokio::test]
async fn unknown_api_routes_and_bad_bodies_are_problem_json() {
    let app = TestApp::spawn().await;
    let detail = assert_problem(
        app.get(ADMIN_TOKEN, "/nope").send().await.expect("request"),
        404,
    )
    .await;
    assert!(detail.contains("/api/v1/nope"), "{detail}");
    let response = app
        .post(ADMIN_TOKEN, "/sites")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_problem(response, 400).await;
    let response = app
        .post(ADMIN_TOKEN, "/sites")
        .body("name=blog")
        .send()
        .await
        .expect("request");
    assert_problem(response, 415).await;
}

#[tokio::test]
async fn sites_are_created_listed_fetched_and_deleted() {
    let app = TestApp::spawn().await;
    let site = app.create_site(ADMIN_TOKEN, "blog").await;
    assert_eq!(site.name, "blog");
    assert_eq!(
        site.url,
        format!("http://blog.localhost:{}/", app.addr.port())
    );
    assert_eq!(site.live_deploy_id, None);

    let list: api::List<api::Site> = app
        .get(ADMIN_TOKEN, "/sites")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(list.items.len(), 1);
    let fetched: api::Site = app
        .get(ADMIN_TOKEN, "/sites/blog")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(fetched, site);

    let response = app
        .client
        .delete(app.api("/sites/blog"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(
        app.get(ADMIN_TOKEN, "/sites/blog")
            .send()
            .await
            .expect("request"),
        404,
    )
    .await;
}

#[tokio::test]
async fn site_names_must_be_valid_and_unique() {
    let app = TestApp::spawn().await;
    for bad in ["Blog", "-x", "a--b", "www", "has.dot", ""] {
        let response = app
            .post(ADMIN_TOKEN, "/sites")
            .json(&api::CreateSite { name: bad.into() })
            .send()
            .await
            .expect("request");
        assert_problem(response, 422).await;
    }
    app.create_site(ADMIN_TOKEN, "blog").await;
    let response = app
        .post(ADMIN_TOKEN, "/sites")
        .json(&api::CreateSite {
            name: "blog".into(),
        })
        .send()
        .await
        .expect("request");
    let detail = assert_problem(response, 409).await;
    assert!(detail.contains("site"), "{detail}");
}

#[tokio::test]
async fn tokens_are_shown_once_listed_without_secret_and_revocable() {
    let app = TestApp::spawn().await;
    let response = app
        .post(ADMIN_TOKEN, "/tokens")
        .json(&api::CreateToken { name: "ci".into() })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let created: api::CreatedToken = response.json().await.expect("json");
    assert!(created.secret.starts_with("hst_"));
    assert_eq!(
        app.get(&created.secret, "/whoami")
            .send()
            .await
            .expect("request")
            .status(),
        200
    );

    let listed: Value = app
        .get(ADMIN_TOKEN, "/tokens")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let text = listed.to_string();
    assert!(text.contains("\"ci\""));
    assert!(
        !text.contains(&created.secret),
        "a listed token shows its secret"
    );

    let response = app
        .client
        .delete(app.api(&format!("/tokens/{}", created.token.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(
        app.get(&created.secret, "/whoami")
            .send()
            .await
            .expect("request"),
        401,
    )
    .await;
}

#[tokio::test]
async fn admins_manage_users_and_members_cannot() {
    let app = TestApp::spawn().await;
    let member = app.member("alice").await;
    assert_problem(
        app.get(&member, "/users").send().await.expect("request"),
        403,
    )
    .await;
    let users: api::List<api::User> = app
        .get(ADMIN_TOKEN, "/users")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let alice = users
        .items
        .iter()
        .find(|u| u.username == "alice")
        .expect("alice listed");
    assert_eq!(alice.role, api::Role::Member);

    let response = app
        .client
        .patch(app.api(&format!("/users/{}", alice.id)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&api::UpdateUser { disabled: true })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_problem(
        app.get(&member, "/whoami").send().await.expect("request"),
        401,
    )
    .await;

    let response = app
        .post(ADMIN_TOKEN, "/users")
        .json(&api::CreateUser {
            username: "alice".into(),
            role: None,
            password: None,
        })
        .send()
        .await
        .expect("request");
    assert_problem(response, 409).await;
}

/// The OpenAPI document the server serves.
async fn openapi_document(app: &TestApp) -> Value {
    app.client
        .get(app.api("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_real_routes() {
    let app = TestApp::spawn().await;
    let doc = openapi_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (path, methods) in paths {
        for (method, _) in methods.as_object().expect("methods") {
            documented += 1;
            // Every documented operation reaches a real handler: never the API's
            // "no API route" fallback, never 405.
            let concrete = path
                .replace("{site}", "nosuchsite")
                .replace("{id}", "0000000000000000")
                .replace("{sha256}", &"0".repeat(64));
            let url = format!("http://localhost:{}{concrete}", app.addr.port());
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = app
                .client
                .request(method.clone(), url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("request");
            assert_ne!(
                response.status(),
                405,
                "{method} {path} is documented but not routed"
            );
            let body = response.text().await.unwrap_or_default();
            assert!(
                !body.contains("no API route"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    assert!(documented > 20, "only {documented} operations documented");
    // And the router has no route the document misses: both are made from one table
    // (`http/api/openapi.rs`), and an undocumented path falls through.
    let response = app
        .client
        .get(app.api("/deploys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_openapi_document_states_the_constraints_the_server_enforces() {
    let app = TestApp::spawn().await;
    let doc = openapi_document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let site_name = &schemas["SiteName"];
    assert_eq!(site_name["maxLength"], 45);
    let pattern = site_name["pattern"].as_str().expect("site name pattern");
    assert!(pattern.contains("[a-z0-9]+(?:-[a-z0-9]+)*$"), "{pattern}");
    assert!(pattern.contains("www|api"), "reserved names: {pattern}");
    assert_eq!(schemas["Sha256"]["pattern"], "^[0-9a-f]{64}$");
    assert_eq!(schemas["DeployId"]["pattern"], "^[0-9a-f]{16}$");
    assert!(schemas["DomainName"]["pattern"].is_string());
    assert!(schemas["Username"]["pattern"].is_string());
    assert_eq!(schemas["TokenName"]["maxLength"], 100);

    // The file list: paths start with `/`, values are digests, at least one file.
    assert_eq!(
        schemas["CreateDeploy"]["properties"]["files"]["$ref"],
        "#/components/schemas/FileList"
    );
    let files = &schemas["FileList"];
    assert_eq!(files["minProperties"], 1);
    let path_pattern = files["propertyNames"]["pattern"]
        .as_str()
        .expect("path pattern");
    assert!(
        path_pattern.starts_with("^(?!/[A-Za-z]:)(?:/"),
        "no drive prefix, then segments after '/': {path_pattern}"
    );
    assert_eq!(
        files["additionalProperties"]["pattern"],
        schemas["Sha256"]["pattern"]
    );

    // Path parameters carry the same schemas, and every error is problem+json.
    let upload = &doc["paths"]["/api/v1/deploys/{id}/files/{sha256}"]["put"];
    let params: Vec<&Value> = upload["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| &p["schema"]["$ref"])
        .collect();
    assert_eq!(
        params,
        [
            "#/components/schemas/DeployId",
            "#/components/schemas/Sha256"
        ]
    );
    let create_site = &doc["paths"]["/api/v1/sites"]["post"]["responses"];
    for status in ["401", "409", "422"] {
        assert_eq!(
            create_site[status]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "{status}"
        );
    }
}

#[tokio::test]
async fn management_endpoints_report_health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let health = app
        .client
        .get(app.mgmt_url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), 200);
    let ready: Value = app
        .client
        .get(app.mgmt_url("/readyz"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    // Some traffic, then the metrics show it with bounded labels.
    app.get(ADMIN_TOKEN, "/whoami")
        .send()
        .await
        .expect("request");
    let metrics = app
        .client
        .get(app.mgmt_url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("hosting_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"api\""), "{metrics}");
    assert!(
        !metrics.contains("localhost"),
        "a hostname leaked into metric labels"
    );
}

#[tokio::test]
async fn shutdown_turns_readiness_off_before_the_listener_closes() {
    let app =
        TestApp::spawn_with(|c| c.listeners.shutdown_drain = std::time::Duration::from_secs(2))
            .await;
    let readyz = app.mgmt_url("/readyz");
    let client = app.client.clone();
    let state = app.state.clone();
    let stopping = tokio::spawn(app.stop());
    // During the drain delay the process still answers, but says it is not ready.
    let mut saw_not_ready = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if let Ok(response) = client.get(&readyz).send().await {
            if response.status() == 503 {
                saw_not_ready = true;
                break;
            }
        }
    }
    assert!(saw_not_ready, "readiness never turned false while draining");
    assert!(!state.is_accepting());
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn a_wrong_method_on_an_api_route_is_a_problem_json_405() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .delete(app.api("/sites"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    let detail = assert_problem(response, 405).await;
    assert!(detail.contains("/api/v1/sites"), "{detail}");
}

#[tokio::test]
async fn api_requests_over_the_limit_get_429_but_file_uploads_are_not_counted() {
    // Arrange: three API requests a minute.
    let app = TestApp::spawn_with(|c| c.limits.rate_limit_per_minute = 3).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("/f{i}.txt"), format!("file {i}").into_bytes()))
        .collect();
    let manifest: std::collections::BTreeMap<String, String> = files
        .iter()
        .map(|(p, b)| (p.clone(), crate::helpers::sha256_hex(b)))
        .collect();
    let created: api::CreatedDeploy = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys")
        .json(&api::CreateDeploy {
            files: manifest,
            message: None,
        })
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");

    // Act: six uploads (not counted), then API calls until refused.
    for (_, bytes) in &files {
        let sha = crate::helpers::sha256_hex(bytes);
        let response = app
            .client
            .put(app.api(&format!("/deploys/{}/files/{sha}", created.deploy.id)))
            .bearer_auth(ADMIN_TOKEN)
            .body(bytes.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 204);
    }
    // Fixed one-minute windows: a boundary may fall between two requests, so a few more
    // than the limit are sent; at most one window change can happen among them.
    let mut refused = None;
    for _ in 0..8 {
        let response = app
            .get(ADMIN_TOKEN, "/whoami")
            .send()
            .await
            .expect("request");
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }

    // Assert
    let refused = refused.expect("no request was refused past the limit");
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 429).await;
}
