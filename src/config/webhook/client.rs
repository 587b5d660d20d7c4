//! `clientConfig`: where a webhook is called, and with which credentials.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use base64::Engine as _;
use serde::Deserialize;

use super::{invalid, InvalidWebhook};

/// `clientConfig`: upstream `WebhookClientConfig` plus our transport and credentials.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookClientConfig {
    #[serde(default)]
    pub url: Option<String>,
    /// Base64 of PEM CA certificates; when set, the only roots trusted for `url`.
    #[serde(default)]
    pub ca_bundle: Option<String>,
    /// Accepted so pasted configurations parse; always rejected by validation.
    #[serde(default)]
    pub service: Option<ServiceReference>,
    /// Ours: a unix socket that speaks plain HTTP.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Ours: HTTP path on `socket` (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Ours: PEM client certificate (chain) for mutual TLS; needs `clientKeyFile`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Ours: file holding a bearer token, re-read when it changes.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
}

impl WebhookClientConfig {
    /// HTTP path used on `socket`.
    pub fn socket_path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

/// Upstream `ServiceReference`, accepted only to be rejected with a clear message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceReference {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
}

impl WebhookClientConfig {
    pub(super) fn validate(&self) -> Result<(), InvalidWebhook> {
        if self.service.is_some() {
            return Err(invalid(
                "clientConfig.service",
                "no API server here: use url or socket",
            ));
        }
        match (&self.url, &self.socket) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "clientConfig",
                    "set exactly one of url or socket, not both",
                ))
            }
            (None, None) => {
                return Err(invalid("clientConfig", "set exactly one of url or socket"))
            }
            (Some(url), None) => {
                validate_url(url).map_err(|m| invalid("clientConfig.url", m))?;
                if self.path.is_some() {
                    return Err(invalid(
                        "clientConfig.path",
                        "only used with socket; put the path in url",
                    ));
                }
            }
            (None, Some(socket)) => {
                if socket.as_os_str().is_empty() {
                    return Err(invalid("clientConfig.socket", "must not be empty"));
                }
                for (field, set) in [
                    ("caBundle", self.ca_bundle.is_some()),
                    ("clientCertFile", self.client_cert_file.is_some()),
                    ("clientKeyFile", self.client_key_file.is_some()),
                ] {
                    if set {
                        return Err(invalid(
                            format!("clientConfig.{field}"),
                            "TLS settings apply to an https url, not to socket (plain HTTP)",
                        ));
                    }
                }
                let path = self.socket_path();
                if !path.starts_with('/') || http::uri::PathAndQuery::from_str(path).is_err() {
                    return Err(invalid(
                        "clientConfig.path",
                        format!("must be an HTTP path starting with '/', got {path:?}"),
                    ));
                }
            }
        }
        if let Some(bundle) = &self.ca_bundle {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(bundle.trim())
                .map_err(|e| invalid("clientConfig.caBundle", format!("not base64: {e}")))?;
            let certs = parse_pem_certs(&pem)
                .map_err(|e| invalid("clientConfig.caBundle", format!("not PEM: {e}")))?;
            if certs == 0 {
                return Err(invalid(
                    "clientConfig.caBundle",
                    "holds no PEM CERTIFICATE block",
                ));
            }
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err(invalid(
                "clientConfig",
                "clientCertFile and clientKeyFile must be set together",
            ));
        }
        Ok(())
    }
}

fn parse_pem_certs(pem: &[u8]) -> Result<usize, std::io::Error> {
    let mut reader = pem;
    let mut n = 0;
    for cert in rustls_pemfile::certs(&mut reader) {
        cert?;
        n += 1;
    }
    Ok(n)
}

/// Upstream rules (`ValidateWebhookURL`) plus our loopback exception for `http`.
fn validate_url(url: &str) -> Result<(), String> {
    if url.contains('#') {
        return Err("fragments are not permitted in the URL".into());
    }
    let uri = http::Uri::from_str(url).map_err(|e| format!("not a URL: {e}"))?;
    if uri.query().is_some() {
        return Err("query parameters are not permitted in the URL".into());
    }
    let Some(authority) = uri.authority() else {
        return Err("host must be specified".into());
    };
    if authority.as_str().contains('@') {
        return Err("user information is not permitted in the URL".into());
    }
    let host = authority.host();
    if host.is_empty() {
        return Err("host must be specified".into());
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "'https' is required; plain 'http' is allowed only to a loopback host \
             (127.0.0.1, ::1, localhost), not {host:?}"
        )),
        _ => Err("'https' is the only allowed URL scheme (and 'http' to a loopback host)".into()),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}
