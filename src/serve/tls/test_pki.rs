//! Test certificates made with rcgen: CAs, intermediates, server and client leaves, written
//! to files the way cert-manager and kubelet lay them out.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::CertificateDer;

/// A certificate authority (self-signed, or signed by a parent).
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, PEM.
pub(crate) struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let issuer = CertifiedIssuer::self_signed(ca_params(name), KeyPair::generate().unwrap());
        Self {
            issuer: issuer.unwrap(),
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Self {
        let issuer =
            CertifiedIssuer::signed_by(ca_params(name), KeyPair::generate().unwrap(), &self.issuer);
        Self {
            issuer: issuer.unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for 127.0.0.1 and localhost; `cn` tells rotations apart.
    pub fn server(&self, cn: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.leaf(params)
    }

    /// A client certificate with subject CN=`cn`, O=each of `orgs` (at most two).
    pub fn client(&self, cn: &str, orgs: &[&str]) -> Leaf {
        // rcgen keeps one value per attribute type; the same OID spelled as a custom type is
        // a second key, hence a second Organization attribute.
        const ORGANIZATION: [u64; 4] = [2, 5, 4, 10];
        assert!(orgs.len() <= 2, "rcgen writes at most two Organizations");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let types = [
            DnType::OrganizationName,
            DnType::CustomDnType(ORGANIZATION.to_vec()),
        ];
        for (org, ty) in orgs.iter().zip(types) {
            params.distinguished_name.push(ty, *org);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.leaf(params)
    }

    fn leaf(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// Replaces `path` with `contents` the way rotations do: a new file renamed over the old.
pub(crate) fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
