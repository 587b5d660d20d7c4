//! Real handshakes over loopback: tokio-rustls client → [`accept`].

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::test_pki::{replace, Ca, Leaf};
use super::*;

/// Longer than the check interval.
const AFTER_CHECK: Duration = Duration::from_millis(1100);

/// `dir/tls.crt`, `dir/tls.key` (and `dir/ca.crt` for mTLS) holding `leaf`.
fn write_files(dir: &Path, leaf: &Leaf, client_ca: Option<&Ca>) -> TlsConfig {
    std::fs::write(dir.join("tls.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &leaf.key_pem).unwrap();
    let client_ca_file = client_ca.map(|ca| {
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        dir.join("ca.crt")
    });
    TlsConfig {
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
        client_ca_file,
    }
}

fn client_config(trust: &Ca, alpn: &[&str], identity: Option<&Leaf>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(trust.der()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => {
            let chain = vec![leaf.der.clone()];
            let key = rustls_pemfile::private_key(&mut leaf.key_pem.as_bytes())
                .unwrap()
                .unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config
}

/// What each side got from one handshake.
struct Outcome {
    server: Result<(Protocol, Option<UserInfo>), String>,
    /// The server's leaf certificate.
    client: Result<CertificateDer<'static>, String>,
}

async fn handshake(server: &Arc<ServerConfig>, client: ClientConfig) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server.clone());
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(&acceptor, tcp)
            .await
            .map(|accepted| (accepted.protocol, accepted.user))
            .map_err(|e| e.to_string())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = TlsConnector::from(Arc::new(client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map(|tls| tls.get_ref().1.peer_certificates().unwrap()[0].clone())
        .map_err(|e| e.to_string());
    Outcome {
        server: server_side.await.unwrap(),
        client,
    }
}

/// The leaf the server presents now.
async fn served(server: &Arc<ServerConfig>, ca: &Ca) -> CertificateDer<'static> {
    handshake(server, client_config(ca, &["h2"], None))
        .await
        .client
        .expect("handshake succeeds")
}

/// Log lines written while the guard lives (this thread, so current-thread tests only).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn alpn_chooses_h2_or_http1() {
    let ca = Ca::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let server = server_config(&write_files(dir.path(), &ca.server("server"), None)).unwrap();
    for (offered, expected) in [
        (&["h2", "http/1.1"][..], Protocol::Http2),
        (&["h2"][..], Protocol::Http2),
        (&["http/1.1"][..], Protocol::Http1),
        (&[][..], Protocol::Http1),
    ] {
        let outcome = handshake(&server, client_config(&ca, offered, None)).await;
        assert_eq!(outcome.server, Ok((expected, None)), "ALPN {offered:?}");
        outcome.client.unwrap();
    }
}

#[tokio::test]
async fn unknown_alpn_protocol_is_refused() {
    let ca = Ca::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let server = server_config(&write_files(dir.path(), &ca.server("server"), None)).unwrap();
    let outcome = handshake(&server, client_config(&ca, &["spdy/3"], None)).await;
    assert!(outcome.server.is_err());
}

#[tokio::test]
async fn rotation_follows_replaced_files() {
    let ca = Ca::new("ca");
    let (a, b) = (ca.server("A"), ca.server("B"));
    let dir = tempfile::tempdir().unwrap();
    let tls = write_files(dir.path(), &a, None);
    let server = server_config(&tls).unwrap();
    assert_eq!(served(&server, &ca).await, a.der);

    replace(&tls.cert_file, &b.cert_pem);
    replace(&tls.key_file, &b.key_pem);
    tokio::time::sleep(AFTER_CHECK).await;
    assert_eq!(served(&server, &ca).await, b.der);
}

#[tokio::test]
async fn rotation_follows_a_kubelet_symlink_swap() {
    let ca = Ca::new("ca");
    let (a, b) = (ca.server("A"), ca.server("B"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let version = |name: &str, leaf: &Leaf| {
        std::fs::create_dir(d.join(name)).unwrap();
        std::fs::write(d.join(name).join("tls.crt"), &leaf.cert_pem).unwrap();
        std::fs::write(d.join(name).join("tls.key"), &leaf.key_pem).unwrap();
    };
    version("..v1", &a);
    std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/tls.crt", d.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", d.join("tls.key")).unwrap();
    let tls = TlsConfig {
        cert_file: d.join("tls.crt"),
        key_file: d.join("tls.key"),
        client_ca_file: None,
    };
    let server = server_config(&tls).unwrap();
    assert_eq!(served(&server, &ca).await, a.der);

    version("..v2", &b);
    std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    tokio::time::sleep(AFTER_CHECK).await;
    assert_eq!(served(&server, &ca).await, b.der);
}

#[tokio::test]
async fn broken_rotation_keeps_the_previous_certificate() {
    let (logs, _guard) = capture_logs();
    let ca = Ca::new("ca");
    let (a, b) = (ca.server("A"), ca.server("B"));
    let dir = tempfile::tempdir().unwrap();
    let tls = write_files(dir.path(), &a, None);
    let server = server_config(&tls).unwrap();
    assert_eq!(served(&server, &ca).await, a.der);

    // The new certificate has arrived, its key not yet.
    replace(&tls.cert_file, &b.cert_pem);
    tokio::time::sleep(AFTER_CHECK).await;
    assert_eq!(served(&server, &ca).await, a.der);
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains("private key does not match the certificate in")
            && logged.contains(&tls.key_file.display().to_string()),
        "{logged}"
    );

    // Half written.
    let half = &b.cert_pem[..b.cert_pem.len() / 2];
    replace(&tls.key_file, &b.key_pem);
    replace(&tls.cert_file, half);
    tokio::time::sleep(AFTER_CHECK).await;
    assert_eq!(served(&server, &ca).await, a.der);

    // Completed: the pair loads.
    replace(&tls.cert_file, &b.cert_pem);
    tokio::time::sleep(AFTER_CHECK).await;
    // (Not asserting the info line: tracing caches a callsite's interest process-wide, and
    // another test may have hit it first with no subscriber.)
    assert_eq!(served(&server, &ca).await, b.der);
}

#[tokio::test]
async fn files_are_checked_at_most_once_a_second() {
    let ca = Ca::new("ca");
    let (a, b) = (ca.server("A"), ca.server("B"));
    let dir = tempfile::tempdir().unwrap();
    let tls = write_files(dir.path(), &a, None);
    let server = server_config(&tls).unwrap();
    replace(&tls.cert_file, &b.cert_pem);
    replace(&tls.key_file, &b.key_pem);
    // Right after start: not looked at yet.
    assert_eq!(served(&server, &ca).await, a.der);
}

#[tokio::test]
async fn mtls_maps_the_client_certificate_to_a_user() {
    let ca = Ca::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let server = server_config(&write_files(dir.path(), &ca.server("s"), Some(&ca))).unwrap();
    let alice = ca.client("alice", &["dev", "ops"]);
    let outcome = handshake(&server, client_config(&ca, &["h2"], Some(&alice))).await;
    let user = UserInfo {
        username: "alice".into(),
        groups: vec!["dev".into(), "ops".into()],
        ..UserInfo::default()
    };
    assert_eq!(outcome.server, Ok((Protocol::Http2, Some(user))));
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate() {
    let ca = Ca::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let server = server_config(&write_files(dir.path(), &ca.server("s"), Some(&ca))).unwrap();
    let outcome = handshake(&server, client_config(&ca, &["h2"], None)).await;
    let err = outcome.server.unwrap_err();
    assert!(err.contains("TLS handshake failed"), "{err}");
}

#[tokio::test]
async fn mtls_refuses_certificates_of_another_ca() {
    let (ca, other) = (Ca::new("ca"), Ca::new("other"));
    let dir = tempfile::tempdir().unwrap();
    let server = server_config(&write_files(dir.path(), &ca.server("s"), Some(&ca))).unwrap();
    let mallory = other.client("mallory", &["system:masters"]);
    let outcome = handshake(&server, client_config(&ca, &["h2"], Some(&mallory))).await;
    assert!(outcome.server.is_err());
}

#[tokio::test]
async fn handshake_times_out() {
    let ca = Ca::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let acceptor = acceptor(&write_files(dir.path(), &ca.server("s"), None)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _silent = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let err = accept_within(&acceptor, tcp, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, AcceptError::Timeout(_)), "{err}");
}

#[test]
fn client_user_needs_a_common_name() {
    let ca = Ca::new("ca");
    assert_eq!(client_user(&[]), None);
    assert_eq!(client_user(&[ca.client("", &["dev"]).der]), None);
    let bob = client_user(&[ca.client("bob", &[]).der]).unwrap();
    assert_eq!((bob.username.as_str(), bob.groups.len()), ("bob", 0));
    assert!(bob.extra.is_empty() && bob.uid.is_empty());
}

/// The message of `server_config`'s error for these files.
fn setup_error(tls: &TlsConfig) -> String {
    server_config(tls).unwrap_err().to_string()
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let ca = Ca::new("ca");
    let leaf = ca.server("s");
    let dir = tempfile::tempdir().unwrap();
    let good = write_files(dir.path(), &leaf, None);
    let path = |name: &str| dir.path().join(name);
    let with = |cert: &str, key: &str, ca: Option<&str>| TlsConfig {
        cert_file: path(cert),
        key_file: path(key),
        client_ca_file: ca.map(path),
    };
    std::fs::write(path("garbage"), "not a certificate\n").unwrap();
    std::fs::File::create(path("other.key"))
        .unwrap()
        .write_all(ca.server("x").key_pem.as_bytes())
        .unwrap();

    let err = setup_error(&with("missing.crt", "tls.key", None));
    assert!(
        err.starts_with("cannot read ") && err.contains("missing.crt"),
        "{err}"
    );
    let err = setup_error(&with("garbage", "tls.key", None));
    assert!(
        err.contains("garbage: holds no PEM CERTIFICATE block"),
        "{err}"
    );
    let err = setup_error(&with("tls.crt", "garbage", None));
    assert!(err.contains("garbage: holds no PEM private key"), "{err}");
    // A certificate where the key should be.
    let err = setup_error(&with("tls.crt", "tls.crt", None));
    assert!(err.contains("tls.crt: holds no PEM private key"), "{err}");
    let err = setup_error(&with("tls.crt", "other.key", None));
    assert_eq!(
        err,
        format!(
            "{}: private key does not match the certificate in {}",
            path("other.key").display(),
            good.cert_file.display()
        )
    );
    let err = setup_error(&with("tls.crt", "tls.key", Some("missing-ca.crt")));
    assert!(err.contains("missing-ca.crt"), "{err}");
    let err = setup_error(&with("tls.crt", "tls.key", Some("garbage")));
    assert!(
        err.contains("garbage: holds no PEM CERTIFICATE block"),
        "{err}"
    );
    server_config(&good).unwrap();
}
