//! `policyDir` documents into Gatekeeper objects: every document of a `*.gatekeeper.sh`
//! group is read here or refused here, so that none sits in `policyDir` looking
//! enforced. Templates, Constraints and the process `Config` are collected first (a
//! Constraint may come before its template); `compile` then checks and compiles them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::types::*;
use crate::config::policy_dir::{is_gatekeeper_kind, yaml_documents, LoadIssue};

/// One document as found: its file, the line it starts on, and the object.
pub(crate) struct Found<T> {
    pub file: PathBuf,
    pub line: u64,
    pub text: String,
    pub object: T,
}

/// Every Gatekeeper document of `policyDir`, parsed but not yet checked.
#[derive(Default)]
pub(crate) struct Documents {
    pub templates: Vec<Found<ConstraintTemplate>>,
    pub constraints: Vec<Found<Constraint>>,
    pub configs: Vec<Found<GatekeeperConfig>>,
}

/// Reads the Gatekeeper documents of `docs`; the `ignored` (apiVersion, kind) are left
/// alone (`policyDirIgnore`). Every problem lands in `issues`, naming file and line.
pub(crate) fn documents(
    docs: &[(PathBuf, String)],
    ignored: &[(String, String)],
    issues: &mut Vec<LoadIssue>,
) -> Documents {
    let mut found = Documents::default();
    for (file, text) in docs {
        for doc in yaml_documents(text) {
            found.document(file, &doc, ignored, issues);
        }
    }
    found
}

/// The line a padded document's first content is on (1-based): comments and blank lines
/// before it are not the document.
fn first_line(doc: &str) -> u64 {
    let before = doc.lines().take_while(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    });
    before.count() as u64 + 1
}

impl Documents {
    fn document(
        &mut self,
        file: &Path,
        doc: &str,
        ignored: &[(String, String)],
        issues: &mut Vec<LoadIssue>,
    ) {
        // Syntax errors are `policy::vap`'s to report: it reads every document too.
        let Ok(Some(value)) = serde_saphyr::from_str::<Option<Value>>(doc) else {
            return;
        };
        let str_at = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind) = (str_at("apiVersion").to_owned(), str_at("kind").to_owned());
        if !is_gatekeeper_kind(&api_version)
            || ignored.contains(&(api_version.clone(), kind.clone()))
        {
            return;
        }
        let line = first_line(doc);
        let mut issue = |message: String| {
            issues.push(LoadIssue {
                file: file.to_path_buf(),
                line: Some(line),
                message,
            })
        };
        let (group, version) = api_version.split_once('/').unwrap_or((&api_version, ""));
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let what = format!("{kind} {}", crate::policy::quote(name));
        match group {
            TEMPLATE_GROUP if kind == TEMPLATE_KIND => {
                if !TEMPLATE_VERSIONS.contains(&version) {
                    issue(unsupported_version(
                        &what,
                        &api_version,
                        TEMPLATE_GROUP,
                        &TEMPLATE_VERSIONS,
                    ));
                } else {
                    self.push(file, line, doc, value, &what, &mut issue, |s, f| {
                        s.templates.push(f)
                    });
                }
            }
            CONSTRAINT_GROUP => {
                if !CONSTRAINT_VERSIONS.contains(&version) {
                    issue(unsupported_version(
                        &what,
                        &api_version,
                        CONSTRAINT_GROUP,
                        &CONSTRAINT_VERSIONS,
                    ));
                } else {
                    self.push(file, line, doc, value, &what, &mut issue, |s, f| {
                        s.constraints.push(f)
                    });
                }
            }
            CONFIG_GROUP if kind == CONFIG_KIND => {
                self.push(file, line, doc, value, &what, &mut issue, |s, f| {
                    s.configs.push(f)
                });
            }
            _ => issue(not_run(&api_version, &kind, &what)),
        }
    }

    /// Deserialises `value` as `T` and hands it to `keep`; a shape error names the object.
    #[allow(clippy::too_many_arguments)]
    fn push<T: serde::de::DeserializeOwned>(
        &mut self,
        file: &Path,
        line: u64,
        doc: &str,
        value: Value,
        what: &str,
        issue: &mut impl FnMut(String),
        keep: impl FnOnce(&mut Self, Found<T>),
    ) {
        match serde_json::from_value::<T>(value) {
            Ok(object) => keep(
                self,
                Found {
                    file: file.to_path_buf(),
                    line,
                    text: doc.to_owned(),
                    object,
                },
            ),
            Err(e) => issue(format!("{what}: {e}")),
        }
    }
}

