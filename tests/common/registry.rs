//! A real OCI registry for the image tests (issue #13): Debian's `docker-registry`
//! (distribution 2.8) on `127.0.0.1:<free port>`, with its own config, storage root and
//! log in a temp dir, no auth, deletes enabled; plain HTTP (an insecure registry, as
//! containerd's `--plain-http` and skopeo's `--dest-tls-verify=false` reach it) or TLS with a
//! CA and server certificate (IP SAN 127.0.0.1, DNS localhost) made at test time by the
//! `openssl` CLI. Images are pushed with `skopeo copy`, which keeps the local busybox image's
//! digests (`--preserve-digests`): the registry serves the very manifest `World` imports.
//!
//! Raw registry API calls (`manifest`, `tags`, `put_blob`, `put_manifest`, `request`) go
//! through hyper with hyper-rustls (the crate's own dependencies; no curl, no new crate),
//! trusting only the test CA over TLS. Everything stays on loopback.
//!
//! ctr 1.6 talks plain HTTP to any loopback registry (`localhost`, `127.0.0.0/8`) unless a
//! `--hosts-dir` names it (its `--tlscacert` alone still ends in "400 Bad Request" from the
//! TLS port), and ignores a `hosts.toml` without a `[host."..."]` table; so a TLS registry
//! writes `hosts.d/127.0.0.1:PORT/hosts.toml` (https, pull and resolve, no CA) and
//! [`Registry::ctr_pull_flags`] gives `--hosts-dir` with `--tlscacert CA`: trust in the
//! server still comes from the CA flag alone.
//!
//! The registry runs in its own process group, killed with it when the `Registry` drops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{image_tar, needs, text, Proc, IMAGE};

mod pki;
use pki::make_pki;

/// How the registry is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP: an insecure registry.
    Http,
    /// HTTPS with a test CA (see [`Registry::ca_pem`]).
    Tls,
}

/// The media types [`Registry::manifest`] accepts, as a client pulling any image does.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// A registry API response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A private `docker-registry serve` (killed, with its process group, on drop; its
/// directory removed after).
pub struct Registry {
    endpoint: Endpoint,
    /// The test CA (TLS only): PEM, and a directory holding it as `ca.crt` for skopeo.
    ca: Option<(PathBuf, PathBuf)>,
    /// The user and password of an `htpasswd`-protected registry.
    creds: Option<(String, String)>,
    proc: Proc,
    dir: tempfile::TempDir,
}

/// Where the registry listens and how to talk to it.
struct Endpoint {
    transport: Transport,
    port: u16,
    tls: rustls::ClientConfig,
    /// `Authorization` sent with every request of the harness, if the registry wants one.
    basic: Option<String>,
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until `GET /v2/` answers 200.
    pub fn start(transport: Transport) -> Self {
        Self::start_with(transport, None)
    }

    /// [`Registry::start`] with HTTP Basic authentication (distribution's `htpasswd`
    /// auth, a bcrypt entry for `user`): every call must carry the credentials.
    pub fn start_with_auth(transport: Transport, user: &str, password: &str) -> Self {
        Self::start_with(transport, Some((user.to_owned(), password.to_owned())))
    }

