//! `policyDir:` — read when the config is loaded: every policy document in the directory,
//! as text. Compiling them (ValidatingAdmissionPolicy, MutatingAdmissionPolicy, bindings,
//! params) is `policy::vap`, when the decision core is built; Portcullis's own kinds
//! (`ImageVerificationPolicy`) are `signature::trust`'s. Both split files into documents
//! with [`yaml_documents`], and [`is_portcullis_kind`] says which reader a document is for.

use std::fmt;
use std::path::{Path, PathBuf};

/// `policyDir:` as loaded: the directory and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDir {
    /// The directory, as the config names it.
    pub path: PathBuf,
    /// Every `*.yaml`, `*.yml` and `*.json` file in it, sorted by path: the file and its
    /// text (several documents a file).
    pub documents: Vec<(PathBuf, String)>,
    /// `policyDirIgnore:` — kinds kept in the directory on purpose and read by nothing
    /// (`apiVersion`, `kind`); any other document no reader takes is an error.
    pub ignored_kinds: Vec<IgnoredKind>,
}

/// One `policyDirIgnore:` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IgnoredKind {
    pub api_version: String,
    pub kind: String,
}

impl PolicyDir {
    /// `policyDirIgnore` as (apiVersion, kind) pairs, as the readers take them.
    pub fn ignored_pairs(&self) -> Vec<(String, String)> {
        self.ignored_kinds
            .iter()
            .map(|k| (k.api_version.clone(), k.kind.clone()))
            .collect()
    }

    /// Reads every policy file in `dir` now. The error names the directory or the file
    /// that cannot be read, and why.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            })
            .collect();
        paths.sort();
        let mut documents = Vec::new();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            documents.push((path, text));
        }
        Ok(Self {
            path: dir.to_path_buf(),
            documents,
            ignored_kinds: Vec::new(),
        })
    }
}

/// One problem in a `policyDir` file, as every reader of the directory reports it
/// (`policy::vap`, `signature::trust`): the file, the line when known, what is wrong.
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

/// Why a reader cannot use the `policyDir` documents: every problem found, in file
/// order, one a line.
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

/// The API group of Portcullis's own `policyDir` kinds.
pub const PORTCULLIS_API_GROUP: &str = "portcullis.dev";
/// The kind of the image signature trust policy (docs/image-verification.md).
pub const IMAGE_VERIFICATION_POLICY_KIND: &str = "ImageVerificationPolicy";

/// sigstore policy-controller's API group (`ClusterImagePolicy`): its documents are
/// refused with a pointer to `ImageVerificationPolicy`, never silently ignored.
pub const SIGSTORE_POLICY_API_GROUP: &str = "policy.sigstore.dev";

/// Whether a document is Portcullis's own (any kind of the `portcullis.dev` group, an
/// `ImageVerificationPolicy` of any group, or a policy-controller document):
/// `signature::trust` reads or refuses those, so that a misspelt kind or apiVersion is an
/// error and never a params object of a ValidatingAdmissionPolicy.
pub fn is_portcullis_kind(api_version: &str, kind: &str) -> bool {
    let group = api_version.split('/').next();
    group == Some(PORTCULLIS_API_GROUP)
        || group == Some(SIGSTORE_POLICY_API_GROUP)
        || kind == IMAGE_VERIFICATION_POLICY_KIND
}

/// OPA Gatekeeper's API groups end in this (`templates.gatekeeper.sh`,
/// `constraints.gatekeeper.sh`, `config.gatekeeper.sh`, `mutations.gatekeeper.sh`, ...).
pub const GATEKEEPER_API_GROUP_SUFFIX: &str = ".gatekeeper.sh";

/// Whether a document belongs to Gatekeeper: `policy::gatekeeper` reads or refuses those,
/// so that none is ever a params object of a ValidatingAdmissionPolicy.
pub fn is_gatekeeper_kind(api_version: &str) -> bool {
    api_version
        .split('/')
        .next()
        .is_some_and(|group| group.ends_with(GATEKEEPER_API_GROUP_SUFFIX))
}

/// The documents of a multi-document YAML text, each padded with the blank lines before
/// it so that line numbers stay those of the file. A document starts at a `---` line.
pub fn yaml_documents(text: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_policy_files_sorted_and_skips_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), "b").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "a").unwrap();
        std::fs::write(dir.path().join("c.json"), "c").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let read = PolicyDir::read(dir.path()).unwrap();
        assert_eq!(read.path, dir.path());
        let names: Vec<_> = read
            .documents
            .iter()
            .map(|(p, t)| (p.file_name().unwrap().to_str().unwrap(), t.as_str()))
            .collect();
        assert_eq!(names, [("a.yaml", "a"), ("b.yml", "b"), ("c.json", "c")]);
        let missing = dir.path().join("missing");
        let e = PolicyDir::read(&missing).unwrap_err();
        assert!(e.starts_with(&missing.display().to_string()), "{e}");
    }

    #[test]
    fn documents_keep_their_line_numbers() {
        let docs = yaml_documents("a: 1\n---\nb: 2\n--- {c: 3}\n...\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0], "a: 1\n");
        assert_eq!(docs[1].lines().nth(2), Some("b: 2"));
        assert_eq!(docs[2].lines().nth(3), Some("    {c: 3}"));
    }

    #[test]
    fn portcullis_kinds() {
        assert!(is_portcullis_kind(
            "portcullis.dev/v1alpha1",
            "ImageVerificationPolicy"
        ));
        assert!(is_portcullis_kind("portcullis.dev/v1", "Typo"));
        assert!(is_portcullis_kind(
            "example.com/v1",
            "ImageVerificationPolicy"
        ));
        assert!(!is_portcullis_kind("example.com/v1", "Params"));
        assert!(!is_portcullis_kind("portcullis.devx/v1", "Params"));
        assert!(is_portcullis_kind(
            "policy.sigstore.dev/v1beta1",
            "ClusterImagePolicy"
        ));
    }
}
