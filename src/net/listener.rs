//! Unix listeners for the doors: `MODE[:USER:GROUP]` ownership and permissions (the mode
//! itself, [`ListenMode`], is parsed with the config).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::{Group, User};
use tokio::net::UnixListener;

use crate::config::ListenMode;

/// A `MODE[:USER:GROUP]` owner that does not exist on this host.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("no such user {0:?}")]
    User(String),
    #[error("no such group {0:?}")]
    Group(String),
}

/// The uid and gid `mode` names, looked up when the socket is bound.
fn owner(
    mode: &ListenMode,
) -> Result<(Option<nix::unistd::Uid>, Option<nix::unistd::Gid>), OwnerError> {
    let uid = match &mode.user {
        None => None,
        Some(u) => Some(match u.parse::<u32>() {
            Ok(n) => nix::unistd::Uid::from_raw(n),
            Err(_) => {
                User::from_name(u)
                    .ok()
                    .flatten()
                    .ok_or_else(|| OwnerError::User(u.clone()))?
                    .uid
            }
        }),
    };
    let gid = match &mode.group {
        None => None,
        Some(g) => Some(match g.parse::<u32>() {
            Ok(n) => nix::unistd::Gid::from_raw(n),
            Err(_) => {
                Group::from_name(g)
                    .ok()
                    .flatten()
                    .ok_or_else(|| OwnerError::Group(g.clone()))?
                    .gid
            }
        }),
    };
    Ok((uid, gid))
}

/// A socket someone still listens on is not stale: taking it would silently cut that
/// listener off from its clients — containerd itself, when the proxy starts on
/// containerd's address before containerd was moved (`portcullis install proxy`), or a
/// second proxy. Only a socket nobody answers on (`ECONNREFUSED`: its owner died, as after
/// `kill -9`) is replaced.
fn refuse_live(path: &Path) -> anyhow::Result<()> {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => anyhow::bail!(
            "{} is in use: something listens on it (containerd not yet moved by `portcullis install proxy`, or another instance); stop it or choose another listen path",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "{} exists and cannot be checked for a listener ({e}); refusing to replace it",
            path.display()
        )),
    }
}

/// Binds `path` (replacing a stale socket left by an earlier run, never a live one) and
/// applies `mode`.
pub fn bind(path: &Path, mode: &ListenMode) -> anyhow::Result<UnixListener> {
    use anyhow::Context;
    let (uid, gid) = owner(mode)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            refuse_live(path)?;
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale {}", path.display()))?
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(_) => {}
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode.mode))
        .with_context(|| format!("chmod {:o} {}", mode.mode, path.display()))?;
    if uid.is_some() || gid.is_some() {
        nix::unistd::chown(path, uid, gid).with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(listener)
}

/// After a failed `accept` (EMFILE and friends pass): logs it and waits a little before the
/// next one, while the connections there are keep being served.
pub async fn accept_failed(what: &str, error: &std::io::Error) {
    tracing::error!(%error, "accepting a {what} connection");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go programs (containerd, dockerd)
/// do at start: the usual soft limit, 1024, is below what `wanted` descriptors need. Below
/// `wanted` even then, a warning names `setting`; accepts past the limit fail with EMFILE
/// and are retried ([`accept_failed`]), the connections already open kept.
pub fn raise_fd_limit(wanted: u64, setting: &str) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard {
        if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(%error, soft, hard, "cannot raise RLIMIT_NOFILE to its hard limit");
        }
    }
    if hard < wanted {
        tracing::warn!(
            limit = hard,
            wanted,
            "RLIMIT_NOFILE is below the descriptors {setting} may need: raise LimitNOFILE= (systemd) or lower {setting}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_live_socket_is_refused_and_a_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("containerd.sock");
        let first = bind(&path, &ListenMode::default()).unwrap();
        let err = bind(&path, &ListenMode::default()).unwrap_err();
        assert!(err.to_string().contains("is in use"), "{err:#}");
        // Still the first listener's socket.
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        drop(first);
        // Nobody listens any more (as after kill -9): stale, replaced.
        let _second = bind(&path, &ListenMode::default()).unwrap();
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
    }
}
