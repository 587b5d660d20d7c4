//! `portcullis serve --print-k8s-config URL`: what a cluster needs to call this server, as
//! YAML documents, each headed by a comment saying where it goes.
//!
//! 1. `ValidatingWebhookConfiguration` (`URL/validate`) and 2. `MutatingWebhookConfiguration`
//!    (`URL/mutate`) for `kubectl apply`: CREATE and UPDATE of pods and the workloads that
//!    make them ([admissionregistration.k8s.io/v1]).
//! 3. An `AdmissionConfiguration` for kube-apiserver's `--admission-control-config-file`,
//!    enabling `ImagePolicyWebhook` ([imagepolicy]) and, on an mTLS listener, naming the
//!    kubeconfig that gives kube-apiserver its client certificate for the two webhooks
//!    ([WebhookAdmissionConfiguration]).
//! 4. That kubeconfig: cluster `URL/image_policy`, the CA, the client certificate (mTLS).
//!
//! `caBundle` / `certificate-authority-data` is the CA of the first TLS listener's
//! `certFile`: the last certificate of a chain, or the certificate itself when it is
//! self-signed. A lone certificate from another CA leaves a commented placeholder and a
//! warning.
//!
//! [admissionregistration.k8s.io/v1]: https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
//! [imagepolicy]: https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#imagepolicywebhook
//! [WebhookAdmissionConfiguration]: https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#authenticate-apiservers

mod apiserver;
#[cfg(test)]
mod tests;

use std::path::Path;

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1 as admissionregistration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use serde::Serialize;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::config::Config;
use crate::core::tls::{read_certs, TlsSetupError};
use apiserver::{admission_configuration, kubeconfig};

/// Where document 3 tells kube-apiserver to find document 4.
pub const KUBECONFIG_FILE: &str = "/etc/kubernetes/portcullis-imagepolicy.kubeconfig";
/// Where document 3 is meant to be saved.
pub const ADMISSION_CONFIG_FILE: &str = "/etc/kubernetes/portcullis-admission.yaml";
/// The client certificate kube-apiserver presents to an mTLS listener (a placeholder to edit).
const CLIENT_CERT_FILE: &str = "/etc/kubernetes/pki/portcullis-client.crt";
const CLIENT_KEY_FILE: &str = "/etc/kubernetes/pki/portcullis-client.key";

const VALIDATING_NAME: &str = "validate.portcullis.dev";
const MUTATING_NAME: &str = "mutate.portcullis.dev";

