//! Gatekeeper `policyDir`s made of the gatekeeper-library fixtures
//! (`tests/fixtures/gatekeeper-library`, unchanged upstream files): a template as the
//! library ships it and one of its sample Constraints, as is or with lines added to its
//! `spec` (an `enforcementAction`, scoped actions); the library's example objects as
//! JSON; and the words Gatekeeper's webhook answers with.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The library fixtures: `<template dir>/template.yaml`, `<template dir>/samples/...`.
pub const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/gatekeeper-library"
);

/// `spec` lines: the Constraint warns at every enforcement point.
pub const WARN: &str = "enforcementAction: warn";
/// `spec` lines: the Constraint is silent at admission (audit only).
pub const DRYRUN: &str = "enforcementAction: dryrun";
/// `spec` lines: warn at admission (`validation.gatekeeper.sh`), deny in audit
/// (`audit.gatekeeper.sh`).
pub const SCOPED_WARN_AT_ADMISSION_DENY_IN_AUDIT: &str = "enforcementAction: scoped
scopedEnforcementActions:
- action: warn
  enforcementPoints: [{name: validation.gatekeeper.sh}]
- action: deny
  enforcementPoints: [{name: audit.gatekeeper.sh}]";

/// One library template (its directory, e.g. `host-namespaces`) and one of its sample
/// Constraints (`samples/<sample>/constraint.yaml`), with `spec` lines added.
#[derive(Clone, Copy)]
pub struct LibraryPolicy<'a> {
    pub template: &'a str,
    pub sample: &'a str,
    /// YAML lines added at the top of the Constraint's `spec` (unindented).
    pub spec: &'a str,
}

impl<'a> LibraryPolicy<'a> {
    pub const fn new(template: &'a str, sample: &'a str) -> Self {
        Self {
            template,
            sample,
            spec: "",
        }
    }

    /// The same policy with `lines` added to the Constraint's `spec`.
    pub const fn with_spec(self, lines: &'a str) -> Self {
        Self {
            spec: lines,
            ..self
        }
    }

    /// The Constraint's YAML as written to the policyDir.
    pub fn constraint(&self) -> String {
        let sample = format!("samples/{}/constraint.yaml", self.sample);
        add_to_spec(&library_file(self.template, &sample), self.spec)
    }

    /// The Constraint's `metadata.name`.
    pub fn name(&self) -> String {
        let constraint: Value = serde_saphyr::from_str(&self.constraint()).unwrap();
        constraint["metadata"]["name"].as_str().unwrap().to_owned()
    }
}

/// A library file, e.g. `("host-namespaces", "template.yaml")`.
pub fn library_file(template: &str, file: &str) -> String {
    let path = Path::new(LIBRARY).join(template).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A library example object (`samples/...yaml`) as JSON.
pub fn library_object(template: &str, file: &str) -> Value {
    let text = library_file(template, file);
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{template}/{file}: {e}"))
}

/// `lines` inserted after the `spec:` line of `constraint`, indented as its children.
pub fn add_to_spec(constraint: &str, lines: &str) -> String {
    if lines.is_empty() {
        return constraint.to_owned();
    }
    let mut out = String::new();
    let mut added = false;
    for line in constraint.lines() {
        out.push_str(line);
        out.push('\n');
        if !added && line.trim_end() == "spec:" {
            for l in lines.lines() {
                out.push_str("  ");
                out.push_str(l);
                out.push('\n');
            }
            added = true;
        }
    }
    assert!(added, "no `spec:` line in\n{constraint}");
    out
}

/// Writes `dir/policies`: each policy's template (`<template>.template.yaml`) and
/// Constraint (`<template>.<sample>.yaml`). Returns the directory.
pub fn policy_dir(dir: &Path, policies: &[LibraryPolicy]) -> PathBuf {
    let policy_dir = dir.join("policies");
    std::fs::create_dir_all(&policy_dir).unwrap();
    for p in policies {
        let template = policy_dir.join(format!("{}.template.yaml", p.template));
        std::fs::write(template, library_file(p.template, "template.yaml")).unwrap();
        let constraint = policy_dir.join(format!("{}.{}.yaml", p.template, p.sample));
        std::fs::write(constraint, p.constraint()).unwrap();
    }
    policy_dir
}

/// A Portcullis config running `policy_dir` on `engines` (`[]`: the default engines,
/// Rego preferred, then CEL), with `extra` config lines.
pub fn config(policy_dir: &Path, engines: &[&str], extra: &str) -> String {
    let gatekeeper = if engines.is_empty() {
        String::new()
    } else {
        format!(
            "gatekeeper: {{engines: [{}], timeLimit: 2s}}\n",
            engines.join(", ")
        )
    };
    format!("policyDir: '{}'\n{gatekeeper}{extra}", policy_dir.display())
}

/// Gatekeeper's webhook refusal of one violation.
pub fn denial(constraint: &str, message: &str) -> String {
    format!(
        "admission webhook \"portcullis\" denied the request: {}",
        line(constraint, message)
    )
}

/// A violation as denials and warnings carry it: `[constraint] message`.
pub fn line(constraint: &str, message: &str) -> String {
    format!("[{constraint}] {message}")
}

/// An `admission.k8s.io/v1` AdmissionReview asking to CREATE `object` (a Pod in
/// `namespace`, or a cluster-scoped object when `namespace` is empty).
pub fn create_review(object: &Value, namespace: &str) -> Value {
    let kind = object["kind"].as_str().unwrap();
    let resource = format!("{}s", kind.to_lowercase());
    let mut request = json!({
        "uid": "7d3c4e2a-0c5f-4a51-9a4b-6f2d1e0b8c11",
        "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": resource},
        "name": object["metadata"]["name"],
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": object,
    });
    if !namespace.is_empty() {
        request["namespace"] = json!(namespace);
        let mut object = object.clone();
        object["metadata"]["namespace"] = json!(namespace);
        request["object"] = object;
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}
