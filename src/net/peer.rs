//! The caller on the other end of a unix socket (SO_PEERCRED), as an admission `userInfo`.

use std::collections::BTreeMap;

use nix::unistd::{Gid, Group, Uid, User};
use tokio::net::UnixStream;

use crate::review::UserInfo;

/// uid, gid and pid of a socket peer, as the kernel reports them at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

impl PeerCred {
    pub fn of(stream: &UnixStream) -> std::io::Result<Self> {
        let cred = stream.peer_cred()?;
        Ok(Self {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        })
    }

    /// The Kubernetes `userInfo` for this peer: `username` is the account name (or
    /// `uid:N` when the passwd database has none), `uid` the number, `groups` the names
    /// of the primary and supplementary groups of the calling process, and `extra`
    /// carries the raw numbers under `portcullis.dev/*` keys.
    pub fn user_info(&self) -> UserInfo {
        let username = User::from_uid(Uid::from_raw(self.uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("uid:{}", self.uid));
        let mut gids = vec![self.gid];
        if let Some(pid) = self.pid {
            gids.extend(
                supplementary_gids(pid)
                    .into_iter()
                    .filter(|g| *g != self.gid),
            );
        }
        let groups = gids.iter().map(|g| group_name(*g)).collect();
        let mut extra = BTreeMap::new();
        extra.insert("portcullis.dev/gid".to_string(), vec![self.gid.to_string()]);
        if let Some(pid) = self.pid {
            extra.insert("portcullis.dev/pid".to_string(), vec![pid.to_string()]);
        }
        UserInfo {
            username,
            uid: self.uid.to_string(),
            groups,
            extra,
        }
    }
}

fn group_name(gid: u32) -> String {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| format!("gid:{gid}"))
}

/// Supplementary groups of a live process, from `/proc/PID/status` (`Groups:` line). The
/// process may be gone already; then it has none we can name.
fn supplementary_gids(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}
