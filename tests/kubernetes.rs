//! The Kubernetes manifests under deploy/kubernetes, checked without a cluster (`kubectl
//! apply --dry-run=client` needs the API server's discovery even with `--validate=false`):
//!
//! - every document deserializes into the k8s-openapi type of its kind and serializes back
//!   to the same JSON value, so a misspelt or misplaced field, which the types would drop,
//!   fails (cert-manager's kinds, which k8s-openapi lacks, against the fields they use);
//! - the webhook configurations are what `portcullis serve --print-k8s-config` prints, but
//!   for the two differences webhooks.yaml documents (a Service reference, not a URL, and a
//!   namespaceSelector leaving out Portcullis' own namespaces and kube-system);
//! - the config files in the ConfigMaps load as Portcullis configs, and the pieces refer to
//!   each other correctly (volumes, mounts, Service, ports, the restricted security context).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");
/// The Service the webhooks call, as a URL: what --print-k8s-config is given.
const SERVICE_URL: &str = "https://portcullis.portcullis.svc:443";

/// Every YAML document of every manifest file: (file name, document).
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "manifests in {DIR}: {files:?}");
    files
        .iter()
        .flat_map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(path).unwrap();
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
            docs.into_iter()
                .filter(|d| !d.is_null())
                .map(move |d| (name.clone(), d))
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect()
}

fn typed<T: DeserializeOwned>(doc: &Value) -> T {
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc:#}"))
}

/// `doc` as `T` and back: the same JSON value, or the field the type did not keep.
fn round_trip<T: DeserializeOwned + Serialize>(file: &str, doc: &Value) {
    let back = serde_json::to_value(typed::<T>(doc)).unwrap();
    assert_eq!(
        &back, doc,
        "{file}: {} {} does not survive its type: a field is misspelt or misplaced",
        doc["kind"], doc["metadata"]["name"]
    );
}

// cert-manager's kinds, limited to (and strict about) the fields cert-manager.yaml uses.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertManagerObject<S> {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: S,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    self_signed: Option<BTreeMap<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<CaIssuer>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaIssuer {
    secret_name: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    issuer_ref: IssuerRef,
    #[serde(rename = "isCA", skip_serializing_if = "Option::is_none")]
    is_ca: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    common_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renew_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<PrivateKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerRef {
    name: String,
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateKey {
    algorithm: String,
    size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_policy: Option<String>,
}

#[test]
fn every_document_is_exactly_its_kind() {
    let docs = documents();
    for (file, doc) in &docs {
        let api_version = doc["apiVersion"].as_str().unwrap_or("");
        match (api_version, doc["kind"].as_str().unwrap_or("")) {
            ("v1", "Namespace") => round_trip::<Namespace>(file, doc),
            ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(file, doc),
            ("v1", "ConfigMap") => round_trip::<ConfigMap>(file, doc),
            ("v1", "Service") => round_trip::<Service>(file, doc),
            ("apps/v1", "Deployment") => round_trip::<Deployment>(file, doc),
            ("apps/v1", "DaemonSet") => round_trip::<DaemonSet>(file, doc),
            ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(file, doc),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                round_trip::<ValidatingWebhookConfiguration>(file, doc)
            }
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
                round_trip::<MutatingWebhookConfiguration>(file, doc)
            }
            ("cert-manager.io/v1", "Issuer") => {
                round_trip::<CertManagerObject<IssuerSpec>>(file, doc)
            }
            ("cert-manager.io/v1", "Certificate") => {
                round_trip::<CertManagerObject<CertificateSpec>>(file, doc)
            }
            (v, k) => panic!("{file}: no schema check for {v} {k}: add its type here"),
        }
    }
    // Every namespaced object names its namespace (kubectl would put it in the current one).
    for (file, doc) in &docs {
        let cluster_scoped = [
            "Namespace",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ]
        .iter()
        .any(|k| doc["kind"] == *k);
        assert_eq!(
            !cluster_scoped,
            doc["metadata"]["namespace"].is_string(),
            "{file}: {} {}: metadata.namespace",
            doc["kind"],
            doc["metadata"]["name"]
        );
    }
}

