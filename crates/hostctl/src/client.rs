//! Typed client for the `/api/v1` HTTP API, with the server's problem+json errors
//! turned into [`ApiError`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hosting_api::{
    AddDomain, CreateDeploy, CreateSite, CreateToken, CreateUser, CreatedDeploy, CreatedToken,
    CreatedUser, Deploy, Domain, Limits, List, Problem, Rollback, Site, Token, UpdateUser, User,
    IDEMPOTENCY_KEY,
};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::Credentials;

/// Longest piece of a non-problem error body worth showing to a human.
const MAX_BODY_IN_ERROR: usize = 512;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an RFC 9457 problem document.
    #[error("{}", problem_message(.problem))]
    Problem {
        status: StatusCode,
        /// Boxed to keep `Result<_, ApiError>` small: problems are the rare path.
        problem: Box<Problem>,
    },
    /// The server answered with an error that is not problem+json (e.g. from a proxy).
    #[error("{status}: {body}")]
    Status { status: StatusCode, body: String },
    /// Nothing listens where the server should be: the most common first-run mistake.
    /// The low-level cause ("tcp connect error ...") is left out: it says the same less clearly.
    #[error("no server at {server}: is it running?")]
    NoServer { server: String },
    /// Something answered, but a 404 without a problem document: not this API (a site
    /// host, another web server, a wrong base path).
    #[error("{server} is not a hosting API (it answered 404 Not Found to {url})")]
    NotAnApi { server: String, url: String },
    /// 401: the token is unknown, revoked or mistyped.
    #[error("the token was refused by {server}: run `hostctl login --server {server}` with a valid token")]
    TokenRefused { server: String },
    /// No usable answer: connection reset, timed out, TLS failure...
    #[error("request to {url} failed")]
    Transport { url: String, source: reqwest::Error },
    /// A success status with a body that is not what the API promises.
    #[error("unexpected response from {url}")]
    Decode { url: String, source: reqwest::Error },
    /// The configured server URL cannot have API paths appended to it.
    #[error("invalid server URL `{0}`")]
    BadServer(String),
    /// The token contains characters that cannot go in an HTTP header.
    #[error("the API token contains characters that are not allowed in an HTTP header")]
    BadToken,
}

fn problem_message(problem: &Problem) -> String {
    match problem.detail.as_deref() {
        Some(detail) if !detail.is_empty() => format!("{}: {}", problem.title, detail),
        _ => problem.title.clone(),
    }
}

impl ApiError {
    /// Builds the error for a non-success response from its status, content type and body.
    pub fn from_parts(status: StatusCode, content_type: Option<&str>, body: &[u8]) -> Self {
        let json_like = content_type
            .is_some_and(|ct| ct.starts_with(hosting_api::PROBLEM_JSON) || ct.contains("json"));
        if json_like {
            if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
                return ApiError::Problem {
                    status,
                    problem: Box::new(problem),
                };
            }
        }
        let text = String::from_utf8_lossy(body);
        let mut text = text.trim().to_owned();
        if text.len() > MAX_BODY_IN_ERROR {
            let mut cut = MAX_BODY_IN_ERROR;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        ApiError::Status { status, body: text }
    }

    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Problem { status, .. } | ApiError::Status { status, .. } => Some(*status),
            ApiError::NotAnApi { .. } => Some(StatusCode::NOT_FOUND),
            ApiError::TokenRefused { .. } => Some(StatusCode::UNAUTHORIZED),
            _ => None,
        }
    }

    /// The server's problem document, when it sent one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ApiError::Problem { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// Whether sending the same request again may succeed: a lost connection, an
    /// overloaded or restarting server, or a rate limit.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A restarting server refuses connections for a moment.
            ApiError::NoServer { .. } => true,
            ApiError::Transport { source, .. } => !source.is_builder(),
            _ => self
                .status()
                .is_some_and(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS),
        }
    }
}