    fn start_with(transport: Transport, creds: Option<(String, String)>) -> Self {
        needs(&["docker-registry", "skopeo", "openssl"]);
        if creds.is_some() {
            needs(&["python3-bcrypt"]);
        }
        let dir = tempfile::Builder::new()
            .prefix("portcullis-registry-")
            .tempdir()
            .unwrap();
        let (ca, server) = match transport {
            Transport::Http => (None, None),
            Transport::Tls => {
                let pki = make_pki(dir.path());
                (Some((pki.ca, pki.cert_dir)), Some((pki.cert, pki.key)))
            }
        };
        let tls = client_tls(ca.as_ref().map(|(pem, _)| pem.as_path()));
        let htpasswd = creds.as_ref().map(|(user, password)| {
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, format!("{user}:{}\n", bcrypt(password))).unwrap();
            path
        });
        let basic = creds.as_ref().map(|(user, password)| {
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        // A free port may be taken between our probe and the registry's bind: try again.
        for attempt in 0..3 {
            let port = super::free_port();
            let config = write_config(dir.path(), port, server.as_ref(), htpasswd.as_deref());
            let mut proc = spawn(&config, dir.path().join(format!("registry-{attempt}.log")));
            let endpoint = Endpoint {
                transport,
                port,
                tls: tls.clone(),
                basic: basic.clone(),
            };
            match endpoint.wait_ready(&mut proc) {
                Ok(()) => {
                    if transport == Transport::Tls {
                        write_hosts_toml(&dir.path().join("hosts.d"), &endpoint.host());
                    }
                    return Self {
                        endpoint,
                        ca,
                        creds,
                        proc,
                        dir,
                    };
                }
                Err(e) if e.contains("address already in use") && attempt < 2 => {
                    kill_group(&mut proc)
                }
                Err(e) => panic!("docker-registry did not start: {e}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub fn transport(&self) -> Transport {
        self.endpoint.transport
    }

    /// `127.0.0.1:PORT`, the registry host of image references.
    pub fn host(&self) -> String {
        self.endpoint.host()
    }

    /// `127.0.0.1:PORT/REPO:TAG` for `repo_tag` (or `REPO@DIGEST`).
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.endpoint.base_url()
    }

    /// The test CA's PEM (the registry's server certificate chains to it); `None` over HTTP.
    pub fn ca_pem(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(pem, _)| pem.as_path())
    }

    /// A containerd hosts directory (`--hosts-dir`, CRI's `config_path`) whose
    /// `hosts.toml` for this registry says HTTPS (pull, resolve) and names no CA; `None`
    /// over HTTP. See the module's note on ctr 1.6 and loopback.
    pub fn hosts_dir(&self) -> Option<PathBuf> {
        self.ca.as_ref().map(|_| self.dir().join("hosts.d"))
    }

    /// The flags `ctr images pull` needs to reach this registry: `--plain-http`, or
    /// `--hosts-dir DIR --tlscacert CA` (ctr 1.6's names).
    pub fn ctr_pull_flags(&self) -> Vec<String> {
        match (self.hosts_dir(), self.ca_pem()) {
            (Some(hosts), Some(ca)) => vec![
                "--hosts-dir".into(),
                hosts.display().to_string(),
                "--tlscacert".into(),
                ca.display().to_string(),
            ],
            _ => vec!["--plain-http".into()],
        }
    }

    /// The directory the registry lives in (config, storage, log, PKI).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// Pushes the local busybox image (the one `World` imports as [`IMAGE`]) to
    /// `REPO:TAG` with `skopeo copy`, digests preserved; returns the manifest digest
    /// (`sha256:...`) the registry stored it under.
    pub fn push_busybox(&self, repo_tag: &str) -> String {
        let tag = IMAGE.rsplit_once(':').unwrap().1;
        let source = format!("oci-archive:{}:{tag}", image_tar().display());
        self.skopeo_copy(&source, repo_tag)
    }

    /// Pushes a variant of the busybox image whose config's `Cmd` is `["echo", WORD]`: the
    /// same layer, a digest of its own per `word`, and `ctr run` with no command prints
    /// `word`. Returns the manifest digest.
    pub fn push_busybox_variant(&self, repo_tag: &str, word: &str) -> String {
        self.push_built(repo_tag, word, None)
    }

    /// [`Registry::push_busybox_variant`] with a layer of its own (`/etc/portcullis-mark`
    /// holds `word`): an image whose filesystem differs from every other's.
    pub fn push_busybox_marked(&self, repo_tag: &str, word: &str) -> String {
        self.push_built(repo_tag, word, Some(word))
    }

    fn push_built(&self, repo_tag: &str, word: &str, mark: Option<&str>) -> String {
        let tar = self.dir().join(format!("{}.tar", super::unique("variant")));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
        let mut cmd = Command::new(script);
        if let Some(mark) = mark {
            cmd.env("IMAGE_MARK", mark);
        }
        let out = cmd
            .env("IMAGE_CMD", serde_json::json!(["echo", word]).to_string())
            .arg(&tar)
            .arg("portcullis.test/variant:v")
            .output()
            .unwrap();
        assert!(out.status.success(), "building the variant: {}", text(&out));
        self.skopeo_copy(&format!("oci-archive:{}:v", tar.display()), repo_tag)
    }

    /// `skopeo copy SOURCE docker://HOST/REPO:TAG` (any transport skopeo reads, e.g.
    /// `oci-archive:PATH:REF`), digests preserved; returns the pushed manifest's digest.
    pub fn skopeo_copy(&self, source: &str, repo_tag: &str) -> String {
        let digestfile = self.dir().join(format!("digest-{}", super::unique("push")));
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "--preserve-digests"]);
        match &self.creds {
            None => cmd.arg("--dest-no-creds"),
            Some((user, password)) => cmd.arg(format!("--dest-creds={user}:{password}")),
        };
        cmd.arg("--digestfile")
            .arg(&digestfile)
            // skopeo unpacks archives in TMPDIR: keep that in the registry's directory.
            .env("TMPDIR", self.dir());
        match &self.ca {
            None => cmd.arg("--dest-tls-verify=false"),
            Some((_, cert_dir)) => cmd.arg("--dest-cert-dir").arg(cert_dir),
        };
        let out = cmd
            .arg(source)
            .arg(format!("docker://{}", self.reference(repo_tag)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {source} to {repo_tag}: {}\n--- registry log ---\n{}",
            text(&out),
            self.log()
        );
        let digest = std::fs::read_to_string(&digestfile).unwrap();
        assert!(
            digest.starts_with("sha256:"),
            "skopeo's digest file: {digest:?}"
        );
        digest.trim().to_owned()
    }

    /// `GET /v2/REPO/manifests/REFERENCE` (a tag or digest) accepting OCI and Docker
    /// manifests and indexes: the exact bytes and the `Content-Type`. Panics unless 200.
    pub fn manifest(&self, repo: &str, reference: &str) -> (Vec<u8>, String) {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let r = self.request("GET", &path, &[("Accept", MANIFEST_ACCEPT)], &[]);
        assert_eq!(
            r.status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let media_type = r.header("content-type").unwrap_or_default().to_owned();
        (r.body, media_type)
    }

    /// The tags of `repo` (`GET /v2/REPO/tags/list`); empty when the repository is unknown.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let path = format!("/v2/{repo}/tags/list");
        let r = self.request("GET", &path, &[], &[]);
        if r.status == 404 {
            return Vec::new();
        }
        assert_eq!(
            r.status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let list: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        list["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Uploads `data` as a blob of `repo` (POST then PUT, monolithic); returns its digest.
    pub fn put_blob(&self, repo: &str, data: &[u8]) -> String {
        let path = format!("/v2/{repo}/blobs/uploads/");
        let started = self.request("POST", &path, &[], &[]);
        assert_eq!(started.status, 202, "POST {path}: {started:?}");
        let location = started
            .header("location")
            .expect("upload Location")
            .to_owned();
        let digest = sha256_digest(data);
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let content_type = [("Content-Type", "application/octet-stream")];
        let done = self.request("PUT", &put, &content_type, data);
        assert_eq!(
            done.status,
            201,
            "PUT {put}: {}",
            String::from_utf8_lossy(&done.body)
        );
        digest
    }

    /// `PUT /v2/REPO/manifests/REFERENCE` with `manifest` as `media_type`; returns the
    /// digest, checked against the registry's `Docker-Content-Digest`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &[u8],
        media_type: &str,
    ) -> String {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let r = self.request("PUT", &path, &[("Content-Type", media_type)], manifest);
        assert_eq!(
            r.status,
            201,
            "PUT {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let digest = sha256_digest(manifest);
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
        digest
    }

    /// One request to the registry: `path` (`/v2/...`) or an absolute URL it gave (an
    /// upload `Location`). Panics, with the registry's log, if it cannot be made.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.endpoint
            .request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{e}\n--- registry log ---\n{}", self.log()))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        kill_group(&mut self.proc);
    }
}

/// `docker-registry serve CONFIG` in a process group of its own, logging to `log`.
fn spawn(config: &Path, log: PathBuf) -> Proc {
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(config);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // distribution reads REGISTRY_* variables as config overrides: none of the caller's.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(name);
        }
    }
    Proc::spawn(&mut cmd, log)
}

/// Kills `proc`'s process group (it leads one) and reaps it.
fn kill_group(proc: &mut Proc) {
    if let Some(pid) = proc.id() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .output();
    }
    proc.stop();
}

