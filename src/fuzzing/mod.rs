//! Entry points for the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) and their stable replay
//! (`tests/fuzz_corpus.rs`): one function per decoder of untrusted input, each driving the
//! real decode → convert → decide path as its door does, against one representative
//! config (Pod Security `restricted`, a CEL ValidatingAdmissionPolicy, the image rules).
//!
//! Every function must return for every input, without panicking and quickly: an input
//! that panics, hangs or takes seconds is a bug of the door it stands for. Outcomes are
//! discarded; only that the path ran to an answer matters.

mod containerd;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::config::Config;
use crate::convert::{nsresolve, pod, record, strict, PodOptions};
use crate::core::Decider;
use crate::hook::gate::Gate;
use crate::hook::request;
use crate::hook::state::State;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::review::wire::{self, ReviewVersion};
use crate::review::Door;
use crate::serve::routes::Routes;

/// The representative config: what a node operator would run. `{POLICY_DIR}` is replaced
/// by the directory [`fixture`] writes the CEL policy into.
const CONFIG: &str = r#"
proxy:
  containerd: {CONTAINERD}
  cri: admit
namespaces:
  default: {labels: {pod-security.kubernetes.io/enforce: restricted}}
  k8s.io: {labels: {pod-security.kubernetes.io/enforce: restricted}}
images:
  disallowLatest: true
  allowedRegistries: [docker.io, registry.example.com/team]
  deny: ["*miner*"]
policyDir: {POLICY_DIR}
"#;

const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: app-label}
spec:
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]}
  validations:
    - expression: "has(object.metadata.labels) && 'app' in object.metadata.labels"
      message: "every Pod needs an app label"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: app-label}
spec: {policyName: app-label, validationActions: [Deny]}
"#;

/// What every entry point shares, built once per process.
struct Fixture {
    dir: PathBuf,
    config: Config,
    runtime: tokio::runtime::Runtime,
    decider: Arc<ArcSwap<Decider>>,
    proxy: Proxy,
    /// The proxy in front of [`containerd::Stub`], whose answers the input gives.
    looked_up: Proxy,
    stub: containerd::Stub,
    routes: Routes,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Setup failures are the harness's, not an input's: they may panic.
        let dir = std::env::temp_dir().join(format!("portcullis-fuzz-{}", std::process::id()));
        let policies = dir.join("policies");
        std::fs::create_dir_all(&policies).expect("temp dir");
        std::fs::write(policies.join("policy.yaml"), POLICY).expect("policy file");
        let parse = |containerd: &Path| {
            let text = config_text(containerd, &policies);
            Config::parse(&text, Path::new("fuzz.yaml")).expect("fuzz config")
        };
        let config = parse(&no_containerd(&dir));
        let metrics = Arc::new(Metrics::new());
        let decider = Decider::new(&config)
            .expect("fuzz decider")
            .with_metrics(metrics.clone());
        let decider = Arc::new(ArcSwap::from_pointee(decider));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let proxy = Proxy::new(&config, decider.clone());
        let stub_socket = dir.join("containerd.sock");
        let stub = containerd::Stub::start(&runtime, &stub_socket);
        let looked_up = Proxy::new(&parse(&stub_socket), decider.clone());
        let routes = Routes {
            live: decider.clone(),
            metrics,
            max_request_bytes: 8 << 20,
            events: Default::default(),
        };
        Fixture {
            dir,
            config,
            runtime,
            decider,
            proxy,
            looked_up,
            stub,
            routes,
        }
    })
}

/// The config text with its paths.
fn config_text(containerd: &Path, policies: &Path) -> String {
    CONFIG
        .replace("{CONTAINERD}", &containerd.display().to_string())
        .replace("{POLICY_DIR}", &policies.display().to_string())
}

/// A containerd socket nobody listens on, so that the calls a door makes to containerd
/// fail fast and the door answers with that failure (every target but the `*_lookups`).
fn no_containerd(dir: &Path) -> PathBuf {
    dir.join("no-containerd.sock")
}

