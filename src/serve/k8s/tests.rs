use std::path::Path;

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use serde_json::Value;

use super::*;
use crate::config::{ListenerConfig, TlsConfig};
use crate::serve::tls::test_pki::Ca;

const URL: &str = "https://portcullis.example.com:8443";

/// A config whose one listener serves `cert_pem` (the key file is not read here).
fn config_with(dir: &Path, cert_pem: &str, mtls: bool) -> Config {
    std::fs::write(dir.join("tls.crt"), cert_pem).unwrap();
    let mut config = Config::default();
    config.serve.listeners = vec![ListenerConfig {
        address: Some("0.0.0.0:8443".parse().unwrap()),
        tls: Some(TlsConfig {
            cert_file: dir.join("tls.crt"),
            key_file: dir.join("tls.key"),
            client_ca_file: mtls.then(|| dir.join("ca.crt")),
        }),
        socket: None,
        mode: None,
    }];
    config
}

/// The four documents, parsed back.
struct Printed {
    text: String,
    validating: ValidatingWebhookConfiguration,
    mutating: MutatingWebhookConfiguration,
    admission: Value,
    kubeconfig: Value,
}

fn print(config: &Config, url: &str) -> Printed {
    let text = print_k8s_config(config, url).unwrap();
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let [validating, mutating, admission, kubeconfig] = <[Value; 4]>::try_from(docs).unwrap();
    Printed {
        validating: serde_json::from_value(validating).unwrap(),
        mutating: serde_json::from_value(mutating).unwrap(),
        admission,
        kubeconfig,
        text,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The DER of the one certificate in a PEM.
fn der_of(pem: &[u8]) -> Vec<u8> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(certs.len(), 1);
    certs[0].to_vec()
}

#[test]
fn chain_gives_the_webhooks_and_the_image_policy_files() {
    let ca = Ca::new("cluster CA");
    let leaf = ca.server("portcullis");
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), &format!("{}{}", leaf.cert_pem, ca.pem()), false);
    let printed = print(&config, URL);

    let webhook = &printed.validating.webhooks.as_ref().unwrap()[0];
    assert_eq!(
        printed.validating.metadata.name.as_deref(),
        Some("portcullis")
    );
    assert_eq!(webhook.name, "validate.portcullis.dev");
    assert_eq!(
        webhook.client_config.url.as_deref(),
        Some("https://portcullis.example.com:8443/validate")
    );
    let bundle = &webhook.client_config.ca_bundle.as_ref().unwrap().0;
    assert_eq!(der_of(bundle), ca.der().to_vec());
    assert_eq!(webhook.side_effects, "None");
    assert_eq!(webhook.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(webhook.match_policy.as_deref(), Some("Equivalent"));
    assert_eq!(webhook.timeout_seconds, Some(10));
    assert_eq!(webhook.admission_review_versions, ["v1", "v1beta1"]);
    let rules: Vec<_> = webhook
        .rules
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.operations.as_ref().unwrap(), &["CREATE", "UPDATE"]);
            assert_eq!(r.api_versions.as_ref().unwrap(), &["v1"]);
            (
                r.api_groups.as_ref().unwrap()[0].clone(),
                r.resources.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("".to_owned(), vec!["pods".to_owned()]),
            (
                "apps".to_owned(),
                ["deployments", "replicasets", "statefulsets", "daemonsets"]
                    .map(String::from)
                    .to_vec()
            ),
            (
                "batch".to_owned(),
                vec!["jobs".to_owned(), "cronjobs".to_owned()]
            ),
        ]
    );

    let webhook = &printed.mutating.webhooks.as_ref().unwrap()[0];
    assert_eq!(webhook.name, "mutate.portcullis.dev");
    assert_eq!(
        webhook.client_config.url.as_deref(),
        Some("https://portcullis.example.com:8443/mutate")
    );
    assert_eq!(webhook.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(webhook.client_config.ca_bundle.as_ref().unwrap().0, *bundle);
    assert_eq!(webhook.rules.as_ref().unwrap().len(), 3);

    let admission = &printed.admission;
    assert_eq!(admission["apiVersion"], "apiserver.config.k8s.io/v1");
    assert_eq!(admission["kind"], "AdmissionConfiguration");
    assert_eq!(admission["plugins"].as_array().unwrap().len(), 1);
    assert_eq!(admission["plugins"][0]["name"], "ImagePolicyWebhook");
    assert_eq!(
        admission["plugins"][0]["configuration"],
        serde_json::json!({"imagePolicy": {
            "kubeConfigFile": "/etc/kubernetes/portcullis-imagepolicy.kubeconfig",
            "allowTTL": 50, "denyTTL": 50, "retryBackoff": 500, "defaultAllow": false,
        }})
    );

    let kc = &printed.kubeconfig;
    assert_eq!(
        (&kc["apiVersion"], &kc["kind"]),
        (&"v1".into(), &"Config".into())
    );
    assert_eq!(kc["current-context"], "portcullis");
    assert_eq!(kc["contexts"][0]["name"], "portcullis");
    assert_eq!(
        kc["contexts"][0]["context"]["cluster"],
        kc["clusters"][0]["name"]
    );
    assert_eq!(kc["contexts"][0]["context"]["user"], kc["users"][0]["name"]);
    let cluster = &kc["clusters"][0]["cluster"];
    assert_eq!(
        cluster["server"],
        "https://portcullis.example.com:8443/image_policy"
    );
    assert_eq!(cluster["certificate-authority-data"], b64(bundle).as_str());
    assert_eq!(kc["users"][0]["user"], serde_json::json!({}));

    for (i, header) in [
        "---\n# 1/4 ValidatingWebhookConfiguration: kubectl apply",
        "---\n# 2/4 MutatingWebhookConfiguration: kubectl apply",
        "---\n# 3/4 AdmissionConfiguration: save as /etc/kubernetes/portcullis-admission.yaml",
        "---\n# 4/4 kubeconfig: save as /etc/kubernetes/portcullis-imagepolicy.kubeconfig",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            printed.text.contains(header),
            "document {i}:\n{}",
            printed.text
        );
    }
    assert!(!printed.text.contains("# caBundle"), "{}", printed.text);
    // One line, as kubectl writes it (no folded block scalar).
    let line = format!("\n    caBundle: {}\n", b64(bundle));
    assert_eq!(printed.text.matches(&line).count(), 2, "{}", printed.text);
}