impl Endpoint {
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn base_url(&self) -> String {
        let scheme = match self.transport {
            Transport::Http => "http",
            Transport::Tls => "https",
        };
        format!("{scheme}://{}", self.host())
    }

    /// Polls `GET /v2/` for 30 s; the error carries the registry's log.
    fn wait_ready(&self, proc: &mut Proc) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if proc.exited() {
                return Err(format!("it exited; log:\n{}", proc.log_text()));
            }
            match self.request("GET", "/v2/", &[], &[]) {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => last = format!("GET /v2/ answered {}", r.status),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not ready in 30 s ({last}); log:\n{}",
            proc.log_text()
        ))
    }

    /// One request: `path` (`/v2/...`) or an absolute URL.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base_url())
        } else {
            path.to_owned()
        };
        let mut req = hyper::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(basic) = self.basic.as_ref().filter(|_| {
            !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        }) {
            req = req.header("Authorization", basic);
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let exchange = async {
            let response = client.request(req).await.map_err(|e| format!("{e:?}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_bytes().to_vec(),
            })
        };
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), exchange).await })
            .map_err(|_| format!("{method} {url}: no answer in 30 s"))?
            .map_err(|e| format!("{method} {url}: {e}"))
    }
}

/// A bcrypt hash of `password`, as distribution's `htpasswd` auth reads it (glibc's
/// crypt through Python; no bcrypt crate in the tests).
fn bcrypt(password: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            password,
        ])
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(hash.starts_with("$2"), "no bcrypt hash: {}", text(&out));
    hash
}

