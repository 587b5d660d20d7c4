//! Loading: YAML documents into checked policies, bindings and params, every expression
//! compiled once. All problems are collected, each with its file (and line where the
//! YAML parser or the expression's position gives one).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check::{binding, mutating_binding, Loader};
use super::types::*;
// The loaded forms live in `compiled`, so that `check` (which builds them) does not import
// `load`, which drives it; `vap/mod.rs` still names them through here.
pub use super::compiled::LoadIssue;
pub(crate) use super::compiled::{Binding, Param, Policy};
pub use crate::config::policy_dir::LoadError;

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

/// Parses and checks every document. Must run on a thread with [`super::expr::STACK_BYTES`].
pub(crate) fn load(
    docs: &[(PathBuf, String)],
    ignored: &[(String, String)],
    readers: Readers,
) -> Result<Loaded, LoadError> {
    let mut issues = Vec::new();
    let mut found = Found {
        ignored: ignored.to_vec(),
        readers,
        ..Found::default()
    };
    for (file, text) in docs {
        let mut loader = Loader {
            file,
            issues: &mut issues,
        };
        for doc in crate::config::policy_dir::yaml_documents(text) {
            found.document(&mut loader, file, &doc);
        }
    }
    // Bindings are checked once every policy is known (a binding may come first); those
    // of a policy that failed to load are not reported again.
    let Found {
        policies,
        raw_bindings,
        mutating,
        raw_mutating_bindings,
        params,
        failed,
        failed_mutating,
        ..
    } = found;
    unread(&mut issues, &params, &policies, &mutating);
    let raw = raw_bindings
        .into_iter()
        .filter(|(_, b)| !failed.contains(&b.spec.policy_name));
    let bindings = check_bindings(&mut issues, raw, BINDING_KIND, |loader, b| {
        binding(loader, b, &policies)
    });
    let raw = raw_mutating_bindings
        .into_iter()
        .filter(|(_, b)| !failed_mutating.contains(&b.spec.policy_name));
    let mutating_bindings = check_bindings(&mut issues, raw, MUTATING_BINDING_KIND, |loader, b| {
        mutating_binding(loader, b, &mutating)
    });
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

/// Which documents another reader of `policyDir` takes, so that they are never params.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Readers {
    /// A user's `policyDir`: Portcullis's own kinds are `signature::trust`'s and
    /// Gatekeeper's are `policy::gatekeeper`'s.
    #[default]
    PolicyDir,
    /// Policies `policy::gatekeeper` generated from templates: the Constraints are the
    /// params objects of their bindings.
    Gatekeeper,
}

/// What the documents hold, before the bindings are checked against the policies.
#[derive(Default)]
struct Found {
    policies: Vec<Policy>,
    raw_bindings: Vec<(PathBuf, ValidatingAdmissionPolicyBinding)>,
    mutating: Vec<Policy>,
    raw_mutating_bindings: Vec<(PathBuf, MutatingAdmissionPolicyBinding)>,
    params: Vec<Param>,
    /// Policies that failed to load: their bindings are not reported again.
    failed: BTreeSet<String>,
    failed_mutating: BTreeSet<String>,
    /// `policyDirIgnore`: (apiVersion, kind) kept on purpose, read by nothing.
    ignored: Vec<(String, String)>,
    readers: Readers,
}

impl Found {
    /// One YAML document of `file`: a policy or binding of either kind, or a params object.
    fn document(&mut self, loader: &mut Loader, file: &Path, doc: &str) {
        let value: Option<serde_json::Value> = match serde_saphyr::from_str(doc) {
            Ok(v) => v,
            Err(e) => {
                loader.issue(None, e.to_string());
                return;
            }
        };
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return;
        };
        let header: Header = match serde_json::from_value(value.clone()) {
            Ok(h) => h,
            Err(e) => {
                loader.issue(None, format!("not a Kubernetes object: {e}"));
                return;
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
        } else {
            self.object(loader, file, doc, header, value);
        }
    }