#[test]
fn intermediate_chain_uses_its_last_certificate() {
    let root = Ca::new("root");
    let intermediate = root.intermediate("intermediate");
    let leaf = intermediate.server("portcullis");
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        &format!("{}{}", leaf.cert_pem, intermediate.pem()),
        false,
    );
    let printed = print(&config, URL);
    let webhook = &printed.validating.webhooks.as_ref().unwrap()[0];
    let bundle = &webhook.client_config.ca_bundle.as_ref().unwrap().0;
    assert_eq!(der_of(bundle), intermediate.der().to_vec());
}

#[test]
fn self_signed_certificate_is_its_own_ca() {
    let self_signed = Ca::new("portcullis.example.com");
    let dir = tempfile::tempdir().unwrap();
    let printed = print(&config_with(dir.path(), &self_signed.pem(), false), URL);
    let webhook = &printed.validating.webhooks.as_ref().unwrap()[0];
    let bundle = &webhook.client_config.ca_bundle.as_ref().unwrap().0;
    assert_eq!(der_of(bundle), self_signed.der().to_vec());
}

#[test]
fn lone_certificate_of_an_unknown_ca_leaves_placeholders() {
    let ca = Ca::new("somebody's CA");
    let dir = tempfile::tempdir().unwrap();
    let printed = print(
        &config_with(dir.path(), &ca.server("s").cert_pem, false),
        URL,
    );
    for webhook in [
        &printed.validating.webhooks.as_ref().unwrap()[0].client_config,
        &printed.mutating.webhooks.as_ref().unwrap()[0].client_config,
    ] {
        assert_eq!(webhook.ca_bundle, None);
    }
    assert_eq!(
        printed.kubeconfig["clusters"][0]["cluster"].get("certificate-authority-data"),
        None
    );
    let text = &printed.text;
    assert_eq!(
        text.matches("    # caBundle: <base64 of the PEM CA")
            .count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("\n    # certificate-authority-data: <base64"),
        "{text}"
    );
}

#[test]
fn no_tls_listener_leaves_placeholders() {
    let printed = print(&Config::default(), URL);
    assert!(
        printed.text.contains("# caBundle: <base64"),
        "{}",
        printed.text
    );
}

#[test]
fn mtls_listener_gets_kube_apiserver_a_client_certificate() {
    let ca = Ca::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), &ca.pem(), true);
    let printed = print(&config, "https://portcullis.example.com/");
    let webhook = &printed.validating.webhooks.as_ref().unwrap()[0];
    assert_eq!(
        webhook.client_config.url.as_deref(),
        Some("https://portcullis.example.com/validate")
    );
    let plugins: Vec<_> = printed.admission["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        plugins,
        [
            "ImagePolicyWebhook",
            "ValidatingAdmissionWebhook",
            "MutatingAdmissionWebhook"
        ]
    );
    assert_eq!(
        printed.admission["plugins"][1]["configuration"],
        serde_json::json!({
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "WebhookAdmissionConfiguration",
            "kubeConfigFile": "/etc/kubernetes/portcullis-imagepolicy.kubeconfig",
        })
    );
    let user = &printed.kubeconfig["users"][0];
    assert_eq!(user["name"], "portcullis.example.com:443");
    assert_eq!(
        user["user"]["client-certificate"],
        "/etc/kubernetes/pki/portcullis-client.crt"
    );
    assert_eq!(
        user["user"]["client-key"],
        "/etc/kubernetes/pki/portcullis-client.key"
    );
}

#[test]
fn url_must_be_a_webhook_url() {
    for url in [
        "http://portcullis.example.com",
        "portcullis.example.com:8443",
        "https://portcullis.example.com/?x=1",
        "https://user@portcullis.example.com",
        "https://portcullis.example.com/#frag",
        "not a url",
    ] {
        let err = print_k8s_config(&Config::default(), url).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("--print-k8s-config {url}: ")),
            "{err}"
        );
    }
}

#[test]
fn unreadable_cert_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with(dir.path(), "", false);
    let err = print_k8s_config(&config, URL).unwrap_err().to_string();
    assert!(
        err.contains("tls.crt: holds no PEM CERTIFICATE block"),
        "{err}"
    );
    config.serve.listeners[0].tls.as_mut().unwrap().cert_file = dir.path().join("gone.crt");
    let err = print_k8s_config(&config, URL).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot read ") && err.contains("gone.crt"),
        "{err}"
    );
}
