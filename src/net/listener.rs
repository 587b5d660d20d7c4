//! Unix listeners for the doors: `MODE[:USER:GROUP]` ownership and permissions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::{Group, User};
use tokio::net::UnixListener;

/// `listenMode`: octal permission bits, optionally with owner and group (names or numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenMode {
    pub mode: u32,
    pub user: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenModeError {
    #[error("{0:?} is not MODE[:USER:GROUP] with MODE in octal, e.g. \"0660:root:docker\"")]
    Syntax(String),
    #[error("no such user {0:?}")]
    User(String),
    #[error("no such group {0:?}")]
    Group(String),
}

impl ListenMode {
    pub fn parse(s: &str) -> Result<Self, ListenModeError> {
        let syntax = || ListenModeError::Syntax(s.to_string());
        let mut parts = s.split(':');
        let mode = parts.next().ok_or_else(syntax)?;
        let mode = u32::from_str_radix(mode, 8).map_err(|_| syntax())?;
        if mode > 0o7777 {
            return Err(syntax());
        }
        let user = parts.next().map(str::to_owned);
        let group = parts.next().map(str::to_owned);
        if parts.next().is_some() || user.is_some() != group.is_some() {
            return Err(syntax());
        }
        if matches!(&user, Some(u) if u.is_empty()) || matches!(&group, Some(g) if g.is_empty()) {
            return Err(syntax());
        }
        Ok(Self { mode, user, group })
    }

    fn owner(
        &self,
    ) -> Result<(Option<nix::unistd::Uid>, Option<nix::unistd::Gid>), ListenModeError> {
        let uid = match &self.user {
            None => None,
            Some(u) => Some(match u.parse::<u32>() {
                Ok(n) => nix::unistd::Uid::from_raw(n),
                Err(_) => {
                    User::from_name(u)
                        .ok()
                        .flatten()
                        .ok_or_else(|| ListenModeError::User(u.clone()))?
                        .uid
                }
            }),
        };
        let gid = match &self.group {
            None => None,
            Some(g) => Some(match g.parse::<u32>() {
                Ok(n) => nix::unistd::Gid::from_raw(n),
                Err(_) => {
                    Group::from_name(g)
                        .ok()
                        .flatten()
                        .ok_or_else(|| ListenModeError::Group(g.clone()))?
                        .gid
                }
            }),
        };
        Ok((uid, gid))
    }
}

/// Binds `path` (replacing a stale socket left by an earlier run) and applies `mode`.
pub fn bind(path: &Path, mode: &ListenMode) -> anyhow::Result<UnixListener> {
    use anyhow::Context;
    let (uid, gid) = mode.owner()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mode_forms() {
        assert_eq!(
            ListenMode::parse("0660").unwrap(),
            ListenMode {
                mode: 0o660,
                user: None,
                group: None
            }
        );
        let m = ListenMode::parse("0600:root:root").unwrap();
        assert_eq!(
            (m.mode, m.user.as_deref(), m.group.as_deref()),
            (0o600, Some("root"), Some("root"))
        );
        for bad in [
            "",
            "rw",
            "0999",
            "0660:root",
            "0660:root:root:x",
            "0660::root",
            "77777",
        ] {
            assert!(ListenMode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
