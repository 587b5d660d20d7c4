//! The HTTP side of calling one webhook: a pooled hyper client (keep-alive; HTTP/1.1, or
//! h2 when TLS ALPN offers it) to an `https://` URL, a loopback `http://` URL or a unix
//! socket; `POST` of the AdmissionReview JSON within `timeoutSeconds`; the body of a 2xx
//! answer, at most 3 MiB as in kube-apiserver. Everything that goes wrong is a
//! [`CallError`], which the chain maps through `failurePolicy`.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;

use super::tls::{self, TlsSetupError};
use crate::config::webhook::WebhookConfig;
use crate::net::unix::UnixConnector;
use crate::review::wire::ResponseError;

/// kube-apiserver's limit on a webhook response body.
pub const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// Why a webhook could not be asked, or its answer not be used. Messages follow
/// kube-apiserver's (`failed to call webhook: Post "URL": ...`).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("failed to call webhook: {target}: {detail}")]
    Transport { target: String, detail: String },
    #[error("failed to call webhook: {target}: timed out after {seconds}s (timeoutSeconds)")]
    Timeout { target: String, seconds: u64 },
    #[error("failed to call webhook: {target}: webhook answered HTTP {status}{body}")]
    Status {
        target: String,
        status: http::StatusCode,
        body: String,
    },
    #[error("failed to call webhook: {target}: response body exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { target: String },
    #[error("failed to call webhook: cannot read bearer token file {path}: {message}")]
    Token { path: PathBuf, message: String },
    /// A dry-run request, and the webhook does not say it is free of side effects.
    #[error("Webhook SideEffects is nil")]
    SideEffectsNil,
    #[error("could not create admission objects: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("received invalid webhook response: {0}")]
    Response(#[from] ResponseError),
}

/// Why a client cannot be built from a (validated) webhook entry.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("clientConfig.url: {0}")]
    Url(String),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

enum Transport {
    Tcp(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
    Unix(Client<UnixConnector, Full<Bytes>>),
}

/// One webhook's endpoint. Cheap to share; the connection pool lives inside.
pub struct WebhookClient {
    transport: Transport,
    uri: http::Uri,
    /// `Post "URL"` for messages.
    target: String,
    timeout: Duration,
    token: Option<TokenFile>,
}

impl WebhookClient {
    pub fn new(cfg: &WebhookConfig) -> Result<Self, ClientSetupError> {
        let cc = &cfg.client_config;
        let seconds = u64::try_from(cfg.timeout_seconds.clamp(1, 30)).unwrap_or(10);
        let timeout = Duration::from_secs(seconds);
        // kube-apiserver tells the webhook its deadline the same way.
        let query = format!("timeout={seconds}s");
        let (transport, uri, target) = match (&cc.url, &cc.socket) {
            (Some(url), _) => {
                let uri = with_query(url, &query).map_err(ClientSetupError::Url)?;
                let tls = tls::client_config(cc)?;
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_or_http()
                    .enable_all_versions()
                    .wrap_connector(http);
                let client = Client::builder(TokioExecutor::new()).build(connector);
                (Transport::Tcp(client), uri, format!("Post {url:?}"))
            }
            (None, Some(socket)) => {
                let path = cc.socket_path();
                let uri = with_query(&format!("http://localhost{path}"), &query)
                    .map_err(ClientSetupError::Url)?;
                let client =
                    Client::builder(TokioExecutor::new()).build(UnixConnector::new(socket));
                (
                    Transport::Unix(client),
                    uri,
                    format!("Post {path:?} on unix socket {}", socket.display()),
                )
            }
            (None, None) => {
                return Err(ClientSetupError::Url(
                    "set exactly one of url or socket".into(),
                ))
            }
        };
        let token = cc.bearer_token_file.clone().map(TokenFile::new);
        Ok(Self {
            transport,
            uri,
            target,
            timeout,
            token,
        })
    }

