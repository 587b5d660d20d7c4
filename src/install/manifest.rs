//! What an install changed, kept so that `portcullis uninstall` can undo exactly that:
//! `/var/lib/portcullis/install/<component>/manifest.json` lists every file written (with
//! the SHA-256 of what was written, so a file changed since is not clobbered) and every
//! directory created; `originals/` beside it holds each replaced file as it was, byte for
//! byte and with its mode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::fsops::Root;

/// The installer's state directory on the host.
pub const STATE_DIR: &str = "/var/lib/portcullis/install";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `proxy`, `hooks` or `image-verifier`.
    pub component: String,
    /// Every file written, in the order first written.
    pub files: Vec<FileEntry>,
    /// Directories created (the component's state directory included), outermost first; removed
    /// in reverse order when empty.
    pub dirs: Vec<PathBuf>,
    /// What a later install of the same component must know that the files no longer say
    /// (e.g. containerd's address before the install moved it).
    #[serde(default)]
    pub notes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: PathBuf,
    /// SHA-256 of the bytes the install wrote.
    pub sha256: String,
    /// Where the file as it was before the first install is kept; `None`: the install
    /// created it.
    pub backup: Option<PathBuf>,
}

/// In [`STATE_DIR`]: the directories created to make it (itself included), shared by the
/// components and removed when the last one is uninstalled.
const STATE_DIRS: &str = "dirs.json";

/// Creates [`STATE_DIR`] if absent, recording the directories that made.
pub fn create_state_root(root: &Root) -> anyhow::Result<()> {
    let state = Path::new(STATE_DIR);
    let missing = root.missing_dirs(state)?;
    if missing.is_empty() {
        return Ok(());
    }
    root.create_dir(state)?;
    // The originals may hold what their files kept from others (registry credentials in
    // daemon.json): root's only, whatever mode the files had in their own directories.
    let at = root.at(state)?;
    std::fs::set_permissions(&at, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("{}", at.display()))?;
    let text = serde_json::to_string_pretty(&missing)? + "\n";
    root.write_atomic(&state.join(STATE_DIRS), text.as_bytes(), 0o600)
}

/// Once no component is installed, removes [`STATE_DIR`] and the directories made for it
/// (those still empty).
pub fn release_state_root(root: &Root) -> anyhow::Result<()> {
    let state = Path::new(STATE_DIR);
    let record = state.join(STATE_DIRS);
    let Ok(entries) = std::fs::read_dir(root.at(state)?) else {
        return Ok(());
    };
    let names: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    if names.iter().any(|n| n.as_os_str() != STATE_DIRS) {
        return Ok(());
    }
    let dirs: Vec<PathBuf> = match root.read(&record)? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        None => vec![state.to_path_buf()],
    };
    root.remove_file(&record)?;
    for d in dirs.iter().rev() {
        root.remove_dir_if_empty(d)?;
    }
    Ok(())
}

/// The component's state directory on the host.
pub fn dir(component: &str) -> PathBuf {
    Path::new(STATE_DIR).join(component)
}

fn file(component: &str) -> PathBuf {
    dir(component).join("manifest.json")
}

/// Where the original of `path` is kept.
pub fn backup_path(component: &str, path: &Path) -> PathBuf {
    dir(component)
        .join("originals")
        .join(path.strip_prefix("/").unwrap_or(path))
}

impl Manifest {
    /// The component's manifest, `None` if nothing is installed.
    pub fn load(root: &Root, component: &str) -> anyhow::Result<Option<Self>> {
        let path = file(component);
        let Some(bytes) = root.read(&path)? else {
            return Ok(None);
        };
        let manifest: Self = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not an install manifest; it records what `portcullis install {component}` changed — restore it from a backup",
                root.at(&path).unwrap_or(path.clone()).display()
            )
        })?;
        Ok(Some(manifest))
    }

    pub fn save(&self, root: &Root) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        root.write_atomic(&file(&self.component), text.as_bytes(), 0o600)
    }

    /// Forgets the manifest and the originals (after they are restored).
    pub fn remove(&self, root: &Root) -> anyhow::Result<()> {
        for entry in &self.files {
            if let Some(backup) = &entry.backup {
                root.remove_file(backup)?;
                let originals = dir(&self.component).join("originals");
                for parent in backup.ancestors().skip(1) {
                    if !parent.starts_with(&originals) || !root.remove_dir_if_empty(parent)? {
                        break;
                    }
                }
            }
        }
        root.remove_file(&file(&self.component))
    }
}
