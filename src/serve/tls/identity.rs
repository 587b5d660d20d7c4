//! Who a client certificate says the caller is, as kube-apiserver's x509 authenticator reads
//! it (`k8s.io/apiserver/pkg/authentication/request/x509`, `CommonNameUserConversion`): the
//! subject's CommonName is the username, each Organization a group. A subject without a
//! CommonName authenticates nobody.

use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::review::UserInfo;

/// The user of a verified client chain (leaf first), or `None` when the leaf has no
/// CommonName or does not parse. Only the subject is read: call it on chains the handshake
/// verified (`ServerConnection::peer_certificates` of an mTLS listener), never on raw input.
/// `extra` stays empty.
pub fn client_user(chain: &[CertificateDer<'_>]) -> Option<UserInfo> {
    let (_, leaf) = X509Certificate::from_der(chain.first()?).ok()?;
    let subject = leaf.subject();
    // Go's pkix.Name keeps the last CommonName of the RDN sequence.
    let username = subject
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .last()?;
    if username.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some(UserInfo {
        username: username.to_owned(),
        groups,
        ..UserInfo::default()
    })
}