/// The documents `portcullis serve --print-k8s-config SERVICE_URL` prints.
fn printed() -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--print-k8s-config", SERVICE_URL])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// A manifest webhook configuration as --print-k8s-config would print it: the documented
/// differences checked and undone.
fn as_printed(mut doc: Value) -> Value {
    let annotations = doc["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert_eq!(
        annotations,
        Some(json!({"cert-manager.io/inject-ca-from": "portcullis/portcullis-serving"}))
    );
    for hook in doc["webhooks"].as_array_mut().unwrap() {
        let hook = hook.as_object_mut().unwrap();
        assert_eq!(
            hook.remove("namespaceSelector"),
            Some(json!({"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", "portcullis", "portcullis-node"],
            }]})),
            "{}: namespaceSelector",
            hook["name"]
        );
        let client = hook["clientConfig"].as_object_mut().unwrap();
        assert!(
            client.get("caBundle").is_none(),
            "caBundle is the cluster's"
        );
        let service = client.remove("service").expect("clientConfig.service");
        let url = format!(
            "https://{}.{}.svc:{}{}",
            service["name"].as_str().unwrap(),
            service["namespace"].as_str().unwrap(),
            service["port"],
            service["path"].as_str().unwrap()
        );
        client.insert("url".into(), url.into());
    }
    doc
}

#[test]
fn the_webhooks_are_what_serve_prints() {
    let docs = documents();
    let printed = printed();
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let ours = of_kind(&docs, kind);
        assert_eq!(ours.len(), 1, "one {kind}");
        let theirs = printed
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("--print-k8s-config prints no {kind}"));
        // No TLS listener given: printed without caBundle, as the manifest is.
        let mut theirs = theirs.clone();
        for hook in theirs["webhooks"].as_array_mut().unwrap() {
            assert!(hook["clientConfig"].get("caBundle").is_none());
        }
        assert_eq!(as_printed(ours[0].clone()), theirs, "{kind}");
    }
    // The Service they name exists, on that port.
    let services = of_kind(&docs, "Service");
    let service = services
        .iter()
        .find(|s| {
            s["metadata"]["name"] == "portcullis" && s["metadata"]["namespace"] == "portcullis"
        })
        .expect("Service portcullis/portcullis");
    assert!(service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["port"] == 443 && p["targetPort"] == "https"));
}

/// Each ConfigMap's config.yaml loads, with its policyDir pointed at a copy of the policy
/// ConfigMap it is deployed with. (config ConfigMap, policies ConfigMap)
#[test]
fn the_configs_load() {
    let docs = documents();
    let maps = of_kind(&docs, "ConfigMap");
    let find = |name: &str| {
        *maps
            .iter()
            .find(|m| m["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("ConfigMap {name}"))
    };
    for (config, policies) in [
        ("portcullis-config", "portcullis-policies"),
        ("portcullis-node-config", "portcullis-node-policies"),
    ] {
        let text = find(config)["data"]["config.yaml"].as_str().unwrap();
        assert!(text.contains("policyDir: /etc/portcullis/policies\n"));
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in find(policies)["data"].as_object().unwrap() {
            std::fs::write(dir.path().join(name), body.as_str().unwrap()).unwrap();
        }
        let text = text.replace(
            "policyDir: /etc/portcullis/policies\n",
            &format!("policyDir: {}\n", dir.path().display()),
        );
        if let Err(e) = portcullis::config::Config::parse(&text, Path::new(config)) {
            panic!("ConfigMap {config}: config.yaml does not load: {e}");
        }
    }
}

fn container<'a>(pod: &'a PodSpec, name: &str) -> &'a k8s_openapi::api::core::v1::Container {
    pod.containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("container {name}"))
}

/// The mount path of the volume made from the ConfigMap or Secret `source`.
fn mount_of(pod: &PodSpec, container: &str, source: &str) -> String {
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| {
            v.config_map.as_ref().is_some_and(|c| c.name == source)
                || v.secret
                    .as_ref()
                    .is_some_and(|s| s.secret_name.as_deref() == Some(source))
        })
        .unwrap_or_else(|| panic!("no volume from {source}"));
    let c = pod
        .init_containers
        .iter()
        .flatten()
        .chain(&pod.containers)
        .find(|c| c.name == container)
        .unwrap();
    c.volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume.name)
        .unwrap_or_else(|| panic!("{container} does not mount {}", volume.name))
        .mount_path
        .clone()
}