/// The gRPC request bytes a client sends on its connection to the proxy (after the
/// preface): HTTP/2 frames, HPACK header blocks, gRPC message framing, routing.
pub fn grpc_frames(data: &[u8]) {
    crate::proxy::fuzzing::frames(data);
}

/// The containerd methods the proxy admits, in the order the first input byte picks them.
pub const CONTAINERD_METHODS: &[(&str, &str)] = &[
    ("containerd.services.containers.v1.Containers", "Create"),
    ("containerd.services.containers.v1.Containers", "Update"),
    ("containerd.services.tasks.v1.Tasks", "Create"),
    ("containerd.services.tasks.v1.Tasks", "Update"),
    ("containerd.services.tasks.v1.Tasks", "Exec"),
    ("containerd.services.images.v1.Images", "Create"),
    ("containerd.services.images.v1.Images", "Update"),
];

/// The CRI methods the CRI door admits, in the order the first input byte picks them.
pub const CRI_METHODS: &[(&str, &str)] = &[
    ("runtime.v1.RuntimeService", "RunPodSandbox"),
    ("runtime.v1.RuntimeService", "CreateContainer"),
    ("runtime.v1.RuntimeService", "UpdateContainerResources"),
    ("runtime.v1.RuntimeService", "Exec"),
    ("runtime.v1.RuntimeService", "ExecSync"),
    ("runtime.v1.RuntimeService", "Attach"),
    ("runtime.v1.RuntimeService", "PortForward"),
    ("runtime.v1.ImageService", "PullImage"),
];

/// One admitted containerd request: the first byte picks the method
/// ([`CONTAINERD_METHODS`]), the rest is the protobuf message, sent in the `default`
/// namespace as the proxy's relay would hand it to admission.
pub fn containerd_request(data: &[u8]) {
    admitted(CONTAINERD_METHODS, "default", data);
}

/// One admitted containerd request whose lookups a containerd answers as the input says:
/// the method byte ([`CONTAINERD_METHODS`]), the answers to the proxy's own calls (a
/// count, then each as a big-endian u16 length and its bytes, for `containerd::LOOKUPS` in
/// order; `containerd::respond` reads them), then the request message.
pub fn containerd_lookups(data: &[u8]) {
    looked_up(CONTAINERD_METHODS, "default", data);
}

/// [`containerd_lookups`] for the CRI door ([`CRI_METHODS`]): the image, container and
/// sandbox statuses (and containerd's verbose `info` JSON in them) the CRI plugin answers.
pub fn cri_lookups(data: &[u8]) {
    looked_up(CRI_METHODS, "", data);
}

fn looked_up(methods: &[(&str, &str)], namespace: &str, data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some((answers, message)) = containerd::answers_and_message(rest) else {
        return;
    };
    let (service, method) = methods[pick as usize % methods.len()];
    let f = fixture();
    let _turn = f.stub.script(answers);
    let framed = crate::proxy::grpc::frame(message);
    f.runtime.block_on(crate::proxy::fuzzing::admit(
        &f.looked_up,
        service,
        method,
        namespace,
        framed,
    ));
}

/// One CRI request at the proxy's CRI door: the first byte picks the method
/// ([`CRI_METHODS`]), the rest is the protobuf message.
pub fn cri_request(data: &[u8]) {
    admitted(CRI_METHODS, "", data);
}

fn admitted(methods: &[(&str, &str)], namespace: &str, data: &[u8]) {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let (service, method) = methods[pick as usize % methods.len()];
    let f = fixture();
    let framed = crate::proxy::grpc::frame(message);
    f.runtime.block_on(crate::proxy::fuzzing::admit(
        &f.proxy, service, method, namespace, framed,
    ));
}

