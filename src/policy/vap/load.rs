//! Loading: YAML documents into checked policies, bindings and params, every expression
//! compiled once. All problems are collected, each with its file (and line where the
//! YAML parser or the expression's position gives one).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::expr::Program;

use super::check::{binding, mutating_binding, Loader};
use super::types::*;

/// A compiled expression and its source text.
pub(crate) struct Compiled {
    pub source: String,
    pub program: Program,
}

pub(crate) struct CompiledValidation {
    pub expression: Compiled,
    pub message: Option<String>,
    pub message_expression: Option<Compiled>,
    pub reason: String,
}

/// One of a MutatingAdmissionPolicy's `mutations`.
pub(crate) struct CompiledMutation {
    pub patch_type: PatchType,
    pub expression: Compiled,
}

/// A ValidatingAdmissionPolicy (with validations and audit annotations) or a
/// MutatingAdmissionPolicy (with mutations).
pub(crate) struct Policy {
    pub name: String,
    pub param_kind: Option<ParamKind>,
    pub match_constraints: MatchResources,
    pub failure_policy: FailurePolicy,
    pub match_conditions: Vec<(String, Compiled)>,
    pub variables: Vec<(String, Compiled)>,
    pub validations: Vec<CompiledValidation>,
    pub audit_annotations: Vec<(String, Compiled)>,
    pub mutations: Vec<CompiledMutation>,
}

pub(crate) struct Binding {
    pub name: String,
    pub policy: usize,
    pub param_ref: Option<ParamRef>,
    pub match_resources: Option<MatchResources>,
    pub actions: Vec<ValidationAction>,
}

/// A params object: any document that is not a policy or a binding of either kind.
pub(crate) struct Param {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub value: Arc<serde_json::Value>,
}

pub(crate) struct Loaded {
    pub policies: Vec<Policy>,
    pub bindings: Vec<Binding>,
    /// MutatingAdmissionPolicies and their bindings, in file order.
    pub mutating: Vec<Policy>,
    pub mutating_bindings: Vec<Binding>,
    pub params: Vec<Param>,
}

/// Adds `policy` to `policies` unless one of that name is already there.
fn add_policy(loader: &mut Loader, policies: &mut Vec<Policy>, kind: &str, policy: Policy) {
    if policies.iter().any(|q| q.name == policy.name) {
        let m = format!(
            "{kind} {} is defined twice",
            crate::policy::quote(&policy.name)
        );
        loader.issue(None, m);
    } else {
        policies.push(policy);
    }
}

/// Adds `binding` to `bindings` unless one of that name is already there.
fn add_binding(loader: &mut Loader, bindings: &mut Vec<Binding>, kind: &str, binding: Binding) {
    if bindings.iter().any(|c| c.name == binding.name) {
        let m = format!(
            "{kind} {} is defined twice",
            crate::policy::quote(&binding.name)
        );
        loader.issue(None, m);
    } else {
        bindings.push(binding);
    }
}

/// One problem in the policy files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadIssue {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for LoadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Why the policy files cannot be used: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub issues: Vec<LoadIssue>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.issues.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// The documents of a multi-document YAML text, each padded with the blank lines before
/// it so that line numbers stay those of the file. A document starts at a `---` line.
fn documents(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let is_marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if is_marker {
            docs.push(std::mem::take(&mut current));
            current = "\n".repeat(line_no);
            // Content after the marker (`--- {a: 1}`) stays on its line and column.
            current.push_str("   ");
            current.push_str(&line[3..]);
        } else if line.starts_with("...") && line[3..].trim().is_empty() {
            current.push('\n');
        } else {
            current.push_str(line);
        }
    }
    docs.push(current);
    docs
}

