//! `serve:` — the webhook server's listeners.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::listen::ListenMode;

/// `serve:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub listeners: Vec<ListenerConfig>,
    /// Largest request body accepted, in bytes (kube-apiserver sends at most 3 MiB objects).
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// `HOST:PORT`.
    pub address: Option<SocketAddr>,
    pub tls: Option<TlsConfig>,
    /// A unix socket path.
    pub socket: Option<PathBuf>,
    /// `MODE[:USER:GROUP]` of the socket (default `0660`).
    pub mode: Option<ListenMode>,
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

/// `serve:` as written: [`ServeConfig`] with listener modes still strings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawServeConfig {
    #[serde(default)]
    pub listeners: Vec<RawListenerConfig>,
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

impl Default for RawServeConfig {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            max_request_bytes: default_max_request_bytes(),
        }
    }
}

/// `serve.listeners[]` as written.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawListenerConfig {
    #[serde(default)]
    pub address: Option<SocketAddr>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub socket: Option<PathBuf>,
    #[serde(default)]
    pub mode: Option<String>,
}

impl RawServeConfig {
    /// The typed section, or the index of the first unusable listener and what is wrong
    /// with it.
    pub fn typed(self) -> Result<ServeConfig, (usize, String)> {
        let listeners = self
            .listeners
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.typed().map_err(|e| (i, e)))
            .collect::<Result<_, _>>()?;
        Ok(ServeConfig {
            listeners,
            max_request_bytes: self.max_request_bytes,
        })
    }
}

impl RawListenerConfig {
    /// The typed listener, or what is wrong with it.
    pub fn typed(self) -> Result<ListenerConfig, String> {
        match (&self.address, &self.socket) {
            (Some(_), Some(_)) => return Err("set either address or socket, not both".into()),
            (None, None) => return Err("set address (HOST:PORT) or socket (a path)".into()),
            (None, Some(_)) if self.tls.is_some() => {
                return Err(
                    "tls applies to address listeners only; a unix socket is guarded by its mode"
                        .into(),
                )
            }
            (Some(_), None) if self.mode.is_some() => {
                return Err("mode applies to socket listeners only".into())
            }
            _ => {}
        }
        let mode = match &self.mode {
            Some(mode) => Some(ListenMode::parse(mode).map_err(|e| format!("mode: {e}"))?),
            None => None,
        };
        Ok(ListenerConfig {
            address: self.address,
            tls: self.tls,
            socket: self.socket,
            mode,
        })
    }
}
