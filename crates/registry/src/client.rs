//! One registry's HTTP API: the scheme (HTTPS, or plain HTTP where allowed), authentication
//! (anonymous, Basic, Bearer tokens per scope, renewed on a 401), retries with backoff on
//! transient failures, and the registry's structured errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::OnceCell;
use url::Url;

use crate::challenge::{parse_challenge, Challenge};
use crate::reference::{api_host, is_loopback};
use crate::{Credentials, Error};

/// The largest token server reply we read (a JSON object with a token or two).
pub const MAX_TOKEN_REPLY: u64 = 1024 * 1024;

/// How much of an error reply we read for its message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// How a [`RegistryClient`] behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Allow plain HTTP to this registry when HTTPS fails (always allowed for loopback hosts).
    pub insecure: bool,
    /// How many times a request that failed transiently (connection error, 5xx, 429) is
    /// tried again.
    pub retries: u32,
    /// The first wait before a retry; it doubles with every attempt (with jitter).
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions { insecure: false, retries: 3, backoff: Duration::from_millis(500) }
    }
}

/// A client for one registry. Cheap to clone; clones share connections and tokens.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    registry: String,
    api_host: String,
    allow_http: bool,
    /// The user marked the registry insecure (`--insecure`): plain HTTP to it is accepted.
    insecure: bool,
    credentials: Option<Credentials>,
    base: OnceCell<Url>,
    auth: Mutex<AuthState>,
    /// Held while fetching a token, so that parallel requests share one.
    token_fetch: tokio::sync::Mutex<()>,
    retries: u32,
    backoff: Duration,
}

#[derive(Default)]
struct AuthState {
    /// What the registry asked for the last time it refused a request.
    challenge: Option<Challenge>,
    /// Bearer tokens by the scope they were issued for.
    tokens: HashMap<String, Token>,
}

/// What the auth state says about a request's `Authorization`.
enum Known {
    Header(Option<String>),
    NeedToken { realm: String, service: Option<String> },
}

#[derive(Clone)]
struct Token {
    value: String,
    expires: Option<Instant>,
}

/// One request to send: what [`RegistryClient::send`] needs to send it again on a retry.
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// The token scope it needs: `repository:NAME:pull` (space-separated when several).
    pub scope: String,
    /// Whether a transient failure may be retried by sending it again as is.
    pub retry: bool,
}

impl Request {
    pub fn new(method: Method, url: Url, scope: &str) -> Request {
        Request { method, url, headers: HeaderMap::new(), body: None, scope: scope.to_string(), retry: true }
    }

    pub fn header(mut self, name: header::HeaderName, value: &str) -> Request {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub fn body(mut self, body: Bytes) -> Request {
        self.body = Some(body);
        self
    }

    pub fn no_retry(mut self) -> Request {
        self.retry = false;
        self
    }
}

impl RegistryClient {
    /// A client for `registry` (a host as [`crate::Reference::registry`] gives it) over
    /// `http` (the process's one reqwest client, with its trusted roots).
    pub fn new(
        http: reqwest::Client,
        registry: &str,
        credentials: Option<Credentials>,
        options: &ClientOptions,
    ) -> RegistryClient {
        RegistryClient {
            inner: Arc::new(Inner {
                http,
                registry: registry.to_string(),
                api_host: api_host(registry).to_string(),
                allow_http: options.insecure || is_loopback(registry),
                insecure: options.insecure,
                credentials,
                base: OnceCell::new(),
                auth: Mutex::new(AuthState::default()),
                token_fetch: tokio::sync::Mutex::new(()),
                retries: options.retries,
                backoff: options.backoff,
            }),
        }
    }

    /// The registry's name, as in references.
    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    /// How many times transient failures are retried.
    pub fn retries(&self) -> u32 {
        self.inner.retries
    }

    /// The wait before retry number `attempt` (1-based): exponential with jitter.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        fetch::backoff(self.inner.backoff, attempt.saturating_sub(1))
    }

    /// `https://HOST/` (or `http://` for a registry that only speaks plain HTTP), found by
    /// pinging `/v2/` once.
    pub(crate) async fn base(&self) -> Result<&Url, Error> {
        self.inner.base.get_or_try_init(|| self.ping_for_base()).await
    }

    /// A URL on the registry: `path` is relative to the base, such as `v2/NAME/tags/list`.
    pub(crate) async fn url(&self, path: &str) -> Result<Url, Error> {
        let base = self.base().await?;
        base.join(path).map_err(|e| Error::Protocol {
            url: base.to_string(),
            reason: format!("cannot build a URL for `{path}`: {e}"),
        })
    }