/// Parses and checks every document. Must run on a thread with [`super::expr::STACK_BYTES`].
pub(crate) fn load(docs: &[(PathBuf, String)]) -> Result<Loaded, LoadError> {
    let mut issues = Vec::new();
    let mut policies: Vec<Policy> = Vec::new();
    let mut raw_bindings: Vec<(PathBuf, ValidatingAdmissionPolicyBinding)> = Vec::new();
    let mut mutating: Vec<Policy> = Vec::new();
    let mut raw_mutating_bindings: Vec<(PathBuf, MutatingAdmissionPolicyBinding)> = Vec::new();
    let mut params = Vec::new();
    // Policies that failed to load: their bindings are not reported again.
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut failed_mutating: BTreeSet<String> = BTreeSet::new();
    for (file, text) in docs {
        let mut loader = Loader {
            file,
            issues: &mut issues,
        };
        for doc in documents(text) {
            let value: Option<serde_json::Value> = match serde_saphyr::from_str(&doc) {
                Ok(v) => v,
                Err(e) => {
                    loader.issue(None, e.to_string());
                    continue;
                }
            };
            let Some(value) = value.filter(|v| !v.is_null()) else {
                continue;
            };
            let header: Header = match serde_json::from_value(value.clone()) {
                Ok(h) => h,
                Err(e) => {
                    loader.issue(None, format!("not a Kubernetes object: {e}"));
                    continue;
                }
            };
            let versions: &[&str] = match header.kind.as_str() {
                POLICY_KIND | BINDING_KIND => &[API_VERSION],
                MUTATING_POLICY_KIND | MUTATING_BINDING_KIND => &MUTATING_API_VERSIONS,
                _ => &[],
            };
            if !versions.is_empty() && !versions.contains(&header.api_version.as_str()) {
                loader.issue(
                    None,
                    format!(
                        "{} {}: apiVersion {} is not supported; use {}",
                        header.kind,
                        crate::policy::quote(&header.metadata.name),
                        crate::policy::quote(&header.api_version),
                        versions.join(" or ")
                    ),
                );
            } else if header.kind == POLICY_KIND {
                match serde_saphyr::from_str::<ValidatingAdmissionPolicy>(&doc) {
                    Ok(p) => {
                        let name = p.metadata.name.clone();
                        match loader.policy(p) {
                            Some(p) => add_policy(&mut loader, &mut policies, POLICY_KIND, p),
                            None => {
                                failed.insert(name);
                            }
                        }
                    }
                    Err(e) => loader.issue(None, format!("{POLICY_KIND}: {e}")),
                }
            } else if header.kind == BINDING_KIND {
                match serde_saphyr::from_str::<ValidatingAdmissionPolicyBinding>(&doc) {
                    Ok(b) => raw_bindings.push((file.clone(), b)),
                    Err(e) => loader.issue(None, format!("{BINDING_KIND}: {e}")),
                }
            } else if header.kind == MUTATING_POLICY_KIND {
                let kind = MUTATING_POLICY_KIND;
                match serde_saphyr::from_str::<MutatingAdmissionPolicy>(&doc) {
                    Ok(p) => {
                        let name = p.metadata.name.clone();
                        match loader.mutating_policy(p) {
                            Some(p) => add_policy(&mut loader, &mut mutating, kind, p),
                            None => {
                                failed_mutating.insert(name);
                            }
                        }
                    }
                    Err(e) => loader.issue(None, format!("{kind}: {e}")),
                }
            } else if header.kind == MUTATING_BINDING_KIND {
                match serde_saphyr::from_str::<MutatingAdmissionPolicyBinding>(&doc) {
                    Ok(b) => raw_mutating_bindings.push((file.clone(), b)),
                    Err(e) => loader.issue(None, format!("{MUTATING_BINDING_KIND}: {e}")),
                }
            } else if header.api_version.is_empty()
                || header.kind.is_empty()
                || header.metadata.name.is_empty()
            {
                loader.issue(
                    None,
                    "a document needs apiVersion, kind and metadata.name".into(),
                );
            } else {
                params.push(Param {
                    api_version: header.api_version,
                    kind: header.kind,
                    name: header.metadata.name,
                    namespace: header.metadata.namespace,
                    labels: header.metadata.labels,
                    value: Arc::new(value),
                });
            }
        }
    }
    let mut bindings: Vec<Binding> = Vec::new();
    for (file, b) in raw_bindings {
        let mut loader = Loader {
            file: &file,
            issues: &mut issues,
        };
        if failed.contains(&b.spec.policy_name) {
            continue;
        }
        if let Some(b) = binding(&mut loader, b, &policies) {
            add_binding(&mut loader, &mut bindings, BINDING_KIND, b);
        }
    }
    let mut mutating_bindings: Vec<Binding> = Vec::new();
    for (file, b) in raw_mutating_bindings {
        let mut loader = Loader {
            file: &file,
            issues: &mut issues,
        };
        if failed_mutating.contains(&b.spec.policy_name) {
            continue;
        }
        if let Some(b) = mutating_binding(&mut loader, b, &mutating) {
            add_binding(
                &mut loader,
                &mut mutating_bindings,
                MUTATING_BINDING_KIND,
                b,
            );
        }
    }
    if issues.is_empty() {
        Ok(Loaded {
            policies,
            bindings,
            mutating,
            mutating_bindings,
            params,
        })
    } else {
        Err(LoadError { issues })
    }
}
