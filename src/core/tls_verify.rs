//! Server certificate verification against a webhook's `caBundle`, as kube-apiserver's
//! Go client does it. webpki refuses an end-entity certificate that says `CA:TRUE`
//! (`CaUsedAsEndEntity`), but the quick-start way to serve a webhook —
//! `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=x -addext subjectAltName=DNS:...`
//! with that same certificate as `caBundle` — makes exactly such a certificate, and Go's
//! crypto/x509 accepts it: a leaf that is itself one of the roots (byte for byte) is a
//! chain of one (`Certificate.Verify`, "if opts.Roots.contains(c)"). We do the same, and
//! still check what Go checks on that chain: validity period, server name and, when
//! present, that the extended key usage allows serverAuth. Everything else goes to
//! webpki's verifier unchanged, including the TLS handshake signatures, which prove the
//! server holds the certificate's key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// webpki's verifier, plus trust in a server certificate that is itself in the bundle.
#[derive(Debug)]
pub(crate) struct BundleVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The bundle's certificates as DER, compared byte for byte with the leaf.
    bundle: Vec<CertificateDer<'static>>,
}

impl BundleVerifier {
    pub(crate) fn new(
        bundle: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, rustls::client::VerifierBuilderError> {
        let mut roots = RootCertStore::empty();
        // The bundle was checked when it was read (`tls::bundle_certs`); a certificate
        // webpki cannot take as an anchor can still be trusted as itself.
        roots.add_parsable_certificates(bundle.iter().cloned());
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(Self { webpki, bundle })
    }
}

/// The checks Go's crypto/x509 makes of a leaf trusted as itself.
fn verify_self_trusted(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let bad = |_| Error::InvalidCertificate(CertificateError::BadEncoding);
    let (_, cert) = X509Certificate::from_der(end_entity.as_ref()).map_err(bad)?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    // Go: a leaf whose ExtKeyUsage lists neither serverAuth nor any is refused for TLS
    // servers; none listed means any use.
    let eku = cert
        .extended_key_usage()
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if let Some(eku) = eku {
        if !(eku.value.any || eku.value.server_auth) {
            return Err(Error::InvalidCertificate(CertificateError::InvalidPurpose));
        }
    }
    // Subject alternative names only, as webpki and Go (since 1.15) both do.
    rustls::client::verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let chained = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match chained {
            Ok(verified) => Ok(verified),
            // Only a leaf the operator put in the bundle itself gets the second path; its
            // own errors (expired, wrong name) are more telling than webpki's
            // CaUsedAsEndEntity, so they are the ones reported.
            Err(_)
                if self
                    .bundle
                    .iter()
                    .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                verify_self_trusted(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A self-signed certificate for `names`; `edit` adjusts its parameters.
    fn self_signed(
        names: &[&str],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).unwrap();
        // What `openssl req -x509` writes by default.
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        edit(&mut params);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verify(
        bundle: &[&CertificateDer<'static>],
        leaf: &CertificateDer<'_>,
        name: &str,
    ) -> Result<(), Error> {
        let bundle = bundle.iter().map(|c| (*c).clone()).collect();
        let verifier = BundleVerifier::new(bundle, provider()).unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier
            .verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
            .map(drop)
    }

    #[test]
    fn a_self_signed_ca_leaf_in_the_bundle_is_trusted_as_itself() {
        let leaf = self_signed(&["localhost", "127.0.0.1"], |_| {});
        // webpki alone refuses it: the case this verifier exists for.
        let mut roots = RootCertStore::empty();
        roots.add(leaf.clone()).unwrap();
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let e = webpki
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(format!("{e:?}").contains("CaUsedAsEndEntity"), "{e:?}");
        assert_eq!(verify(&[&leaf], &leaf, "localhost"), Ok(()));
        assert_eq!(verify(&[&leaf], &leaf, "127.0.0.1"), Ok(()));
        // Among other certificates of the bundle too.
        let other = self_signed(&["other"], |_| {});
        assert_eq!(verify(&[&other, &leaf], &leaf, "localhost"), Ok(()));
    }

    #[test]
    fn the_name_is_still_checked() {
        let leaf = self_signed(&["localhost"], |_| {});
        let e = verify(&[&leaf], &leaf, "webhook.example.com").unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_validity_period_is_still_checked() {
        let expired = self_signed(&["localhost"], |p| {
            p.not_before = date_time_ymd(2000, 1, 1);
            p.not_after = date_time_ymd(2001, 1, 1);
        });
        let e = verify(&[&expired], &expired, "localhost").unwrap_err();
        assert_eq!(e, Error::InvalidCertificate(CertificateError::Expired));
        let future = self_signed(&["localhost"], |p| {
            p.not_before = date_time_ymd(2999, 1, 1);
            p.not_after = date_time_ymd(3000, 1, 1);
        });
        let e = verify(&[&future], &future, "localhost").unwrap_err();
        assert_eq!(e, Error::InvalidCertificate(CertificateError::NotValidYet));
    }

    #[test]
    fn a_client_only_purpose_is_refused() {
        let leaf = self_signed(&["localhost"], |p| {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        });
        let e = verify(&[&leaf], &leaf, "localhost").unwrap_err();
        assert_eq!(
            e,
            Error::InvalidCertificate(CertificateError::InvalidPurpose)
        );
    }

    #[test]
    fn a_different_self_signed_certificate_is_refused() {
        let trusted = self_signed(&["localhost"], |_| {});
        // Same names, same shape, another key: not in the bundle, and not signed by it.
        let impostor = self_signed(&["localhost"], |_| {});
        let e = verify(&[&trusted], &impostor, "localhost").unwrap_err();
        assert!(matches!(e, Error::InvalidCertificate(_)), "{e:?}");
    }

    #[test]
    fn certificates_issued_by_a_bundle_ca_still_verify_through_webpki() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_der = ca.self_signed(&ca_key).unwrap().der().clone();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap()
            .der()
            .clone();
        assert_eq!(verify(&[&ca_der], &leaf, "localhost"), Ok(()));
        assert!(verify(&[&ca_der], &leaf, "elsewhere").is_err());
    }

    /// The issue's own recipe: `openssl req -x509` (CA:TRUE by default).
    #[test]
    fn an_openssl_quick_start_certificate_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let status = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x",
            ])
            .args(["-addext", "subjectAltName=DNS:localhost", "-days", "2"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let pem = std::fs::read(&cert).unwrap();
        let leaf = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(verify(&[&leaf], &leaf, "localhost"), Ok(()));
        assert!(verify(&[&leaf], &leaf, "x").is_err());
    }
}