    /// Checks that the registry answers and, with credentials, that it accepts them: a
    /// `GET /v2/` (and the token flow if it asks for tokens).
    pub async fn check_login(&self) -> Result<(), Error> {
        let url = self.url("v2/").await?;
        let reply = self.send(Request::new(Method::GET, url.clone(), "")).await?;
        if reply.status().is_success() {
            return Ok(());
        }
        Err(status_error(&Method::GET, &url, reply, 1).await)
    }

    async fn ping_for_base(&self) -> Result<Url, Error> {
        let schemes: &[&str] = if self.inner.allow_http { &["https", "http"] } else { &["https"] };
        let mut failures = Vec::new();
        for (i, scheme) in schemes.iter().enumerate() {
            let last = i + 1 == schemes.len();
            let base =
                Url::parse(&format!("{scheme}://{}/", self.inner.api_host)).map_err(|e| Error::Protocol {
                    url: self.inner.api_host.clone(),
                    reason: format!("not a usable host: {e}"),
                })?;
            let ping = base.join("v2/").expect("a constant path joins");
            // HTTPS to a plain-HTTP server fails at once; only the last scheme is retried.
            let mut request = Request::new(Method::GET, ping.clone(), "");
            request.retry = last;
            match self.send_raw(&request, false).await {
                Ok(reply) => {
                    let status = reply.status();
                    if status.is_success() || status == StatusCode::UNAUTHORIZED {
                        if status == StatusCode::UNAUTHORIZED {
                            self.note_challenge(&reply);
                        }
                        tracing::debug!("{} speaks the registry API at {base}", self.inner.registry);
                        return Ok(base);
                    }
                    if let Some(first) = failures.first() {
                        // HTTPS failed and this is not a registry over HTTP either (a TLS port
                        // answering plain HTTP with 400): the HTTPS failure is what to fix.
                        return Err(Error::Request {
                            method: "GET".into(),
                            url: format!("https://{}/v2/", self.inner.api_host),
                            attempts: 1,
                            reason: format!("{first}; {scheme}: HTTP {}", status.as_u16()),
                        });
                    }
                    return Err(status_error(&Method::GET, &ping, reply, 1).await);
                }
                Err(Error::Request { reason, attempts, .. }) => {
                    failures.push(format!("{scheme}: {reason}"));
                    if last {
                        return Err(Error::Request {
                            method: "GET".into(),
                            url: ping.to_string(),
                            attempts,
                            reason: failures.join("; "),
                        });
                    }
                }
                Err(other) => return Err(other),
            }
        }
        unreachable!("the scheme list is never empty")
    }

    /// Sends `request` with authentication, retrying transient failures (when allowed) and
    /// answering one 401 by authenticating as the registry asks. Any other status comes back
    /// for the caller to judge.
    pub(crate) async fn send(&self, request: Request) -> Result<reqwest::Response, Error> {
        self.send_raw(&request, true).await
    }

