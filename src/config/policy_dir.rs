//! `policyDir:` — read when the config is loaded: every policy document in the directory,
//! as text. Compiling them (ValidatingAdmissionPolicy, MutatingAdmissionPolicy, bindings,
//! params) is `policy::vap`, when the decision core is built.

use std::path::{Path, PathBuf};

/// `policyDir:` as loaded: the directory and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDir {
    /// The directory, as the config names it.
    pub path: PathBuf,
    /// Every `*.yaml`, `*.yml` and `*.json` file in it, sorted by path: the file and its
    /// text (several documents a file).
    pub documents: Vec<(PathBuf, String)>,
}

impl PolicyDir {
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
        })
    }
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
}