    /// POSTs `body` and returns the answer's body.
    pub async fn post(&self, body: Vec<u8>) -> Result<Bytes, CallError> {
        let call = self.post_inner(body);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                target: self.target.clone(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    async fn post_inner(&self, body: Vec<u8>) -> Result<Bytes, CallError> {
        let mut request = http::Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.transport_error(&e))?;
        if let Some(token) = &self.token {
            let value = token.header().await?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let response = match &self.transport {
            Transport::Tcp(client) => client.request(request).await,
            Transport::Unix(client) => client.request(request).await,
        }
        // hyper-util's own layer only says "client error (Connect)"; its source says what.
        .map_err(|e| self.transport_error(std::error::Error::source(&e).unwrap_or(&e)))?;
        let status = response.status();
        let collected = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await;
        let bytes = match collected {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(CallError::TooLarge {
                    target: self.target.clone(),
                })
            }
            Err(e) => return Err(self.transport_error(e.as_ref())),
        };
        // The client-go REST client kube-apiserver uses accepts 200..=206.
        if !(200..=206).contains(&status.as_u16()) {
            return Err(CallError::Status {
                target: self.target.clone(),
                status,
                body: body_excerpt(&bytes),
            });
        }
        Ok(bytes)
    }

    fn transport_error(&self, e: &(dyn std::error::Error + 'static)) -> CallError {
        CallError::Transport {
            target: self.target.clone(),
            detail: error_chain(e),
        }
    }
}

fn with_query(url: &str, query: &str) -> Result<http::Uri, String> {
    let uri = http::Uri::from_str(url).map_err(|e| format!("not a URL: {e}"))?;
    let mut parts = uri.into_parts();
    let path = parts
        .path_and_query
        .as_ref()
        .map(|p| p.path())
        .unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path };
    parts.path_and_query = Some(
        format!("{path}?{query}")
            .parse()
            .map_err(|e| format!("not a URL path: {e}"))?,
    );
    http::Uri::from_parts(parts).map_err(|e| format!("not a URL: {e}"))
}

/// `a: b: c`, skipping links that repeat the previous one's text.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn body_excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 256;
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!(": {}...", &text[..cut]),
        None => format!(": {text}"),
    }
}

/// A bearer token file, re-read when its identity, size or mtime changes (so rotated
/// tokens, including symlink swaps, are picked up without a restart).
struct TokenFile {
    path: PathBuf,
    cache: Mutex<Option<(FileStamp, HeaderValue)>>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl TokenFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache: Mutex::new(None),
        }
    }

    async fn header(&self) -> Result<HeaderValue, CallError> {
        let err = |message: String| CallError::Token {
            path: self.path.clone(),
            message,
        };
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| err(e.to_string()))?;
        let stamp = FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        };
        let mut cache = self.cache.lock().await;
        if let Some((cached, value)) = cache.as_ref() {
            if *cached == stamp {
                return Ok(value.clone());
            }
        }
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| err(e.to_string()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(err("the file is empty".into()));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| err("the token holds characters not allowed in an HTTP header".into()))?;
        value.set_sensitive(true);
        *cache = Some((stamp, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_carries_the_timeout() {
        assert_eq!(
            with_query("https://h:1/v", "timeout=5s")
                .unwrap()
                .to_string(),
            "https://h:1/v?timeout=5s"
        );
        assert_eq!(
            with_query("https://h", "timeout=5s").unwrap().to_string(),
            "https://h/?timeout=5s"
        );
    }

    #[test]
    fn excerpts_are_short_and_safe() {
        assert_eq!(body_excerpt(b""), "");
        assert_eq!(body_excerpt(b" oops \n"), ": oops");
        let long = "é".repeat(1000);
        let e = body_excerpt(long.as_bytes());
        assert!(
            e.ends_with("...") && e.chars().count() == 2 + 256 + 3,
            "{e}"
        );
        assert_eq!(body_excerpt(&[0xff, 0xfe]), ": \u{fffd}\u{fffd}");
    }
}
