//! `imageVerification:` — how the signature verifier reaches registries: extra CA
//! certificates, registries spoken to in plain HTTP, credentials from a Docker
//! `config.json`, and a timeout. The trust policies themselves are `policyDir` documents
//! (`kind: ImageVerificationPolicy`, parsed by `signature::trust`); this section only says
//! how to fetch what they ask for (docs/image-verification.md).
//!
//! The CA file and the Docker config are read here, when the config is loaded, so that a
//! missing file or a broken credential is a load error naming the file and not a refusal
//! at the first pull.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use super::images::valid_host_port;

/// The timeout when `timeoutSeconds` is not set: per registry request, connect and read.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const MAX_TIMEOUT_SECONDS: u64 = 300;

/// `imageVerification:` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawImageVerification {
    /// PEM file of CA certificates trusted for registries, in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `host[:port]` of registries spoken to in plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// A Docker `config.json` whose `auths` hold registry credentials.
    #[serde(default)]
    pub docker_config: Option<PathBuf>,
    /// Connect and read timeout of each registry request, 1..300; default 10.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// How long a verdict that admits an image is reused, in seconds; default 300.
    #[serde(default)]
    pub cache_allow_seconds: Option<u64>,
    /// How long a refusal (or an unreadable registry) is reused, in seconds; default 30:
    /// a kubelet's pull back-off asks again within it and costs no registry call.
    #[serde(default)]
    pub cache_deny_seconds: Option<u64>,
}

/// `imageVerification:` validated, its files read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVerificationConfig {
    /// `caFile` and the DER certificates in it.
    pub ca: Option<(PathBuf, Vec<Vec<u8>>)>,
    pub insecure_registries: Vec<String>,
    pub docker_config: Option<DockerConfig>,
    pub timeout: Duration,
    /// How long verdicts are reused: those that admit, and the others.
    pub cache_allow: Duration,
    pub cache_deny: Duration,
}

/// `cacheAllowSeconds` when unset.
pub const DEFAULT_CACHE_ALLOW_SECONDS: u64 = 300;
/// `cacheDenySeconds` when unset.
pub const DEFAULT_CACHE_DENY_SECONDS: u64 = 30;
const MAX_CACHE_SECONDS: u64 = 86_400;

impl Default for ImageVerificationConfig {
    fn default() -> Self {
        Self {
            ca: None,
            insecure_registries: Vec::new(),
            docker_config: None,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            cache_allow: Duration::from_secs(DEFAULT_CACHE_ALLOW_SECONDS),
            cache_deny: Duration::from_secs(DEFAULT_CACHE_DENY_SECONDS),
        }
    }
}

/// The credentials of a Docker `config.json`, by registry host (`docker.io` for Docker
/// Hub, whichever of its spellings the file uses).
#[derive(Clone, PartialEq, Eq)]
pub struct DockerConfig {
    pub path: PathBuf,
    pub auths: BTreeMap<String, Credentials>,
}

/// A user name and password for HTTP Basic authentication (and the token exchange that
/// registries start from it).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

