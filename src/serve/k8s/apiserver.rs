//! The kube-apiserver side files of `--print-k8s-config`: the `AdmissionConfiguration`
//! (`apiserver.config.k8s.io/v1`) and the kubeconfig it names, only the fields used here.

use base64::Engine as _;
use serde::Serialize;

use super::{Base, CLIENT_CERT_FILE, CLIENT_KEY_FILE, KUBECONFIG_FILE};

/// `apiserver.config.k8s.io/v1` `AdmissionConfiguration`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AdmissionConfiguration {
    api_version: &'static str,
    kind: &'static str,
    plugins: Vec<AdmissionPlugin>,
}

#[derive(Serialize)]
struct AdmissionPlugin {
    name: &'static str,
    configuration: PluginConfiguration,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PluginConfiguration {
    /// `imagePolicy:` as `plugin/pkg/admission/imagepolicy` reads it.
    ImagePolicy {
        #[serde(rename = "imagePolicy")]
        image_policy: ImagePolicy,
    },
    Webhook(WebhookAdmission),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImagePolicy {
    kube_config_file: &'static str,
    #[serde(rename = "allowTTL")]
    allow_ttl: u32,
    #[serde(rename = "denyTTL")]
    deny_ttl: u32,
    retry_backoff: u32,
    default_allow: bool,
}

/// `WebhookAdmissionConfiguration`: the kubeconfig with kube-apiserver's webhook credentials.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAdmission {
    api_version: &'static str,
    kind: &'static str,
    kube_config_file: &'static str,
}

pub(super) fn admission_configuration(mtls: bool) -> AdmissionConfiguration {
    let mut plugins = vec![AdmissionPlugin {
        name: "ImagePolicyWebhook",
        configuration: PluginConfiguration::ImagePolicy {
            image_policy: ImagePolicy {
                kube_config_file: KUBECONFIG_FILE,
                allow_ttl: 50,
                deny_ttl: 50,
                retry_backoff: 500,
                default_allow: false,
            },
        },
    }];
    if mtls {
        for name in ["ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"] {
            plugins.push(AdmissionPlugin {
                name,
                configuration: PluginConfiguration::Webhook(WebhookAdmission {
                    api_version: "apiserver.config.k8s.io/v1",
                    kind: "WebhookAdmissionConfiguration",
                    kube_config_file: KUBECONFIG_FILE,
                }),
            });
        }
    }
    AdmissionConfiguration {
        api_version: "apiserver.config.k8s.io/v1",
        kind: "AdmissionConfiguration",
        plugins,
    }
}

/// A kubeconfig (`clientcmd/api/v1.Config`), only the fields used here.
#[derive(Serialize)]
pub(super) struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: Vec<Named<Cluster>>,
    users: Vec<Named<User>>,
    contexts: Vec<Named<Context>>,
    #[serde(rename = "current-context")]
    current_context: &'static str,
}

#[derive(Serialize)]
struct Named<T> {
    name: String,
    #[serde(flatten)]
    value: T,
}

#[derive(Serialize)]
struct Cluster {
    cluster: ClusterInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterInfo {
    server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<String>,
}

#[derive(Serialize)]
struct User {
    user: UserInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_certificate: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_key: Option<&'static str>,
}

#[derive(Serialize)]
struct Context {
    context: ContextInfo,
}

#[derive(Serialize)]
struct ContextInfo {
    cluster: &'static str,
    user: String,
}

pub(super) fn kubeconfig(base: &Base, ca: Option<&[u8]>, mtls: bool) -> Kubeconfig {
    // ImagePolicyWebhook uses the current context's user; webhook admission looks the user
    // up by the webhook's host:port. One user named so serves both.
    let user = base.host_port.clone();
    Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: "portcullis".into(),
            value: Cluster {
                cluster: ClusterInfo {
                    server: format!("{}/image_policy", base.url),
                    certificate_authority_data: ca
                        .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
                },
            },
        }],
        users: vec![Named {
            name: user.clone(),
            value: User {
                user: UserInfo {
                    client_certificate: mtls.then_some(CLIENT_CERT_FILE),
                    client_key: mtls.then_some(CLIENT_KEY_FILE),
                },
            },
        }],
        contexts: vec![Named {
            name: "portcullis".into(),
            value: Context {
                context: ContextInfo {
                    cluster: "portcullis",
                    user,
                },
            },
        }],
        current_context: "portcullis",
    }
}