    async fn send_raw(&self, request: &Request, authenticate: bool) -> Result<reqwest::Response, Error> {
        let mut attempts = 0;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            let mut builder = self
                .inner
                .http
                .request(request.method.clone(), request.url.clone())
                .headers(request.headers.clone());
            let sent = if authenticate && self.is_registry_url(&request.url) {
                let value = self.authorization(&request.scope).await?;
                if let Some(value) = &value {
                    builder = builder.header(header::AUTHORIZATION, value);
                }
                value
            } else {
                None
            };
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            tracing::debug!("{} {}", request.method, fetch::redact(&request.url));
            let transient = match builder.send().await {
                Ok(reply)
                    if reply.status() == StatusCode::UNAUTHORIZED && authenticate && !reauthenticated =>
                {
                    reauthenticated = true;
                    self.answer_challenge(&reply, &request.scope, sent.as_deref()).await?;
                    attempts -= 1;
                    continue;
                }
                Ok(reply) if reply.status() == StatusCode::UNAUTHORIZED && authenticate => {
                    let detail = error_detail(reply).await;
                    return Err(Error::Unauthorized {
                        registry: self.inner.registry.clone(),
                        scope: scope_repositories(&request.scope),
                        detail: if detail.is_empty() {
                            "HTTP 401".into()
                        } else {
                            detail.trim_start_matches(": ").to_string()
                        },
                    });
                }
                Ok(reply) if is_transient(reply.status()) => {
                    let status = reply.status();
                    if !request.retry || attempts > self.inner.retries {
                        return Ok(reply);
                    }
                    format!("HTTP {status}")
                }
                Ok(reply) => return Ok(reply),
                Err(e) => {
                    let reason = describe(&e);
                    if !request.retry || attempts > self.inner.retries {
                        return Err(Error::Request {
                            method: request.method.to_string(),
                            url: fetch::redact(&request.url),
                            attempts,
                            reason,
                        });
                    }
                    reason
                }
            };
            let wait = self.backoff(attempts);
            tracing::debug!(
                "{} {}: {transient}; retrying in {wait:?}",
                request.method,
                fetch::redact(&request.url)
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn is_registry_url(&self, url: &Url) -> bool {
        let host_port = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => return false,
        };
        host_port == self.inner.api_host
    }

    fn note_challenge(&self, reply: &reqwest::Response) {
        let challenge = reply
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .next();
        if let Some(challenge) = challenge {
            self.lock_auth().challenge = Some(challenge);
        }
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // A panic while holding the lock cannot leave the token map inconsistent.
        self.inner.auth.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `Authorization` value for a request needing `scope`, fetching a token first when
    /// the registry is known to want one.
    async fn authorization(&self, scope: &str) -> Result<Option<String>, Error> {
        match self.known_authorization(scope) {
            Known::Header(value) => Ok(value),
            Known::NeedToken { realm, service } => {
                let _fetching = self.inner.token_fetch.lock().await;
                // Another request may have fetched it while this one waited.
                if let Known::Header(value) = self.known_authorization(scope) {
                    return Ok(value);
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope).await?;
                self.lock_auth().tokens.insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {}", token.value)))
            }
        }
    }

    fn known_authorization(&self, scope: &str) -> Known {
        let auth = self.lock_auth();
        match &auth.challenge {
            None => Known::Header(None),
            Some(Challenge::Basic) => {
                Known::Header(self.inner.credentials.as_ref().map(Credentials::basic_header))
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = auth.tokens.get(scope).filter(|t| t.expires.is_none_or(|e| e > Instant::now()));
                match token {
                    Some(token) => Known::Header(Some(format!("Bearer {}", token.value))),
                    None => Known::NeedToken { realm: realm.clone(), service: service.clone() },
                }
            }
        }
    }

    /// Answers a 401: remembers how the registry wants to be authenticated and, for tokens,
    /// fetches a new one (the one we sent may have expired).
    async fn answer_challenge(
        &self,
        reply: &reqwest::Response,
        scope: &str,
        sent: Option<&str>,
    ) -> Result<(), Error> {
        self.note_challenge(reply);
        let challenge = self.lock_auth().challenge.clone();
        match challenge {
            Some(Challenge::Basic) if self.inner.credentials.is_none() => Err(Error::Unauthorized {
                registry: self.inner.registry.clone(),
                scope: scope_repositories(scope),
                detail: "it wants a user name and password, and none are stored for it".into(),
            }),
            Some(Challenge::Basic) if sent.is_some() => Err(Error::Unauthorized {
                registry: self.inner.registry.clone(),
                scope: scope_repositories(scope),
                detail: "the user name or password is wrong".into(),
            }),
            Some(Challenge::Basic) => Ok(()),
            Some(Challenge::Bearer { realm, service, scope: wanted }) => {
                let mut scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
                for extra in wanted.as_deref().unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.contains(&extra) {
                        scopes.push(extra);
                    }
                }
                let _fetching = self.inner.token_fetch.lock().await;
                let current = self.lock_auth().tokens.get(scope).map(|t| format!("Bearer {}", t.value));
                if current.is_some() && current.as_deref() != sent {
                    // A parallel request renewed the token while this one was refused.
                    return Ok(());
                }
                tracing::debug!("{} asked for a new token ({})", self.inner.registry, scopes.join(" "));
                let token = self.fetch_token(&realm, service.as_deref(), &scopes.join(" ")).await?;
                self.lock_auth().tokens.insert(scope.to_string(), token);
                Ok(())
            }
            None => Err(Error::Unauthorized {
                registry: self.inner.registry.clone(),
                scope: scope_repositories(scope),
                detail: "HTTP 401 with no authentication scheme we know (Basic or Bearer)".into(),
            }),
        }
    }

    /// Gets a token from the token server: with an identity token as an OAuth2 refresh
    /// token (POST), else with Basic credentials if we have any (GET), else anonymously.
    async fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<Token, Error> {
        let mut url = Url::parse(realm).map_err(|e| Error::Protocol {
            url: self.inner.registry.clone(),
            reason: format!("the token realm `{}` is not a URL: {e}", fetch::strip_credentials(realm)),
        })?;
        // The registry was reached before it could name a realm; unknown, it counts as HTTPS.
        let registry_scheme = self.inner.base.get().map_or("https", |base| base.scheme());
        check_realm(&self.inner.registry, registry_scheme, self.inner.insecure, &url)?;
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        let identity = self.inner.credentials.as_ref().filter(|c| c.is_identity_token());
        let mut builder = if let Some(credentials) = identity {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", credentials.secret());
            form.append_pair("client_id", "marqo-base");
            if let Some(service) = service {
                form.append_pair("service", service);
            }
            for s in &scopes {
                form.append_pair("scope", s);
            }
            self.inner
                .http
                .post(url.clone())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.finish())
        } else {
            {
                let mut query = url.query_pairs_mut();
                if let Some(service) = service {
                    query.append_pair("service", service);
                }
                for s in &scopes {
                    query.append_pair("scope", s);
                }
            }
            let builder = self.inner.http.get(url.clone());
            match &self.inner.credentials {
                Some(credentials) => builder.header(header::AUTHORIZATION, credentials.basic_header()),
                None => builder,
            }
        };
        builder = builder.header(header::ACCEPT, "application/json");
        let started = Instant::now();
        let reply = builder.send().await.map_err(|e| Error::Request {
            method: "GET".into(),
            url: fetch::redact(&url),
            attempts: 1,
            reason: describe(&e),
        })?;
        let status = reply.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_detail(reply).await;
            let detail = if self.inner.credentials.is_some() {
                format!("the token server refused the stored credentials (HTTP {}{detail})", status.as_u16())
            } else {
                format!(
                    "the token server wants credentials and none are stored (HTTP {}{detail})",
                    status.as_u16()
                )
            };
            return Err(Error::Unauthorized {
                registry: self.inner.registry.clone(),
                scope: scope_repositories(scope),
                detail,
            });
        }
        if !status.is_success() {
            return Err(status_error(&Method::GET, &url, reply, 1).await);
        }
        let body = read_limited(reply, &url, "token reply", MAX_TOKEN_REPLY).await?;
        let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
            url: fetch::redact(&url),
            reason: format!("the token reply is not JSON: {e}"),
        })?;
        let value = ["token", "access_token"]
            .iter()
            .find_map(|k| body.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()))
            .ok_or_else(|| Error::Protocol {
                url: fetch::redact(&url),
                reason: "the token reply has no `token`".into(),
            })?;
        // Renew a little early so that a token does not expire between check and use.
        let expires = body
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .map(|secs| started + Duration::from_secs(secs).saturating_sub(Duration::from_secs(5)));
        Ok(Token { value: value.to_string(), expires })
    }
}