// Passwords never reach a log line through `{:?}` of the config.
impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .field("registries", &self.auths.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

impl DockerConfig {
    /// The credentials for `registry` (`docker.io`, `localhost:5000`), if the file has any.
    pub fn credentials(&self, registry: &str) -> Option<&Credentials> {
        self.auths.get(&registry_key(registry))
    }
}

impl RawImageVerification {
    /// Checks the section and reads its files. The error is the field and what is wrong.
    pub fn typed(&self) -> Result<ImageVerificationConfig, (String, String)> {
        for (i, host) in self.insecure_registries.iter().enumerate() {
            if !valid_host_port(host) {
                return Err((
                    format!("imageVerification.insecureRegistries[{i}]"),
                    format!(
                        "{host:?} is not a registry host[:port] such as localhost:5000 \
                         (no scheme, no path)"
                    ),
                ));
            }
        }
        let timeout = self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&timeout) {
            return Err((
                "imageVerification.timeoutSeconds".into(),
                format!("{timeout} is out of range; use 1 to {MAX_TIMEOUT_SECONDS}"),
            ));
        }
        let cache = |v: Option<u64>, default: u64, field: &str| {
            let v = v.unwrap_or(default);
            if v > MAX_CACHE_SECONDS {
                return Err((
                    format!("imageVerification.{field}"),
                    format!("{v} is out of range; use 0 (no reuse) to {MAX_CACHE_SECONDS}"),
                ));
            }
            Ok(Duration::from_secs(v))
        };
        let cache_allow = cache(
            self.cache_allow_seconds,
            DEFAULT_CACHE_ALLOW_SECONDS,
            "cacheAllowSeconds",
        )?;
        let cache_deny = cache(
            self.cache_deny_seconds,
            DEFAULT_CACHE_DENY_SECONDS,
            "cacheDenySeconds",
        )?;
        let ca = match &self.ca_file {
            Some(path) => Some((path.clone(), read_ca_file(path)?)),
            None => None,
        };
        let docker_config = match &self.docker_config {
            Some(path) => Some(read_docker_config(path)?),
            None => None,
        };
        Ok(ImageVerificationConfig {
            ca,
            insecure_registries: self.insecure_registries.clone(),
            docker_config,
            timeout: Duration::from_secs(timeout),
            cache_allow,
            cache_deny,
        })
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, (String, String)> {
    let field = || "imageVerification.caFile".to_string();
    let pem = std::fs::read(path).map_err(|e| (field(), format!("{}: {e}", path.display())))?;
    let mut certs = Vec::new();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| (field(), format!("{}: {e}", path.display())))?;
        certs.push(cert.to_vec());
    }
    if certs.is_empty() {
        return Err((
            field(),
            format!(
                "{}: holds no PEM CERTIFICATE block; give the CA certificates of the registries",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// The parts of Docker's `config.json` we read; its other keys (`psFormat`, `proxies`,
/// ...) are Docker's business and left alone.
#[derive(Deserialize)]
struct RawDockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// Reads `auths` of a Docker `config.json`. What it cannot use is an error, not a silent
/// anonymous pull: credential helpers (we run no programs) and identity tokens.
pub fn read_docker_config(path: &Path) -> Result<DockerConfig, (String, String)> {
    let field = || "imageVerification.dockerConfig".to_string();
    let at = |m: String| (field(), format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let raw: RawDockerConfig = serde_json::from_str(&text).map_err(|e| at(e.to_string()))?;
    if raw.creds_store.is_some() || !raw.cred_helpers.is_empty() {
        return Err(at(
            "credsStore and credHelpers are not supported (Portcullis runs no \
             credential helper); put the credentials in auths.<registry>.auth"
                .into(),
        ));
    }
    let mut auths = BTreeMap::new();
    for (host, entry) in raw.auths {
        let credentials = credentials(&entry).map_err(|m| at(format!("auths.{host:?}: {m}")))?;
        auths.insert(registry_key(&host), credentials);
    }
    Ok(DockerConfig {
        path: path.to_path_buf(),
        auths,
    })
}

fn credentials(entry: &RawAuth) -> Result<Credentials, String> {
    if let Some(auth) = &entry.auth {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("auth is not base64: {e}"))?;
        let text = String::from_utf8(decoded).map_err(|_| "auth is not UTF-8 text".to_string())?;
        let Some((username, password)) = text.split_once(':') else {
            return Err("auth must be base64 of user:password".into());
        };
        return Ok(Credentials {
            username: username.into(),
            password: password.into(),
        });
    }
    match (&entry.username, &entry.password, &entry.identity_token) {
        (Some(username), Some(password), _) => Ok(Credentials {
            username: username.clone(),
            password: password.clone(),
        }),
        (_, _, Some(_)) => Err("identitytoken is not supported; use auth (base64 of \
                                user:password)"
            .into()),
        _ => Err("has no credentials; set auth (base64 of user:password)".into()),
    }
}

/// The key a registry is looked up by: the host[:port] of a Docker config key
/// (`https://index.docker.io/v1/`, `http://host:5000`, `host:5000`), with Docker Hub's
/// spellings folded into `docker.io` as image references name it.
pub fn registry_key(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme.split('/').next().unwrap_or_default();
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn docker_config_auths_by_registry_with_docker_hub_folded() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}},
                 "localhost:5000": {{"username": "u", "password": "p"}}}},
                "psFormat": "table"}}"#,
            b64("hub:secret:with:colons")
        );
        let path = write(dir.path(), "config.json", &text);
        let config = read_docker_config(&path).unwrap();
        let hub = config.credentials("docker.io").unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret:with:colons")
        );
        assert_eq!(config.credentials("localhost:5000").unwrap().password, "p");
        assert!(config.credentials("other.example").is_none());
        let shown = format!("{config:?} {hub:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn docker_config_refuses_what_it_cannot_use() {
        let dir = tempfile::tempdir().unwrap();
        for (text, wanted) in [
            (r#"{"credsStore": "desktop"}"#, "credsStore and credHelpers"),
            (
                r#"{"auths": {"r.example": {"auth": "%%%"}}}"#,
                "auth is not base64",
            ),
            (
                &format!(
                    r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
                    b64("nocolon")
                ),
                "base64 of user:password",
            ),
            (
                r#"{"auths": {"r.example": {"identitytoken": "t"}}}"#,
                "identitytoken is not supported",
            ),
            (r#"{"auths": {"r.example": {}}}"#, "has no credentials"),
            ("not json", "expected"),
        ] {
            let path = write(dir.path(), "c.json", text);
            let (field, message) = read_docker_config(&path).unwrap_err();
            assert_eq!(field, "imageVerification.dockerConfig");
            assert!(message.contains(wanted), "{text}: {message}");
            assert!(message.contains("c.json"), "{message}");
        }
    }

    #[test]
    fn section_is_validated_and_files_read() {
        let dir = tempfile::tempdir().unwrap();
        let raw = RawImageVerification::default();
        let typed = raw.typed().unwrap();
        assert_eq!(typed.timeout, Duration::from_secs(10));
        let bad = |raw: RawImageVerification| raw.typed().unwrap_err();
        let (field, message) = bad(RawImageVerification {
            insecure_registries: vec!["http://localhost:5000".into()],
            ..Default::default()
        });
        assert_eq!(field, "imageVerification.insecureRegistries[0]");
        assert!(message.contains("no scheme"), "{message}");
        let (field, _) = bad(RawImageVerification {
            timeout_seconds: Some(0),
            ..Default::default()
        });
        assert_eq!(field, "imageVerification.timeoutSeconds");
        let not_pem = write(dir.path(), "ca.pem", "hello");
        let (field, message) = bad(RawImageVerification {
            ca_file: Some(not_pem),
            ..Default::default()
        });
        assert_eq!(field, "imageVerification.caFile");
        assert!(message.contains("no PEM CERTIFICATE"), "{message}");
        let (_, message) = bad(RawImageVerification {
            ca_file: Some(dir.path().join("missing.pem")),
            ..Default::default()
        });
        assert!(message.contains("missing.pem"), "{message}");
    }

    #[test]
    fn a_ca_file_is_read_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["registry.test".into()]).unwrap();
        let path = write(dir.path(), "ca.pem", &ca.cert.pem());
        let typed = RawImageVerification {
            ca_file: Some(path.clone()),
            insecure_registries: vec!["localhost:5000".into(), "[::1]:5000".into()],
            timeout_seconds: Some(3),
            ..Default::default()
        }
        .typed()
        .unwrap();
        assert_eq!(typed.ca, Some((path, vec![ca.cert.der().to_vec()])));
        assert_eq!(typed.timeout, Duration::from_secs(3));
    }

    #[test]
    fn registry_keys() {
        assert_eq!(registry_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_key("registry-1.docker.io"), "docker.io");
        assert_eq!(registry_key("http://Localhost:5000/"), "localhost:5000");
        assert_eq!(registry_key("ghcr.io"), "ghcr.io");
    }
}