/// Why the configuration cannot be printed.
#[derive(Debug, thiserror::Error)]
pub enum K8sConfigError {
    #[error("--print-k8s-config {url}: {message}")]
    Url { url: String, message: String },
    #[error(transparent)]
    CertFile(#[from] TlsSetupError),
    #[error("{path}: {message}")]
    Cert { path: String, message: String },
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// The YAML for `portcullis serve --print-k8s-config url`; `url` is the base the cluster
/// reaches this server at (`https://host[:port][/prefix]`).
pub fn print_k8s_config(config: &Config, url: &str) -> Result<String, K8sConfigError> {
    let base = Base::parse(url)?;
    let tls = config.serve.listeners.iter().find_map(|l| l.tls.as_ref());
    let ca = known_ca(tls.map(|t| t.cert_file.as_path()))?;
    let mtls = tls.is_some_and(|t| t.client_ca_file.is_some());
    let validating = validating_configuration(&base, ca.as_deref());
    let mutating = mutating_configuration(&base, ca.as_deref());
    let mut out = preamble(url, ca.is_some());
    let mut doc = |comment: &str, yaml: String| {
        out.push_str("---\n");
        for line in comment.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&yaml);
    };
    let placeholder = |yaml: String, after: &str, key: &str| match ca {
        Some(_) => yaml,
        None => with_placeholder(&yaml, after, key),
    };
    doc(
        "1/4 ValidatingWebhookConfiguration: kubectl apply -f",
        placeholder(to_yaml(&validating)?, "url", "caBundle"),
    );
    doc(
        "2/4 MutatingWebhookConfiguration: kubectl apply -f",
        placeholder(to_yaml(&mutating)?, "url", "caBundle"),
    );
    doc(
        &format!(
            "3/4 AdmissionConfiguration: save as {ADMISSION_CONFIG_FILE}, then run kube-apiserver with\n\
             --admission-control-config-file={ADMISSION_CONFIG_FILE} and ImagePolicyWebhook added to\n\
             --enable-admission-plugins"
        ),
        to_yaml(&admission_configuration(mtls))?,
    );
    let client = if mtls {
        format!(
            "\nkube-apiserver's client certificate for the mTLS listener: replace {CLIENT_CERT_FILE}\n\
             and {CLIENT_KEY_FILE} with a pair signed by the listener's clientCAFile"
        )
    } else {
        String::new()
    };
    doc(
        &format!("4/4 kubeconfig: save as {KUBECONFIG_FILE} (named by document 3){client}"),
        placeholder(
            to_yaml(&kubeconfig(&base, ca.as_deref(), mtls))?,
            "server",
            "certificate-authority-data",
        ),
    );
    Ok(out)
}

/// The CA of the serving certificate (`cert_file`, the first TLS listener's), when it can be
/// told; otherwise a warning, and the documents get placeholders.
fn known_ca(cert_file: Option<&Path>) -> Result<Option<Vec<u8>>, K8sConfigError> {
    let ca = match cert_file {
        Some(cert_file) => serving_ca(cert_file)?,
        None => Err("no serve listener has tls".to_owned()),
    };
    Ok(ca
        .map_err(|why| {
            tracing::warn!(
                "{why}: fill in caBundle and certificate-authority-data with the base64 of \
                 the PEM CA that signed the serving certificate"
            )
        })
        .ok())
}

/// Document 1: CREATE and UPDATE of pods and workloads go to `URL/validate`.
fn validating_configuration(
    base: &Base,
    ca: Option<&[u8]>,
) -> admissionregistration::ValidatingWebhookConfiguration {
    admissionregistration::ValidatingWebhookConfiguration {
        metadata: metadata(),
        webhooks: Some(vec![admissionregistration::ValidatingWebhook {
            name: VALIDATING_NAME.into(),
            client_config: client_config(base, "/validate", ca),
            rules: Some(rules()),
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            side_effects: "None".into(),
            timeout_seconds: Some(10),
            admission_review_versions: vec!["v1".into(), "v1beta1".into()],
            ..Default::default()
        }]),
    }
}

/// Document 2: the same requests go to `URL/mutate`.
fn mutating_configuration(
    base: &Base,
    ca: Option<&[u8]>,
) -> admissionregistration::MutatingWebhookConfiguration {
    admissionregistration::MutatingWebhookConfiguration {
        metadata: metadata(),
        webhooks: Some(vec![admissionregistration::MutatingWebhook {
            name: MUTATING_NAME.into(),
            client_config: client_config(base, "/mutate", ca),
            rules: Some(rules()),
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            reinvocation_policy: Some("IfNeeded".into()),
            side_effects: "None".into(),
            timeout_seconds: Some(10),
            admission_review_versions: vec!["v1".into(), "v1beta1".into()],
            ..Default::default()
        }]),
    }
}

/// The comment heading the output; `ca_known` false adds how to fill in the placeholders.
fn preamble(url: &str, ca_known: bool) -> String {
    let mut out = format!(
        "# Generated by `portcullis serve --print-k8s-config {url}`.\n\
         # Documents 1 and 2 go to the cluster (kubectl apply); 3 and 4 are files for\n\
         # kube-apiserver on every control-plane node (mounted into its static pod).\n"
    );
    if !ca_known {
        out.push_str(
            "# The serving certificate's CA is unknown: fill in the commented caBundle and\n\
             # certificate-authority-data lines with the base64 of its PEM.\n",
        );
    }
    out
}

/// The validated base URL, without a trailing `/`.
struct Base {
    pub(super) url: String,
    /// `host:port` (port 443 when the URL has none): the name kube-apiserver looks a webhook's
    /// credentials up by in the WebhookAdmissionConfiguration kubeconfig.
    pub(super) host_port: String,
}

impl Base {
    fn parse(url: &str) -> Result<Self, K8sConfigError> {
        let err = |message: &str| K8sConfigError::Url {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| err(&e.to_string()))?;
        if uri.scheme_str() != Some("https") {
            return Err(err("kube-apiserver calls webhooks over https:// only"));
        }
        let authority = uri.authority().ok_or_else(|| err("no host"))?;
        if authority.as_str().contains('@') {
            return Err(err("user information is not allowed in a webhook URL"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(err("query and fragment are not allowed in a webhook URL"));
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            host_port: format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(443)
            ),
        })
    }
}

fn metadata() -> ObjectMeta {
    ObjectMeta {
        name: Some("portcullis".into()),
        ..Default::default()
    }
}

fn client_config(
    base: &Base,
    path: &str,
    ca: Option<&[u8]>,
) -> admissionregistration::WebhookClientConfig {
    admissionregistration::WebhookClientConfig {
        url: Some(format!("{}{path}", base.url)),
        ca_bundle: ca.map(|pem| ByteString(pem.to_vec())),
        service: None,
    }
}

/// CREATE and UPDATE of pods and of the workload kinds with a pod template.
fn rules() -> Vec<admissionregistration::RuleWithOperations> {
    let rule = |group: &str, resources: &[&str]| admissionregistration::RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec!["v1".into()]),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        scope: None,
    };
    vec![
        rule("", &["pods"]),
        rule(
            "apps",
            &["deployments", "replicasets", "statefulsets", "daemonsets"],
        ),
        rule("batch", &["jobs", "cronjobs"]),
    ]
}

/// The PEM of the CA that signed `cert_file`'s certificate, or why it is not known.
fn serving_ca(cert_file: &Path) -> Result<Result<Vec<u8>, String>, K8sConfigError> {
    let chain = read_certs(cert_file)?;
    if let [_, .., last] = &chain[..] {
        return Ok(Ok(pem(last)));
    }
    let leaf = &chain[0];
    let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| K8sConfigError::Cert {
        path: cert_file.display().to_string(),
        message: format!("certificate does not parse: {e}"),
    })?;
    let self_signed =
        cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok();
    if self_signed {
        Ok(Ok(pem(leaf)))
    } else {
        Ok(Err(format!(
            "{} holds only the server certificate, signed by \"{}\", not that CA",
            cert_file.display(),
            cert.issuer()
        )))
    }
}

fn pem(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
    out
}

fn to_yaml<T: Serialize>(value: &T) -> Result<String, K8sConfigError> {
    // One line per value, as kubectl prints: no folded (`>-`) base64.
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|e| K8sConfigError::Yaml(e.to_string()))
}

/// `yaml` with `# key: <...>` after the first `after:` line, at its indentation.
fn with_placeholder(yaml: &str, after: &str, key: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 80);
    let mut done = false;
    for line in yaml.lines() {
        out.push_str(line);
        out.push('\n');
        let trimmed = line.trim_start_matches([' ', '-']);
        if !done && trimmed.starts_with(&format!("{after}:")) {
            let indent = line.len() - trimmed.len();
            out.push_str(&" ".repeat(indent));
            out.push_str(&format!(
                "# {key}: <base64 of the PEM CA that signed the serving certificate>\n"
            ));
            done = true;
        }
    }
    out
}