/// Whether a token request (which carries the stored credentials: Basic, or an identity
/// token) may go to `realm` for `registry`, spoken over `registry_scheme`.
///
/// As Docker, the realm may be on another host (Docker Hub's is): the registry, reached
/// over HTTPS, names its token server. Unlike Docker, the credentials never travel
/// unencrypted where the registry itself is encrypted: an HTTPS registry's realm must be
/// HTTPS. A plain-HTTP realm is used only with a plain-HTTP registry, and then only on a
/// loopback host or when the user marked the registry insecure.
fn check_realm(registry: &str, registry_scheme: &str, insecure: bool, realm: &Url) -> Result<(), Error> {
    let refuse = |reason: &str, hint: &str| {
        Err(Error::TokenRealm {
            registry: registry.to_string(),
            realm: fetch::redact(realm),
            reason: reason.to_string(),
            hint: hint.to_string(),
        })
    };
    let loopback = match realm.host() {
        Some(url::Host::Domain(name)) => is_loopback(name),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match realm.scheme() {
        "https" => Ok(()),
        "http" if registry_scheme == "https" => refuse(
            "the registry speaks HTTPS and its token server plain HTTP, where the credentials \
             would travel unencrypted",
            "the registry's token realm must be an https:// URL: fix its auth configuration (for \
             example the token `realm`, or the external URL of a registry behind a TLS proxy)",
        ),
        "http" if insecure || loopback => Ok(()),
        "http" => refuse(
            "it is plain HTTP to a host that is not loopback, and the registry is not marked insecure",
            "make the registry's token realm an https:// URL, or, if you trust the network to it, \
             pass --insecure (MARQO_BASE_INSECURE=1)",
        ),
        _ => refuse("a token server is reached over https (or http)", "fix the registry's token realm"),
    }
}

/// Whether a reply status is worth another try.
fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The repositories a scope string names, for messages: `repository:a:pull,push` -> `a`.
fn scope_repositories(scope: &str) -> Option<String> {
    let names: Vec<&str> = scope
        .split(' ')
        .filter_map(|s| s.strip_prefix("repository:"))
        .filter_map(|s| s.rsplit_once(':').map(|(name, _)| name))
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// A transport error with its causes, without its URL (we print a redacted one).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cur {
        let mut text = e.to_string();
        if let Some(url) = error.url() {
            text = text.replace(&format!(" ({url})"), "").replace(url.as_str(), &fetch::redact(url));
        }
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The registry's error codes and messages from a reply body (`: CODE message; ...`), on one
/// line with control characters escaped: the server's words, never its escape sequences or
/// a line of its own that looks like ours.
pub(crate) async fn error_detail(mut reply: reqwest::Response) -> String {
    // Only the start: a registry error is a short JSON document, and an endless one must not
    // hide the status behind it.
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = reply.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() as u64 >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY as usize);
            break;
        }
    }
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) if !errors.errors.is_empty() => {
            let parts: Vec<String> = errors
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect();
            format!(": {}", fetch::escape(&parts.join("; ")))
        }
        _ => {
            let text = String::from_utf8_lossy(&body);
            let line = text.lines().next().unwrap_or_default().trim();
            if line.is_empty() || line.len() > 200 {
                String::new()
            } else {
                format!(": {}", fetch::escape(line))
            }
        }
    }
}

