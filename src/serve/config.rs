//! `serve:` — the webhook server's listeners.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// `serve:` settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServeConfig {
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    /// Largest request body accepted, in bytes (kube-apiserver sends at most 3 MiB objects).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            max_request_bytes: default_max_request_bytes(),
        }
    }
}

fn default_max_request_bytes() -> usize {
    8 << 20
}

/// One listener: a TCP `address` (with `tls`, or plain HTTP) or a unix `socket`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerConfig {
    /// `HOST:PORT`.
    #[serde(default)]
    pub address: Option<SocketAddr>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// A unix socket path.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// `MODE[:USER:GROUP]` of the socket (default `0660`).
    #[serde(default)]
    pub mode: Option<String>,
}

/// Certificate files, re-read when they change on disk.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed (mTLS).
    #[serde(default, rename = "clientCAFile")]
    pub client_ca_file: Option<PathBuf>,
}

impl ListenerConfig {
    /// What is wrong with this listener, if anything.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.address, &self.socket) {
            (Some(_), Some(_)) => Err("set either address or socket, not both".into()),
            (None, None) => Err("set address (HOST:PORT) or socket (a path)".into()),
            (None, Some(_)) if self.tls.is_some() => Err(
                "tls applies to address listeners only; a unix socket is guarded by its mode"
                    .into(),
            ),
            (Some(_), None) if self.mode.is_some() => {
                Err("mode applies to socket listeners only".into())
            }
            (None, Some(_)) => match &self.mode {
                Some(mode) => crate::net::listener::ListenMode::parse(mode)
                    .map(|_| ())
                    .map_err(|e| format!("mode: {e}")),
                None => Ok(()),
            },
            (Some(_), None) => Ok(()),
        }
    }
}
