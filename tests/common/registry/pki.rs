//! The registry's TLS: a test CA and a server certificate for 127.0.0.1 (IP SAN) and
//! localhost, made at test time with the `openssl` CLI: no new crate, and certificates
//! made by other code than the rustls/Go stacks that verify them. P-256 keys, two days of
//! validity, everything under the registry's temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::super::text;

/// The test PKI's files.
pub(super) struct Pki {
    pub ca: PathBuf,
    /// A directory with the CA as `ca.crt`, the layout skopeo's `--*-cert-dir` reads.
    pub cert_dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The `openssl` config for the CA and server certificates (P-256 keys).
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Portcullis test registry CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// `openssl req`'s flags for a new P-256 key, unencrypted.
const KEY: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A CA and a server certificate for 127.0.0.1 and localhost, made with the `openssl` CLI
/// under `dir/pki`, valid for two days.
pub(super) fn make_pki(dir: &Path) -> Pki {
    let pki = dir.join("pki");
    let cert_dir = pki.join("certs.d");
    std::fs::create_dir_all(&cert_dir).unwrap();
    let cnf = pki.join("openssl.cnf");
    std::fs::write(&cnf, OPENSSL_CNF).unwrap();
    let p = |name: &str| pki.join(name).display().to_string();
    let cnf = cnf.display().to_string();
    openssl(&[
        &["req", "-x509", "-config", &cnf, "-extensions", "ca"],
        KEY,
        &["-days", "2", "-keyout", &p("ca.key"), "-out", &p("ca.pem")],
    ]);
    openssl(&[
        &["req", "-new", "-config", &cnf, "-subj", "/CN=127.0.0.1"],
        KEY,
        &["-keyout", &p("server.key"), "-out", &p("server.csr")],
    ]);
    openssl(&[
        &["x509", "-req", "-in", &p("server.csr"), "-days", "2"],
        &["-CA", &p("ca.pem"), "-CAkey", &p("ca.key")],
        &["-CAcreateserial", "-CAserial", &p("ca.srl")],
        &["-extfile", &cnf, "-extensions", "server"],
        &["-out", &p("server.pem")],
    ]);
    std::fs::copy(pki.join("ca.pem"), cert_dir.join("ca.crt")).unwrap();
    Pki {
        ca: pki.join("ca.pem"),
        cert_dir,
        cert: pki.join("server.pem"),
        key: pki.join("server.key"),
    }
}

fn openssl(args: &[&[&str]]) {
    let args = args.concat();
    let out = Command::new("openssl").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        text(&out)
    );
}