/// The body of `reply` (to a GET of `url`), refused past `limit` bytes as
/// [`Error::TooLarge`] without reading the rest.
pub(crate) async fn read_limited(
    mut reply: reqwest::Response,
    url: &Url,
    what: &'static str,
    limit: u64,
) -> Result<Bytes, Error> {
    let too_large = || Error::TooLarge { what, url: fetch::redact(url), limit };
    if reply.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match fetch::read_bounded(&mut reply, limit).await {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(too_large()),
        Err(e) => Err(Error::Request {
            method: "GET".into(),
            url: fetch::redact(url),
            attempts: 1,
            reason: describe(&e),
        }),
    }
}

/// An error for an unexpected status.
pub(crate) async fn status_error(
    method: &Method,
    url: &Url,
    reply: reqwest::Response,
    attempts: u32,
) -> Error {
    let status = reply.status().as_u16();
    let detail = error_detail(reply).await;
    Error::Status { method: method.to_string(), url: fetch::redact(url), status, detail, attempts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_a_realm_only_encrypted() {
        let url = |s: &str| Url::parse(s).unwrap();
        let check = |scheme, insecure, realm: &str| check_realm("reg:5000", scheme, insecure, &url(realm));
        // HTTPS realms anywhere, as Docker (Docker Hub's realm is on another host).
        assert!(check("https", false, "https://auth.example.invalid/token").is_ok());
        assert!(check("http", false, "https://auth.example.invalid/token").is_ok());
        // No downgrade from an HTTPS registry, loopback or insecure alike.
        for insecure in [false, true] {
            let err = check("https", insecure, "http://127.0.0.1:1/token").unwrap_err();
            assert!(matches!(&err, Error::TokenRealm { .. }), "{err}");
            assert!(
                err.to_string().contains("reg:5000") && err.to_string().contains("http://127.0.0.1:1/token")
            );
        }
        // Plain HTTP after plain HTTP: on loopback, or to a registry marked insecure.
        assert!(check("http", false, "http://127.0.0.1:1/token").is_ok());
        assert!(check("http", false, "http://localhost:1/token").is_ok());
        assert!(check("http", false, "http://[::1]:1/token").is_ok());
        assert!(check("http", true, "http://auth.example.invalid/token").is_ok());
        assert!(check("http", false, "http://auth.example.invalid/token").is_err());
        assert!(check("http", true, "ftp://auth.example.invalid/token").is_err());
        let err = check("https", false, "http://u:pw@auth.example.invalid/t").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn scopes_for_messages() {
        assert_eq!(
            scope_repositories("repository:a/b:pull,push repository:c:pull").as_deref(),
            Some("a/b, c")
        );
        assert_eq!(scope_repositories(""), None);
    }
}
