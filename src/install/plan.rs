//! A plan: the files an install (or uninstall) would change, computed before anything is
//! touched, so that `--dry-run` shows exactly what `apply` then does, a second install finds
//! nothing to change, and an error in any input leaves every file as it was.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::fsops::{sha256, Root};
use super::manifest::{self, FileEntry, Manifest};

/// One file's change: `old` → `new` (`None`: absent).
#[derive(Debug, Clone)]
pub struct Change {
    pub path: PathBuf,
    pub old: Option<Vec<u8>>,
    pub new: Option<Vec<u8>>,
    /// The mode of a file created (an existing file keeps its own).
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub component: String,
    pub changes: Vec<Change>,
    /// Directories to create (install) or remove if empty (uninstall), in that order.
    pub dirs: Vec<PathBuf>,
    /// Recorded in the manifest (see [`Manifest::notes`]).
    pub notes: BTreeMap<String, String>,
}

impl Plan {
    pub fn new(component: &str) -> Self {
        Self {
            component: component.to_owned(),
            changes: Vec::new(),
            dirs: Vec::new(),
            notes: BTreeMap::new(),
        }
    }

    /// Plans `path` to hold `new`; nothing if it does already.
    pub fn write(
        &mut self,
        root: &Root,
        path: &Path,
        new: Vec<u8>,
        mode: u32,
    ) -> anyhow::Result<()> {
        let old = root.read(path)?;
        if old.as_deref() == Some(new.as_slice()) {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            self.dir(root, parent)?;
        }
        self.changes.push(Change {
            path: path.to_owned(),
            old,
            new: Some(new),
            mode,
        });
        Ok(())
    }