    /// A document of a supported apiVersion, by its kind.
    fn object(
        &mut self,
        loader: &mut Loader,
        file: &Path,
        doc: &str,
        header: Header,
        value: serde_json::Value,
    ) {
        if header.kind == POLICY_KIND {
            match serde_saphyr::from_str::<ValidatingAdmissionPolicy>(doc) {
                Ok(p) => {
                    let name = p.metadata.name.clone();
                    match loader.policy(p) {
                        Some(p) => add_policy(loader, &mut self.policies, POLICY_KIND, p),
                        None => {
                            self.failed.insert(name);
                        }
                    }
                }
                Err(e) => loader.issue(None, format!("{POLICY_KIND}: {e}")),
            }
        } else if header.kind == BINDING_KIND {
            match serde_saphyr::from_str::<ValidatingAdmissionPolicyBinding>(doc) {
                Ok(b) => self.raw_bindings.push((file.to_path_buf(), b)),
                Err(e) => loader.issue(None, format!("{BINDING_KIND}: {e}")),
            }
        } else if header.kind == MUTATING_POLICY_KIND {
            let kind = MUTATING_POLICY_KIND;
            match serde_saphyr::from_str::<MutatingAdmissionPolicy>(doc) {
                Ok(p) => {
                    let name = p.metadata.name.clone();
                    match loader.mutating_policy(p) {
                        Some(p) => add_policy(loader, &mut self.mutating, kind, p),
                        None => {
                            self.failed_mutating.insert(name);
                        }
                    }
                }
                Err(e) => loader.issue(None, format!("{kind}: {e}")),
            }
        } else if header.kind == MUTATING_BINDING_KIND {
            match serde_saphyr::from_str::<MutatingAdmissionPolicyBinding>(doc) {
                Ok(b) => self.raw_mutating_bindings.push((file.to_path_buf(), b)),
                Err(e) => loader.issue(None, format!("{MUTATING_BINDING_KIND}: {e}")),
            }
        } else if !self.read_elsewhere(&header) {
            self.param(loader, file, header, value);
        }
    }

    /// Portcullis's own kinds and Gatekeeper's are read (or refused) by their source,
    /// never params; but for the policies generated from Gatekeeper templates.
    fn read_elsewhere(&self, header: &Header) -> bool {
        use crate::config::policy_dir::{is_gatekeeper_kind, is_portcullis_kind};
        match self.readers {
            Readers::PolicyDir => {
                is_portcullis_kind(&header.api_version, &header.kind)
                    || is_gatekeeper_kind(&header.api_version)
            }
            Readers::Gatekeeper => false,
        }
    }

    /// Any other object (but Portcullis's own kinds) is a params object, if it has the
    /// fields one needs.
    fn param(
        &mut self,
        loader: &mut Loader,
        file: &Path,
        header: Header,
        value: serde_json::Value,
    ) {
        if header.api_version.is_empty()
            || header.kind.is_empty()
            || header.metadata.name.is_empty()
        {
            loader.issue(
                None,
                "a document needs apiVersion, kind and metadata.name".into(),
            );
        } else {
            let kind = (header.api_version.clone(), header.kind.clone());
            if self.ignored.contains(&kind) {
                return;
            }
            self.params.push(Param {
                file: file.to_path_buf(),
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

/// A params object no policy's `spec.paramKind` names is read by nothing: an error, so
/// that a document Portcullis does not read (a Gatekeeper ConstraintTemplate, a
/// Kyverno policy, a misspelt kind) never sits in `policyDir` looking enforced.
fn unread(issues: &mut Vec<LoadIssue>, params: &[Param], policies: &[Policy], mutating: &[Policy]) {
    let named = |p: &Param| {
        policies.iter().chain(mutating).any(|policy| {
            policy
                .param_kind
                .as_ref()
                .is_some_and(|k| k.api_version == p.api_version && k.kind == p.kind)
        })
    };
    for p in params.iter().filter(|p| !named(p)) {
        issues.push(LoadIssue {
            file: p.file.clone(),
            line: None,
            message: format!(
                "apiVersion {} kind {} ({}) is not a kind Portcullis reads, and no policy's \
                 spec.paramKind names it, so nothing would enforce it; remove it, or list \
                 {{apiVersion: {}, kind: {}}} under policyDirIgnore to keep it on purpose",
                p.api_version, p.kind, p.name, p.api_version, p.kind
            ),
        });
    }
}

/// Checks each binding (of `kind`) with `check`, in file order, keeping the valid ones
/// whose name is not taken.
fn check_bindings<B>(
    issues: &mut Vec<LoadIssue>,
    raw: impl Iterator<Item = (PathBuf, B)>,
    kind: &str,
    mut check: impl FnMut(&mut Loader, B) -> Option<Binding>,
) -> Vec<Binding> {
    let mut bindings: Vec<Binding> = Vec::new();
    for (file, b) in raw {
        let mut loader = Loader {
            file: &file,
            issues: &mut *issues,
        };
        if let Some(b) = check(&mut loader, b) {
            add_binding(&mut loader, &mut bindings, kind, b);
        }
    }
    bindings
}