/// `sha256:HEX` of `data`, the OCI digest.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Writes `dir/config-PORT.yml`: listen on 127.0.0.1:PORT (TLS with `server` = (cert,
/// key) when given), store under `dir/storage`, deletes enabled, HTTP Basic auth against
/// `htpasswd` when given, else none.
fn write_config(
    dir: &Path,
    port: u16,
    server: Option<&(PathBuf, PathBuf)>,
    htpasswd: Option<&Path>,
) -> PathBuf {
    let auth = htpasswd
        .map(|path| {
            format!(
                "auth:\n  htpasswd:\n    realm: portcullis-test\n    path: {}\n",
                path.display()
            )
        })
        .unwrap_or_default();
    let tls = server
        .map(|(cert, key)| {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            )
        })
        .unwrap_or_default();
    let config = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: portcullis-test-registry\n{tls}{auth}",
        storage = dir.join("storage").display(),
    );
    let path = dir.join(format!("config-{port}.yml"));
    std::fs::write(&path, config).unwrap();
    path
}

/// `hosts/HOST/hosts.toml`: containerd reaches HOST over HTTPS, for pulls and resolves.
fn write_hosts_toml(hosts: &Path, host: &str) {
    let dir = hosts.join(host);
    std::fs::create_dir_all(&dir).unwrap();
    let toml = format!(
        "server = \"https://{host}\"\n\n[host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    );
    std::fs::write(dir.join("hosts.toml"), toml).unwrap();
}

/// A rustls client config trusting only `ca` (no roots at all over plain HTTP).
fn client_tls(ca: Option<&Path>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}