    /// Plans the directory `path` (and its missing parents).
    pub fn dir(&mut self, root: &Root, path: &Path) -> anyhow::Result<()> {
        for d in root.missing_dirs(path)? {
            if !self.dirs.contains(&d) {
                self.dirs.push(d);
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.dirs.is_empty()
    }

    /// The plan as a unified diff per file (`a/PATH`, `b/PATH`; `/dev/null` for a file
    /// created or removed), after the directories it creates or removes.
    pub fn diff(&self, creating: bool) -> String {
        let mut out = String::new();
        for d in &self.dirs {
            let verb = if creating {
                "mkdir"
            } else {
                "rmdir (if empty)"
            };
            let _ = writeln!(out, "{verb} {}", d.display());
        }
        for c in &self.changes {
            let text = |b: &Option<Vec<u8>>| {
                String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned()
            };
            let (old, new) = (text(&c.old), text(&c.new));
            let a = match c.old {
                Some(_) => format!("a{}", c.path.display()),
                None => "/dev/null".to_owned(),
            };
            let b = match c.new {
                Some(_) => format!("b{}", c.path.display()),
                None => "/dev/null".to_owned(),
            };
            let diff = similar::TextDiff::from_lines(&old, &new);
            let _ = write!(
                out,
                "{}",
                diff.unified_diff().context_radius(3).header(&a, &b)
            );
        }
        out
    }

    /// Carries the plan out: originals are backed up and the manifest written first, so
    /// that an install cut short can still be undone; then the directories, then each file
    /// atomically. Returns the files installed before and edited by someone since (see
    /// below).
    pub fn apply(&self, root: &Root) -> anyhow::Result<Vec<PathBuf>> {
        let mut edited = Vec::new();
        if self.is_empty() {
            return Ok(edited);
        }
        let mut m = Manifest::load(root, &self.component)?.unwrap_or_else(|| Manifest {
            component: self.component.clone(),
            ..Manifest::default()
        });
        manifest::create_state_root(root)?;
        for d in root.missing_dirs(&manifest::dir(&self.component))? {
            push_new(&mut m.dirs, d);
        }
        for d in &self.dirs {
            push_new(&mut m.dirs, d.clone());
        }
        m.notes.extend(self.notes.clone());
        for c in &self.changes {
            let new = c.new.as_deref().unwrap_or_default();
            if let Some(e) = m.files.iter_mut().find(|e| e.path == c.path) {
                // Installed before: the original kept then stays the one to restore. The
                // record of what the install wrote moves on only if the file was still as
                // the install left it: an edit made since (which this write builds on)
                // must go on stopping `uninstall` from putting the original back over it,
                // not be laundered by a second install.
                let untouched = c.old.as_deref().map(sha256).as_deref() == Some(&*e.sha256);
                if untouched {
                    e.sha256 = sha256(new);
                } else {
                    edited.push(c.path.clone());
                }
                continue;
            }
            let backup = match &c.old {
                Some(old) => {
                    let at = manifest::backup_path(&self.component, &c.path);
                    root.create_dir(at.parent().unwrap_or(Path::new("/")))?;
                    let mode = root.mode(&c.path)?.unwrap_or(0o600);
                    root.write_atomic(&at, old, mode)?;
                    Some(at)
                }
                None => None,
            };
            m.files.push(FileEntry {
                path: c.path.clone(),
                sha256: sha256(new),
                backup,
            });
        }
        root.create_dir(&manifest::dir(&self.component))?;
        m.save(root)?;
        for d in &self.dirs {
            root.create_dir(d)?;
        }
        for c in &self.changes {
            root.write_atomic(&c.path, c.new.as_deref().unwrap_or_default(), c.mode)?;
        }
        Ok(edited)
    }
}

fn push_new(dirs: &mut Vec<PathBuf>, d: PathBuf) {
    if !dirs.contains(&d) {
        dirs.push(d);
    }
}

/// What `portcullis uninstall COMPONENT` does: every file the install changed back to its
/// original, every file it created removed, its directories removed if empty. A file
/// changed since the install wrote it is someone else's edit: refused (naming each such
/// file) unless `force`.
pub fn uninstall_plan(
    root: &Root,
    component: &str,
    force: bool,
) -> anyhow::Result<(Plan, Manifest)> {
    let Some(m) = Manifest::load(root, component)? else {
        bail!(
            "nothing to uninstall: no {} (`portcullis install {component}` was not run{})",
            manifest::dir(component).join("manifest.json").display(),
            " with this --root"
        );
    };
    let mut plan = Plan::new(component);
    let mut conflicts = Vec::new();
    for e in &m.files {
        let now = root.read(&e.path)?;
        let changed = now.as_deref().map(sha256).as_deref() != Some(e.sha256.as_str());
        if changed && !(e.backup.is_none() && now.is_none()) {
            conflicts.push(format!(
                "{} changed since `portcullis install {component}` wrote it ({}){}",
                e.path.display(),
                if now.is_some() {
                    "its content differs"
                } else {
                    "it is gone"
                },
                also_installed_by(root, component, &e.path)?,
            ));
        }
        let new = match &e.backup {
            Some(b) => Some(root.read(b)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: the original of {} is missing; cannot restore it",
                    b.display(),
                    e.path.display()
                )
            })?),
            None => None,
        };
        if now != new {
            let mode = match &e.backup {
                Some(b) => root.mode(b)?.unwrap_or(0o644),
                None => 0o644,
            };
            plan.changes.push(Change {
                path: e.path.clone(),
                old: now,
                new,
                mode,
            });
        }
    }
    if !conflicts.is_empty() && !force {
        bail!(
            "{}; nothing was changed. Undo those edits, or pass --force to put back the originals anyway (the edits are lost)",
            conflicts.join("; ")
        );
    }
    plan.dirs = m.dirs.iter().rev().cloned().collect();
    Ok((plan, m))
}

/// When another component's install also wrote `path` (the proxy and the image verifier
/// both edit containerd's config.toml), the likely cause of a conflict and its fix: each
/// restores the file as it found it, so they are undone in the reverse order.
fn also_installed_by(root: &Root, component: &str, path: &Path) -> anyhow::Result<String> {
    for other in super::COMPONENTS.iter().filter(|c| **c != component) {
        if let Some(m) = Manifest::load(root, other)? {
            if m.files.iter().any(|e| e.path == path) {
                return Ok(format!(
                    "; `portcullis install {other}` changed it too: if that came after, run `portcullis uninstall {other}` first, then this one"
                ));
            }
        }
    }
    Ok(String::new())
}

/// Carries an uninstall plan out, then forgets the install.
pub fn uninstall_apply(root: &Root, plan: &Plan, m: &Manifest) -> anyhow::Result<()> {
    for c in &plan.changes {
        match &c.new {
            Some(bytes) => root.write_atomic(&c.path, bytes, c.mode)?,
            None => root.remove_file(&c.path)?,
        }
    }
    m.remove(root)?;
    for d in &plan.dirs {
        root.remove_dir_if_empty(d)?;
    }
    manifest::release_state_root(root)
}
