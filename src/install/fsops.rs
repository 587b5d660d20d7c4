//! The file system as the installer sees it: every path under `--root`, written atomically
//! (temporary file beside the target, then rename) with the mode and owner the old file had,
//! and hashed as the manifest records it.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// `--root`: the directory every host path is read and written under (`/` on the host,
/// `/host` in a node agent's container, a temp dir in tests and image builds).
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    /// Where the host path `host` is under the root. Host paths are absolute: a relative
    /// one would be read against the installer's working directory, not the host's.
    pub fn at(&self, host: &Path) -> anyhow::Result<PathBuf> {
        let Ok(rel) = host.strip_prefix("/") else {
            bail!(
                "{}: not an absolute path; the installer writes host paths, give it as /…",
                host.display()
            );
        };
        Ok(self.0.join(rel))
    }

    /// [`Root::at`] for a file the installer reads or replaces. A symbolic link is refused:
    /// replacing it would turn the link into a copy (and uninstall could not put the link
    /// back), and under a `--root` other than `/` a link, the file's or a directory's on
    /// the way, may lead out of the root, to the machine running the install.
    fn file(&self, host: &Path) -> anyhow::Result<PathBuf> {
        let path = self.at(host)?;
        let is_link = |p: &Path| {
            p.symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
        };
        if is_link(&path) {
            bail!(
                "{} is a symbolic link; the installer replaces files, not links: name the file it points to instead",
                path.display()
            );
        }
        if self.0 != Path::new("/") {
            for dir in host.ancestors().skip(1) {
                let at = self.at(dir)?;
                if dir != Path::new("/") && is_link(&at) {
                    bail!(
                        "{} is a symbolic link: under --root {} it may lead out of the root; replace it by the directory it points to",
                        at.display(),
                        self.0.display()
                    );
                }
            }
        }
        Ok(path)
    }

    /// The file's bytes, `None` if it does not exist.
    pub fn read(&self, host: &Path) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.file(host)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The file as text (config files: TOML, JSON, YAML), `None` if it does not exist.
    pub fn read_text(&self, host: &Path) -> anyhow::Result<Option<String>> {
        let Some(bytes) = self.read(host)? else {
            return Ok(None);
        };
        let at = self.at(host)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", at.display()))?;
        Ok(Some(text))
    }

    pub fn exists(&self, host: &Path) -> anyhow::Result<bool> {
        Ok(self.at(host)?.symlink_metadata().is_ok())
    }

    /// The directories missing on the way to `host` (itself included), outermost first.
    pub fn missing_dirs(&self, host: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let mut missing = Vec::new();
        for dir in host.ancestors() {
            if dir == Path::new("/") || self.exists(dir)? {
                break;
            }
            missing.push(dir.to_path_buf());
        }
        missing.reverse();
        Ok(missing)
    }

    pub fn create_dir(&self, host: &Path) -> anyhow::Result<()> {
        let path = self.at(host)?;
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))
    }

    /// Writes `bytes` to `host` atomically: a reader sees the old file or the new one, never
    /// part of either. An existing file's mode and owner carry over; a new file gets `mode`.
    pub fn write_atomic(&self, host: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
        let path = self.file(host)?;
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file name", path.display()))?;
        let tmp = path.with_file_name(format!(".{}.portcullis-new", name.to_string_lossy()));
        let old = std::fs::metadata(&path).ok();
        let result = (|| -> std::io::Result<()> {
            // A new file of our own: never one that was there (or a link someone left).
            let _ = std::fs::remove_file(&tmp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
            let mode = old.as_ref().map_or(mode, |m| m.mode() & 0o7777);
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            if let Some(m) = &old {
                std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()))?;
            }
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.with_context(|| format!("writing {}", path.display()))
    }

    pub fn remove_file(&self, host: &Path) -> anyhow::Result<()> {
        let path = self.file(host)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// Removes `host` if it is an empty directory; a directory someone has put files in
    /// since stays.
    pub fn remove_dir_if_empty(&self, host: &Path) -> anyhow::Result<bool> {
        let path = self.at(host)?;
        let empty = std::fs::read_dir(&path).is_ok_and(|mut entries| entries.next().is_none());
        if empty {
            std::fs::remove_dir(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(empty)
    }

    /// Holds every other install and uninstall under this root off until dropped: two at
    /// once would each plan against files the other is replacing, and the second manifest
    /// written would lose the first's backups. The lock is `flock` on the root directory
    /// itself, so it needs no file of its own and ends with the process however it ends.
    pub fn lock(&self) -> anyhow::Result<Lock> {
        use nix::fcntl::{Flock, FlockArg};
        let dir =
            std::fs::File::open(&self.0).with_context(|| format!("--root {}", self.0.display()))?;
        let dir = match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(Lock(held)),
            Err((dir, nix::errno::Errno::EWOULDBLOCK)) => dir,
            Err((_, e)) => bail!("locking {} for the install: {e}", self.0.display()),
        };
        eprintln!(
            "waiting for another portcullis install or uninstall under {} to finish",
            self.0.display()
        );
        Flock::lock(dir, FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| anyhow::anyhow!("locking {} for the install: {e}", self.0.display()))
    }

    /// The mode of an existing file (for backups, which keep it).
    pub fn mode(&self, host: &Path) -> anyhow::Result<Option<u32>> {
        Ok(std::fs::metadata(self.at(host)?)
            .ok()
            .map(|m| m.mode() & 0o7777))
    }
}

/// [`Root::lock`] held.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

/// SHA-256 of `bytes`, hex, as `sha256sum` prints it.
pub fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_root_and_writes_keep_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        assert!(root.at(Path::new("etc/x")).is_err());
        let f = Path::new("/etc/a/b.conf");
        assert_eq!(
            root.missing_dirs(f).unwrap(),
            vec![PathBuf::from("/etc"), PathBuf::from("/etc/a"), f.into()]
        );
        root.create_dir(Path::new("/etc/a")).unwrap();
        root.write_atomic(f, b"one", 0o600).unwrap();
        assert_eq!(root.mode(f).unwrap(), Some(0o600));
        root.write_atomic(f, b"two", 0o644).unwrap();
        assert_eq!(
            root.mode(f).unwrap(),
            Some(0o600),
            "an existing mode is kept"
        );
        assert_eq!(root.read(f).unwrap().unwrap(), b"two");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("etc/a/link")).unwrap();
        let err = root.read(Path::new("/etc/a/link")).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        std::os::unix::fs::symlink("/etc", dir.path().join("etc/up")).unwrap();
        let err = root.read(Path::new("/etc/up/passwd")).unwrap_err();
        assert!(
            err.to_string().contains("may lead out of the root"),
            "{err}"
        );
        let held = root.lock().unwrap();
        let other = std::fs::File::open(dir.path()).unwrap();
        let busy = nix::fcntl::Flock::lock(other, nix::fcntl::FlockArg::LockExclusiveNonblock);
        assert!(busy.is_err(), "a second install under the root waits");
        drop(held);
        drop(root.lock().unwrap());
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