/// An OCI `config.json` (as runc reads it) or a containerd container record (`ctr
/// containers info`), converted to a Pod and decided, as `check` and the hook do.
pub fn oci_spec(data: &[u8]) {
    let f = fixture();
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let opts = PodOptions::new(&f.config);
    let record = if value.get("ociVersion").is_some() {
        let Ok(spec) = strict::parse_spec(data) else {
            return;
        };
        record::from_oci_config("default", "fuzz", &spec)
    } else {
        record::from_container_info("default", &value)
    };
    let Ok(mut record) = record else { return };
    nsresolve::resolve(&mut record);
    let Ok(pod) = pod::to_pod_value(&record, &opts) else {
        return;
    };
    let request = request::pod_request(pod, "fuzz");
    f.runtime
        .block_on(f.decider.load().admit(Door::Check, &request));
}

/// The hook door: the OCI state on stdin, then (after the first NUL byte) the bundle's
/// `config.json`, read, converted and decided as `portcullis hook` does.
pub fn hook(data: &[u8]) {
    let f = fixture();
    let (state, spec) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(state) = std::str::from_utf8(state) else {
        return;
    };
    let Ok(state) = State::parse(state) else {
        return;
    };
    let opts = f.decider_opts();
    let namespace = request::namespace(
        &state.annotations,
        &state.bundle,
        None,
        opts.kubernetes_namespace,
    );
    let Ok(spec) = strict::parse_spec(spec) else {
        return;
    };
    let Ok(request) = request::bundle_request(&namespace, &state.id, &spec, &opts, "fuzz") else {
        return;
    };
    let gate = Gate::from_config(f.config.clone());
    f.runtime.block_on(gate.decide(&request));
}

impl Fixture {
    fn decider_opts(&self) -> PodOptions {
        PodOptions::new(&self.config)
    }
}

/// The webhook server's endpoints an AdmissionReview (or raw object) is POSTed to, in the
/// order the first input byte picks them.
pub const SERVE_PATHS: &[&str] = &["/validate", "/mutate", "/validate_raw", "/admit", "/events"];

/// A request body to `serve`: the first byte picks the endpoint ([`SERVE_PATHS`]), the
/// rest is the body, answered by the same routes the listeners use.
pub fn admission_review(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    post(SERVE_PATHS[pick as usize % SERVE_PATHS.len()], body);
}

/// An ImageReview body POSTed to `serve`'s `/image_policy`.
pub fn image_review(data: &[u8]) {
    post("/image_policy", data);
}

fn post(path: &str, body: &[u8]) {
    let f = fixture();
    let Ok(req) = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(body)))
    else {
        return;
    };
    f.runtime.block_on(f.routes.handle(None, req));
}

/// A remote webhook's response body, read by the core's webhook client (as a v1 and a
/// v1beta1 answer, mutating and validating), its patch applied to a Pod as the chain applies it.
pub fn webhook_response(data: &[u8]) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "docker.io/library/busybox:1.36"}]}
    });
    for version in [ReviewVersion::V1, ReviewVersion::V1beta1] {
        for mutating in [true, false] {
            let Ok(answer) = wire::decode_response(data, version, "fuzz-uid", mutating) else {
                continue;
            };
            if let Some(patch) = answer.patch {
                let _ = crate::core::patched(&pod, &patch);
            }
        }
    }
}

/// The config file's text, parsed and validated as at startup and on every reload.
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // policyDir names a path: the fuzzed config may name any, so only the fixture's.
    let _ = Config::parse(text, Path::new("fuzz.yaml"));
}

/// One `policyDir` file (VAP, bindings, MutatingAdmissionPolicy, Gatekeeper templates and
/// constraints, ImageVerificationPolicy, params): loaded with the fixture's config, the
/// policies built, and one Pod decided by them.
pub fn policy_dir(data: &[u8]) {
    let f = fixture();
    let dir = f.dir.join("fuzzed-policies");
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("policy.yaml"), data).is_err()
    {
        return;
    }
    let text = config_text(&no_containerd(&f.dir), &dir);
    let Ok(config) = Config::parse(&text, Path::new("fuzz.yaml")) else {
        return;
    };
    let Ok(decider) = Decider::new(&config) else {
        return;
    };
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "docker.io/library/busybox:1.36"}]}
    });
    let request = request::pod_request(pod, "fuzz");
    f.runtime.block_on(decider.admit(Door::Check, &request));
}