fn unsupported_version(what: &str, api_version: &str, group: &str, versions: &[&str]) -> String {
    let versions: Vec<String> = versions.iter().map(|v| format!("{group}/{v}")).collect();
    format!(
        "{what}: apiVersion {api_version:?} is not supported; use {}",
        versions.join(" or ")
    )
}

/// A Gatekeeper kind Portcullis does not run: what it is, and what to do instead.
fn not_run(api_version: &str, kind: &str, what: &str) -> String {
    let group = api_version.split('/').next().unwrap_or_default();
    let why = match group {
        "mutations.gatekeeper.sh" => {
            "Gatekeeper mutation is not run by Portcullis; write the change as a \
             MutatingAdmissionPolicy"
        }
        "externaldata.gatekeeper.sh" => {
            "external data providers are not called from a host: templates that use \
             external_data are refused"
        }
        "expansion.gatekeeper.sh" => {
            "workload expansion has nothing to expand here: the doors see Pods, not workloads"
        }
        "syncset.gatekeeper.sh" => {
            "there is no API server to replicate objects from: data.inventory holds the \
             config's namespaces only"
        }
        _ => "Portcullis reads ConstraintTemplates, Constraints and the Config of Gatekeeper only",
    };
    format!(
        "{what}: apiVersion {api_version} kind {kind} is not run: {why}; remove it, or list \
         {{apiVersion: {api_version}, kind: {kind}}} under policyDirIgnore to keep it on purpose"
    )
}

/// The 1-based line of `file` where `source` (a block scalar of the document `doc`,
/// which starts at `doc_line`) begins, found by its first non-blank line; None if the
/// text cannot be located (flow scalars, escapes).
pub(crate) fn source_line(doc: &str, source: &str) -> Option<usize> {
    let first = source.lines().find(|l| !l.trim().is_empty())?.trim();
    let offset = source.lines().take_while(|l| l.trim().is_empty()).count();
    doc.lines()
        .position(|l| l.trim() == first)
        .map(|i| i + 1 - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Documents, Vec<LoadIssue>) {
        let mut issues = Vec::new();
        let docs = vec![(PathBuf::from("gk.yaml"), text.to_owned())];
        (documents(&docs, &[], &mut issues), issues)
    }

    #[test]
    fn gatekeeper_kinds_are_read_or_refused_by_name() {
        let (found, issues) = load(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n\
             apiVersion: mutations.gatekeeper.sh/v1\nkind: Assign\nmetadata: {name: a}\n---\n\
             apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sX\nmetadata: {name: c}\n",
        );
        assert_eq!(found.constraints.len(), 1);
        assert_eq!(found.constraints[0].line, 9);
        assert_eq!(issues.len(), 1, "{issues:?}");
        let m = issues[0].to_string();
        assert!(m.starts_with("gk.yaml:5: Assign \"a\""), "{m}");
        assert!(
            m.contains("MutatingAdmissionPolicy") && m.contains("policyDirIgnore"),
            "{m}"
        );
    }

    #[test]
    fn versions_and_shapes_are_checked() {
        let (_, issues) = load(
            "apiVersion: templates.gatekeeper.sh/v2\nkind: ConstraintTemplate\n\
             metadata: {name: t}\nspec: {}\n---\n\
             apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sX\nmetadata: {name: c}\n\
             spec: {enforcementActon: deny}\n",
        );
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues[0].message.contains("templates.gatekeeper.sh/v1 or"));
        assert!(
            issues[1].message.contains("enforcementActon"),
            "{}",
            issues[1]
        );
    }

    #[test]
    fn ignored_kinds_are_left_alone() {
        let mut issues = Vec::new();
        let text = "apiVersion: mutations.gatekeeper.sh/v1\nkind: Assign\nmetadata: {name: a}\n";
        let docs = vec![(PathBuf::from("gk.yaml"), text.to_owned())];
        let ignored = [("mutations.gatekeeper.sh/v1".to_owned(), "Assign".to_owned())];
        documents(&docs, &ignored, &mut issues);
        assert!(issues.is_empty());
    }

    #[test]
    fn source_lines_are_found_in_the_document() {
        let doc = "\n\nspec:\n  rego: |\n    package x\n\n    violation[{\"msg\": m}] { m := 1 }\n";
        assert_eq!(source_line(doc, "package x\n\nviolation..."), Some(5));
        assert_eq!(source_line(doc, "nothing like it"), None);
    }
}