#[test]
fn serve_is_restricted_and_wired_to_its_config_and_certificate() {
    let docs = documents();
    let deployment: Deployment = typed(of_kind(&docs, "Deployment")[0]);
    let spec = deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    let service: Service = typed(of_kind(&docs, "Service")[0]);
    for (k, v) in service.spec.unwrap().selector.unwrap() {
        assert_eq!(
            labels.get(&k),
            Some(&v),
            "the Service selects the pods: {k}"
        );
    }
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let serve = container(&pod, "serve");
    let sc = serve.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert!(serve.resources.as_ref().unwrap().limits.is_some());
    for probe in [&serve.readiness_probe, &serve.liveness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        assert!(["/healthz", "/readyz"].contains(&get.path.as_deref().unwrap()));
    }
    // --config names the ConfigMap's file; the listener's certificate is the Secret's.
    let args = serve.args.as_ref().unwrap();
    let config = mount_of(&pod, "serve", "portcullis-config");
    assert!(args.contains(&format!("{config}/config.yaml")), "{args:?}");
    let tls = mount_of(&pod, "serve", "portcullis-tls");
    let text = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|m| m["metadata"]["name"] == "portcullis-config")
        .unwrap()["data"]["config.yaml"]
        .as_str()
        .unwrap();
    assert!(text.contains(&format!("certFile: {tls}/tls.crt, keyFile: {tls}/tls.key")));
    assert_eq!(
        mount_of(&pod, "serve", "portcullis-policies"),
        "/etc/portcullis/policies"
    );
}

#[test]
fn the_node_agents_reach_every_node_and_the_hosts_pids() {
    let docs = documents();
    let sets: Vec<DaemonSet> = of_kind(&docs, "DaemonSet").into_iter().map(typed).collect();
    assert_eq!(sets.len(), 2, "the proxy and the hook agents");
    for set in &sets {
        let name = set.metadata.name.clone().unwrap();
        let pod = set.spec.template.spec.clone().unwrap();
        assert_eq!(
            pod.priority_class_name.as_deref(),
            Some("system-node-critical"),
            "{name}"
        );
        let tolerations = pod.tolerations.clone().unwrap();
        assert!(
            tolerations
                .iter()
                .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none()),
            "{name}: tolerates every taint"
        );
    }
    // The hook agent's script copies from these paths.
    let hook = sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("portcullis-hook"))
        .unwrap();
    let pod = hook.spec.template.spec.clone().unwrap();
    let init = &pod.init_containers.as_ref().unwrap()[0];
    let script = init.command.as_ref().unwrap().join(" ");
    for (map, path) in [
        ("portcullis-node-config", "/etc/portcullis/config"),
        ("portcullis-node-policies", "/etc/portcullis/policies"),
    ] {
        assert_eq!(mount_of(&pod, &init.name, map), path);
        assert!(script.contains(path), "{script}");
    }
    let proxy = sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("portcullis-proxy"))
        .unwrap();
    let pod = proxy.spec.template.spec.clone().unwrap();
    assert_eq!(pod.host_pid, Some(true), "/proc/<pid>/ns of the callers");
    let init = &pod.init_containers.as_ref().unwrap()[0];
    let args = init.args.as_deref().unwrap();
    // The pod is the proxy: no host unit may start a second one on the socket.
    assert_eq!(args, ["install", "proxy", "--root", "/host", "--no-units"]);
    // And the binary takes those arguments (a dry run into an empty host).
    let host = tempfile::tempdir().unwrap();
    let args: Vec<&str> = args
        .iter()
        .map(|a| match a.as_str() {
            "/host" => host.path().to_str().unwrap(),
            a => a,
        })
        .chain(["--dry-run"])
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = container(&pod, "proxy");
    let script = main.command.as_ref().unwrap().join(" ");
    let config = mount_of(&pod, "proxy", "portcullis-node-config");
    assert!(
        script.contains(&format!("--config {config}/config.yaml")),
        "{script}"
    );
    assert_eq!(
        mount_of(&pod, "proxy", "portcullis-node-policies"),
        "/etc/portcullis/policies"
    );
}