/// How a retryable request is retried: three more attempts, about 0.5 s, 1 s and 2 s
/// apart (with jitter, so parallel uploads do not return in lockstep); long enough for a
/// restarting server, short enough to wait for.
pub fn backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_factor(2.0)
        .with_max_times(3)
        .with_jitter()
}

/// Extra CA certificates trusted by every client of this process (`--ca-cert`).
static EXTRA_ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();

/// Trusts the PEM certificate(s) in `pem` besides the built-in roots, for this process.
pub fn trust_ca_pem(pem: &[u8]) -> Result<(), String> {
    let certificates = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certificates.is_empty() {
        return Err("no certificate found in the file".into());
    }
    EXTRA_ROOTS
        .set(certificates)
        .map_err(|_| "a CA certificate was already configured".to_owned())
}

/// Where `localhost` names go; the port is ignored (the URL's port is used).
const LOOPBACK: [SocketAddr; 2] = [
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
    SocketAddr::new(std::net::IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
];

/// `localhost` and every `*.localhost` name are loopback (RFC 6761 section 6.3), as
/// browsers and curl treat them; many system resolvers only know plain `localhost`, so
/// `http://hosting.localhost:3000` would otherwise fail with a DNS error.
fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Whether the error chain of a failed request ends in "connection refused".
fn is_connection_refused(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

/// An authenticated connection to one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
}

impl Client {
    /// Prepares a client for `credentials`; nothing is sent yet.
    pub fn new(credentials: &Credentials) -> Result<Self, ApiError> {
        let base = Url::parse(&credentials.server)
            .ok()
            .filter(|u| !u.cannot_be_a_base())
            .ok_or_else(|| ApiError::BadServer(credentials.server.clone()))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", credentials.token.trim()))
            .map_err(|_| ApiError::BadToken)?;
        auth.set_sensitive(true);
        let mut builder = reqwest::Client::builder();
        if let Some(host) = base.host_str().filter(|host| is_localhost(host)) {
            builder = builder.resolve_to_addrs(host, &LOOPBACK);
        }
        for certificate in EXTRA_ROOTS.get().into_iter().flatten() {
            builder = builder.add_root_certificate(certificate.clone());
        }
        let http = builder
            .user_agent(concat!("hostctl/", env!("CARGO_PKG_VERSION")))
            // No overall timeout: a large upload on a slow link may rightly take minutes.
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|source| ApiError::Transport {
                url: credentials.server.clone(),
                source,
            })?;
        Ok(Client { http, base, auth })
    }

    /// `<server>/api/v1/<segments...>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http
            .request(method, self.url(segments))
            .header(AUTHORIZATION, self.auth.clone())
    }

    /// Sends `request`, mapping transport failures and non-2xx answers to [`ApiError`].
    async fn send(&self, request: RequestBuilder) -> Result<Response, ApiError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|source| ApiError::Transport {
            url: self.base.to_string(),
            source,
        })?;
        let url = request.url().to_string();
        let response = client.execute(request).await.map_err(|source| {
            let source = source.without_url();
            if is_connection_refused(&source) {
                ApiError::NoServer {
                    server: self.server(),
                }
            } else {
                ApiError::Transport {
                    url: url.clone(),
                    source,
                }
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(ApiError::TokenRefused {
                server: self.server(),
            });
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // An unreadable error body still leaves the status worth reporting.
        let body = response.bytes().await.unwrap_or_default();
        match ApiError::from_parts(status, content_type.as_deref(), &body) {
            // Every API route answers a missing resource with a problem document.
            ApiError::Status { status, .. } if status == StatusCode::NOT_FOUND => {
                Err(ApiError::NotAnApi {
                    server: self.server(),
                    url,
                })
            }
            error => Err(error),
        }
    }

    /// The server's base URL as the user gave it (no trailing slash).
    fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ApiError> {
        let response = self.send(request).await?;
        let url = response.url().to_string();
        response.json().await.map_err(|source| ApiError::Decode {
            url,
            source: source.without_url(),
        })
    }

    async fn empty(&self, request: RequestBuilder) -> Result<(), ApiError> {
        self.send(request).await.map(drop)
    }

    /// `GET /limits`: what one deploy may hold.
    pub async fn limits(&self) -> Result<Limits, ApiError> {
        self.json(self.request(Method::GET, &["limits"])).await
    }

    /// `GET /whoami`
    pub async fn whoami(&self) -> Result<User, ApiError> {
        self.json(self.request(Method::GET, &["whoami"])).await
    }

    /// `GET /whoami` with the caller's quota usage.
    pub async fn whoami_with_quota(&self) -> Result<hosting_api::WhoAmI, ApiError> {
        self.json(self.request(Method::GET, &["whoami"])).await
    }

    /// `GET /users/{id}/quota` (admin only)
    pub async fn user_quota(&self, id: i64) -> Result<hosting_api::Quota, ApiError> {
        self.json(self.request(Method::GET, &["users", &id.to_string(), "quota"]))
            .await
    }

    /// `PUT /users/{id}/quota` (admin only)
    pub async fn set_user_quota(
        &self,
        id: i64,
        body: &hosting_api::SetQuota,
    ) -> Result<hosting_api::Quota, ApiError> {
        self.json(
            self.request(Method::PUT, &["users", &id.to_string(), "quota"])
                .json(body),
        )
        .await
    }

    /// `POST /sites`
    pub async fn create_site(&self, name: &str) -> Result<Site, ApiError> {
        let body = CreateSite {
            name: name.to_owned(),
        };
        self.json(self.request(Method::POST, &["sites"]).json(&body))
            .await
    }

    /// `GET /sites`
    pub async fn list_sites(&self) -> Result<Vec<Site>, ApiError> {
        self.list(self.request(Method::GET, &["sites"])).await
    }

    /// `GET /sites/{site}/analytics?from=&granularity=`
    pub async fn site_analytics(
        &self,
        site: &str,
        from: chrono::DateTime<chrono::Utc>,
        granularity: Option<hosting_api::AnalyticsGranularity>,
    ) -> Result<hosting_api::SiteAnalytics, ApiError> {
        let mut query = vec![(
            "from",
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )];
        if let Some(granularity) = granularity {
            let name = serde_json::to_value(granularity).unwrap_or_default();
            query.push(("granularity", name.as_str().unwrap_or("day").to_owned()));
        }
        self.json(
            self.request(Method::GET, &["sites", site, "analytics"])
                .query(&query),
        )
        .await
    }

    /// `GET /sites/{site}`
    pub async fn get_site(&self, name: &str) -> Result<Site, ApiError> {
        self.json(self.request(Method::GET, &["sites", name])).await
    }

    /// `DELETE /sites/{site}`
    pub async fn delete_site(&self, name: &str) -> Result<(), ApiError> {
        self.empty(self.request(Method::DELETE, &["sites", name]))
            .await
    }

    /// `POST /sites/{site}/domains`
    pub async fn add_domain(&self, site: &str, domain: &str) -> Result<Domain, ApiError> {
        let body = AddDomain {
            name: domain.to_owned(),
        };
        self.json(
            self.request(Method::POST, &["sites", site, "domains"])
                .json(&body),
        )
        .await
    }

    /// `GET /sites/{site}/domains`
    pub async fn list_domains(&self, site: &str) -> Result<Vec<Domain>, ApiError> {
        self.list(self.request(Method::GET, &["sites", site, "domains"]))
            .await
    }

    /// `POST /sites/{site}/domains/{domain}/verify`
    pub async fn verify_domain(&self, site: &str, domain: &str) -> Result<Domain, ApiError> {
        self.json(self.request(Method::POST, &["sites", site, "domains", domain, "verify"]))
            .await
    }

    /// `POST /sites/{site}/domains/{domain}/certificate`
    pub async fn request_certificate(&self, site: &str, domain: &str) -> Result<Domain, ApiError> {
        self.json(self.request(
            Method::POST,
            &["sites", site, "domains", domain, "certificate"],
        ))
        .await
    }

    /// `DELETE /sites/{site}/domains/{domain}`
    pub async fn remove_domain(&self, site: &str, domain: &str) -> Result<(), ApiError> {
        self.empty(self.request(Method::DELETE, &["sites", site, "domains", domain]))
            .await
    }

    /// `POST /sites/{site}/deploys` with a digest map; the same `idempotency_key`
    /// on a retry returns the deploy the first attempt created.
    pub async fn create_deploy(
        &self,
        site: &str,
        files: &CreateDeploy,
        idempotency_key: &str,
    ) -> Result<CreatedDeploy, ApiError> {
        let request = self
            .request(Method::POST, &["sites", site, "deploys"])
            .header(IDEMPOTENCY_KEY, idempotency_key)
            .json(files);
        self.json(request).await
    }

    /// `PUT /deploys/{id}/files/{sha256}` with the file's bytes.
    pub async fn upload_file(
        &self,
        deploy_id: &str,
        sha256: &str,
        len: u64,
        body: reqwest::Body,
    ) -> Result<(), ApiError> {
        let request = self
            .request(Method::PUT, &["deploys", deploy_id, "files", sha256])
            .header(CONTENT_TYPE, "application/octet-stream")
            // Lets the server refuse an oversized file before reading it, even when streamed.
            .header(CONTENT_LENGTH, len)
            .body(body);
        self.empty(request).await
    }

    /// `POST /deploys/{id}/files`: many files as an uncompressed tar named by digest.
    pub async fn upload_batch(&self, deploy_id: &str, body: reqwest::Body) -> Result<(), ApiError> {
        let request = self
            .request(Method::POST, &["deploys", deploy_id, "files"])
            .header(CONTENT_TYPE, "application/x-tar")
            .body(body);
        self.empty(request).await
    }

    /// `POST /blobs/missing`: which of `digests` this owner has never uploaded.
    pub async fn missing_blobs(&self, digests: Vec<String>) -> Result<Vec<String>, ApiError> {
        let request = self
            .request(Method::POST, &["blobs", "missing"])
            .json(&hosting_api::MissingQuery { digests });
        let missing: hosting_api::Missing = self.json(request).await?;
        Ok(missing.missing)
    }

    /// `POST /blobs`: files before their deploy exists, as an uncompressed tar named by digest.
    pub async fn upload_blobs(&self, body: reqwest::Body) -> Result<(), ApiError> {
        let request = self
            .request(Method::POST, &["blobs"])
            .header(CONTENT_TYPE, "application/x-tar")
            .body(body);
        self.empty(request).await
    }

    /// `POST /deploys/{id}/publish`
    pub async fn publish(&self, deploy_id: &str) -> Result<Deploy, ApiError> {
        self.json(self.request(Method::POST, &["deploys", deploy_id, "publish"]))
            .await
    }

    /// `GET /sites/{site}/deploys`, newest first.
    pub async fn list_deploys(&self, site: &str) -> Result<Vec<Deploy>, ApiError> {
        self.list(self.request(Method::GET, &["sites", site, "deploys"]))
            .await
    }

    /// `GET /deploys/{id}`
    pub async fn get_deploy(&self, deploy_id: &str) -> Result<Deploy, ApiError> {
        self.json(self.request(Method::GET, &["deploys", deploy_id]))
            .await
    }

    /// `POST /sites/{site}/rollback`; returns the deploy that is now live.
    pub async fn rollback(
        &self,
        site: &str,
        deploy_id: Option<String>,
    ) -> Result<Deploy, ApiError> {
        let body = Rollback { deploy_id };
        self.json(
            self.request(Method::POST, &["sites", site, "rollback"])
                .json(&body),
        )
        .await
    }

    /// `POST /tokens`
    pub async fn create_token(&self, name: &str) -> Result<CreatedToken, ApiError> {
        let body = CreateToken {
            name: name.to_owned(),
        };
        self.json(self.request(Method::POST, &["tokens"]).json(&body))
            .await
    }

    /// `GET /tokens`
    pub async fn list_tokens(&self) -> Result<Vec<Token>, ApiError> {
        self.list(self.request(Method::GET, &["tokens"])).await
    }

    /// `DELETE /tokens/{id}`
    pub async fn revoke_token(&self, id: i64) -> Result<(), ApiError> {
        self.empty(self.request(Method::DELETE, &["tokens", &id.to_string()]))
            .await
    }

    /// `POST /users` (admin only)
    pub async fn create_user(&self, body: &CreateUser) -> Result<CreatedUser, ApiError> {
        self.json(self.request(Method::POST, &["users"]).json(body))
            .await
    }

    /// `GET /users` (admin only)
    pub async fn list_users(&self) -> Result<Vec<User>, ApiError> {
        self.list(self.request(Method::GET, &["users"])).await
    }

    /// `PATCH /users/{id}` (admin only)
    pub async fn update_user(&self, id: i64, body: &UpdateUser) -> Result<User, ApiError> {
        self.json(
            self.request(Method::PATCH, &["users", &id.to_string()])
                .json(body),
        )
        .await
    }

    async fn list<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<Vec<T>, ApiError> {
        self.json::<List<T>>(request).await.map(|list| list.items)
    }

    /// `GET /audit` with its filters (`(name, value)` query pairs) and cursor.
    pub async fn audit(
        &self,
        query: &[(&str, String)],
    ) -> Result<hosting_api::AuditPage, ApiError> {
        self.json(self.request(Method::GET, &["audit"]).query(query))
            .await
    }

    /// `POST /sites/{site}/webhooks`
    pub async fn add_webhook(
        &self,
        site: &str,
        body: &hosting_api::CreateWebhook,
    ) -> Result<hosting_api::CreatedWebhook, ApiError> {
        self.json(
            self.request(Method::POST, &["sites", site, "webhooks"])
                .json(body),
        )
        .await
    }

    /// `GET /sites/{site}/webhooks`
    pub async fn list_webhooks(&self, site: &str) -> Result<Vec<hosting_api::Webhook>, ApiError> {
        self.list(self.request(Method::GET, &["sites", site, "webhooks"]))
            .await
    }

    /// `DELETE /sites/{site}/webhooks/{id}`
    pub async fn remove_webhook(&self, site: &str, id: i64) -> Result<(), ApiError> {
        self.empty(self.request(
            Method::DELETE,
            &["sites", site, "webhooks", &id.to_string()],
        ))
        .await
    }

    /// `GET /sites/{site}/webhooks/{id}/deliveries`
    pub async fn webhook_deliveries(
        &self,
        site: &str,
        id: i64,
    ) -> Result<Vec<hosting_api::WebhookDelivery>, ApiError> {
        let id = id.to_string();
        self.list(self.request(Method::GET, &["sites", site, "webhooks", &id, "deliveries"]))
            .await
    }
}

/// Deploy aliases and visitor access (issue 21).
impl Client {
    /// `PUT /sites/{site}/aliases/{alias}`: point the alias at a ready deploy.
    pub async fn set_alias(
        &self,
        site: &str,
        alias: &str,
        deploy_id: &str,
    ) -> Result<hosting_api::Alias, ApiError> {
        let body = hosting_api::SetAlias {
            deploy_id: deploy_id.to_owned(),
        };
        self.json(
            self.request(Method::PUT, &["sites", site, "aliases", alias])
                .json(&body),
        )
        .await
    }

    /// `GET /sites/{site}/aliases`
    pub async fn list_aliases(&self, site: &str) -> Result<Vec<hosting_api::Alias>, ApiError> {
        self.list(self.request(Method::GET, &["sites", site, "aliases"]))
            .await
    }

    /// `DELETE /sites/{site}/aliases/{alias}`
    pub async fn remove_alias(&self, site: &str, alias: &str) -> Result<(), ApiError> {
        self.empty(self.request(Method::DELETE, &["sites", site, "aliases", alias]))
            .await
    }

    /// `PUT /sites/{site}/protection`
    pub async fn protect_site(
        &self,
        site: &str,
        body: &hosting_api::SetProtection,
    ) -> Result<hosting_api::Protection, ApiError> {
        self.json(
            self.request(Method::PUT, &["sites", site, "protection"])
                .json(body),
        )
        .await
    }

    /// `DELETE /sites/{site}/protection`
    pub async fn unprotect_site(&self, site: &str) -> Result<(), ApiError> {
        self.empty(self.request(Method::DELETE, &["sites", site, "protection"]))
            .await
    }

    /// `GET /sites/{site}/hsts`
    pub async fn site_hsts(&self, site: &str) -> Result<hosting_api::Hsts, ApiError> {
        self.json(self.request(Method::GET, &["sites", site, "hsts"]))
            .await
    }

    /// `PUT /sites/{site}/hsts`
    pub async fn set_site_hsts(
        &self,
        site: &str,
        body: &hosting_api::Hsts,
    ) -> Result<hosting_api::Hsts, ApiError> {
        self.json(
            self.request(Method::PUT, &["sites", site, "hsts"])
                .json(body),
        )
        .await
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_file_without_a_certificate_is_refused_as_ca() {
        assert!(super::trust_ca_pem(b"not a certificate").is_err());
    }

    use super::*;

    fn client(server: &str) -> Client {
        Client::new(&Credentials {
            server: server.into(),
            token: "t".into(),
        })
        .expect("client")
    }

    #[test]
    fn a_problem_body_prints_as_title_and_detail() {
        let body = br#"{"type":"/problems/not-found","title":"Not Found","status":404,"detail":"no site named blog"}"#;
        let err = ApiError::from_parts(
            StatusCode::NOT_FOUND,
            Some("application/problem+json"),
            body,
        );
        assert_eq!(err.to_string(), "Not Found: no site named blog");
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_problem_without_detail_prints_its_title() {
        let body = br#"{"type":"/problems/forbidden","title":"Forbidden","status":403}"#;
        let err = ApiError::from_parts(
            StatusCode::FORBIDDEN,
            Some("application/problem+json"),
            body,
        );
        assert_eq!(err.to_string(), "Forbidden");
    }

    #[test]
    fn other_error_bodies_fall_back_to_status_line_and_text() {
        let err = ApiError::from_parts(
            StatusCode::BAD_GATEWAY,
            Some("text/html"),
            b"  <h1>502</h1>\n",
        );
        assert_eq!(err.to_string(), "502 Bad Gateway: <h1>502</h1>");
        assert!(err.is_retryable());
    }

    #[test]
    fn long_error_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(1000);
        let err = ApiError::from_parts(StatusCode::INTERNAL_SERVER_ERROR, None, body.as_bytes());
        assert!(err.to_string().len() < MAX_BODY_IN_ERROR + 64);
    }

    #[test]
    fn localhost_and_its_subdomains_count_as_loopback() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("hosting.localhost"));
        assert!(is_localhost("a.b.LOCALHOST."));
        assert!(!is_localhost("localhost.example"));
        assert!(!is_localhost("notlocalhost"));
    }

    #[test]
    fn api_urls_percent_encode_segments_and_keep_a_base_path() {
        assert_eq!(
            client("http://localhost:3000")
                .url(&["sites", "a b/c"])
                .as_str(),
            "http://localhost:3000/api/v1/sites/a%20b%2Fc"
        );
        assert_eq!(
            client("https://h.example/base").url(&["whoami"]).as_str(),
            "https://h.example/base/api/v1/whoami"
        );
    }
}
