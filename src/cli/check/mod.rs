//! `portcullis check`: evaluate the configured policies offline, like `kyverno apply` or
//! `gator test`. Each INPUT is a Pod (YAML or JSON, several documents allowed), an OCI
//! `config.json`, a containerd container record (`ctr containers info`), an
//! AdmissionReview, or any other Kubernetes object (a CREATE of it; `objects`). Exit
//! codes: 0 all admitted, 1 any denied, 2 bad input or bad policy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::config::Config;
use crate::convert::{nsresolve, pod, record, PodOptions};
use crate::core::Decider;
use crate::review::{shape, AdmissionRequest, Verdict};

mod objects;

#[derive(clap::Args)]
pub struct Args {
    /// Config file (YAML): the policies to evaluate.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Namespace of inputs that carry none (OCI config.json, container records, Pods and
    /// other namespaced objects without one).
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    output: Output,
    /// Files to evaluate (`-` for standard input).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Human,
    Json,
}

/// One request read from an input file.
struct Case {
    source: String,
    request: AdmissionRequest,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let opts = PodOptions::new(&config);
    let mut cases = Vec::new();
    for input in &args.inputs {
        cases.extend(
            read_cases(input, &args.namespace, &opts)
                .with_context(|| format!("{}", input.display()))?,
        );
    }
    let decider = Decider::new(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut denied = false;
    let mut report = Vec::new();
    let mut text = String::new();
    for case in &cases {
        let verdict = runtime.block_on(decider.decide(&case.request));
        denied |= !verdict.is_allowed();
        match args.output {
            Output::Human => text.push_str(&human(case, &verdict)),
            Output::Json => report.push(json_record(case, &verdict)),
        }
    }
    if let Output::Json = args.output {
        text = serde_json::to_string_pretty(&report)? + "\n";
    }
    super::emit(&text)?;
    Ok(if denied {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn patch_of(case: &Case, verdict: &Verdict) -> Option<json_patch::Patch> {
    let before = case.request.object.as_ref()?;
    verdict
        .mutated()
        .map(|after| json_patch::diff(before, after))
}

fn human(case: &Case, verdict: &Verdict) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let what = format!(
        "{} ({} {}/{})",
        case.source,
        case.request.operation.as_str(),
        case.request.namespace,
        case.request.name
    );
    // Writing into a String cannot fail.
    if verdict.is_allowed() {
        let _ = writeln!(out, "{what}: admitted");
    } else {
        let _ = writeln!(out, "{what}: denied: {}", verdict.message());
    }
    for w in &verdict.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    if let Some(patch) = patch_of(case, verdict) {
        let patch = serde_json::to_string(&patch).unwrap_or_default();
        let _ = writeln!(out, "  patch: {patch}");
    }
    for r in &verdict.trail {
        let sep = if r.message.is_empty() { "" } else { ": " };
        let _ = writeln!(out, "  {} {:?}{sep}{}", r.policy, r.outcome, r.message);
    }
    out
}

fn json_record(case: &Case, verdict: &Verdict) -> Value {
    json!({
        "input": case.source,
        "operation": case.request.operation.as_str(),
        "namespace": case.request.namespace,
        "name": case.request.name,
        "allowed": verdict.is_allowed(),
        "status": verdict.status(),
        "warnings": verdict.warnings,
        "auditAnnotations": verdict.audit_annotations,
        "patch": patch_of(case, verdict),
        "policies": verdict.trail,
    })
}

fn read_cases(path: &Path, namespace: &str, opts: &PodOptions) -> anyhow::Result<Vec<Case>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path)?
    };
    let documents: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        // An OCI config.json is read again as runc reads it (no key twice under Go's fold,
        // `convert::strict`); Pods, reviews and container records are not runc's to read.
        Ok(v)
            if v["kind"].as_str().unwrap_or_default().is_empty()
                && v.get("ociVersion").is_some() =>
        {
            vec![crate::convert::strict::parse_spec(text.as_bytes())?]
        }
        Ok(v) => vec![v],
        Err(_) => serde_saphyr::from_multiple::<Value>(&text)
            .map_err(|e| anyhow::anyhow!("not JSON or YAML: {e}"))?,
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("input");
    let stem = stem.split('.').next().unwrap_or(stem);
    let mut cases = Vec::new();
    for (i, doc) in documents.into_iter().filter(|d| !d.is_null()).enumerate() {
        let source = if i == 0 {
            path.display().to_string()
        } else {
            format!("{}#{i}", path.display())
        };
        let request =
            to_request(doc, stem, namespace, opts).with_context(|| format!("document {i}"))?;
        cases.push(Case { source, request });
    }
    if cases.is_empty() {
        bail!("no document to evaluate");
    }
    Ok(cases)
}

/// Recognises what a document is and builds the request a door would have built.
fn to_request(
    doc: Value,
    stem: &str,
    namespace: &str,
    opts: &PodOptions,
) -> anyhow::Result<AdmissionRequest> {
    // Files have not been through the API server's schema check: every shape is checked
    // here (never indexed mutably on a guess), and errors name the field.
    if doc.is_array() {
        bail!("the document is a list; give one object per document, separated by `---`");
    }
    let kind = match doc.get("kind") {
        None | Some(Value::Null) => "",
        Some(Value::String(k)) => k.as_str(),
        Some(other) => bail!("kind: must be a string such as \"Pod\", not {other}"),
    };
    let pod = match kind {
        "AdmissionReview" => return objects::review_request(&doc, namespace),
        "Pod" => {
            let mut pod = doc;
            objects::fill_containers(&mut pod, "");
            shape::check_pod(&pod, "")?;
            default_namespace(&mut pod, namespace);
            pod
        }
        // Namespace paths and `/proc/<pid>/exe` hooks are resolved on this machine, as a door
        // on the node would; checking a spec captured elsewhere resolves them here.
        "" if doc.get("ociVersion").is_some() => {
            let mut record = record::from_oci_config(namespace, stem, &doc)?;
            nsresolve::resolve(&mut record);
            pod::to_pod_value(&record, opts)?
        }
        "" if doc.get("ID").is_some() && doc.get("Spec").is_some() => {
            let mut record = record::from_container_info(namespace, &doc)?;
            nsresolve::resolve(&mut record);
            pod::to_pod_value(&record, opts)?
        }
        "" => bail!(
            "kind: missing, and this is neither an OCI config.json (ociVersion) nor a container record (ID, Spec); add `kind: Pod` or `kind: AdmissionReview`"
        ),
        // Any other object is created as it is (a Namespace, a Service, a Constraint's
        // target): the Gatekeeper policies and ValidatingAdmissionPolicies judge it.
        _ => return objects::object_request(doc, namespace),
    };
    Ok(crate::hook::request::pod_request(pod, objects::USERNAME))
}

/// Pods (and other namespaced objects) without a namespace get `--namespace`, as `kubectl
/// apply` gives them the context's. `pod` has passed a shape check: an object whose
/// `metadata`, if any, is an object.
pub(super) fn default_namespace(pod: &mut Value, namespace: &str) {
    let Some(obj) = pod.as_object_mut() else {
        return;
    };
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    if let Some(meta) = meta.as_object_mut() {
        let unset = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty();
        if unset {
            meta.insert("namespace".into(), json!(namespace));
        }
    }
}
