//! The caller on the other end of a unix socket, as an admission `userInfo`: uid, gid and
//! pid from SO_PEERCRED and supplementary groups from SO_PEERGROUPS, both as the kernel
//! recorded them when the peer called connect(). Read at accept, never later: a pid read
//! after the peer has gone may name another process, which must not lend us its groups.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::unistd::{Gid, Group, Uid, User};
use tokio::net::UnixStream;

use crate::review::UserInfo;

/// uid, gid, pid and supplementary groups of a socket peer, as the kernel reports them at
/// connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCred {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// Supplementary groups (may include `gid`); empty when they could not be read safely.
    pub groups: Vec<u32>,
}

impl PeerCred {
    /// Call at accept: the groups' fallback reads `/proc/PID`, which is only the peer's
    /// while the peer lives.
    pub fn of(stream: &UnixStream) -> std::io::Result<Self> {
        let cred = stream.peer_cred()?;
        let pid = cred.pid();
        let groups = match peer_groups(stream.as_fd()) {
            Ok(groups) => groups,
            Err(e) => {
                let from_proc = pid.and_then(|p| groups_from_proc(p, cred.uid(), cred.gid()));
                if from_proc.is_none() {
                    tracing::warn!(
                        error = %e,
                        pid,
                        "SO_PEERGROUPS failed and /proc gave no stable answer; the caller gets no supplementary groups"
                    );
                }
                from_proc.unwrap_or_default()
            }
        };
        Ok(Self {
            uid: cred.uid(),
            gid: cred.gid(),
            pid,
            groups,
        })
    }

    /// The Kubernetes `userInfo` for this peer: `username` is the account name (or
    /// `uid:N` when the passwd database has none), `uid` the number, `groups` the names
    /// of the primary and supplementary groups of the calling process (as at connect), and `extra`
    /// carries the raw numbers under `portcullis.dev/*` keys.
    pub fn user_info(&self) -> UserInfo {
        let username = User::from_uid(Uid::from_raw(self.uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("uid:{}", self.uid));
        let mut gids = vec![self.gid];
        for g in &self.groups {
            if !gids.contains(g) {
                gids.push(*g);
            }
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

/// `SO_PEERGROUPS` (Linux 4.13, include/uapi/asm-generic/socket.h; sparc numbers it
/// apart). libc 0.2 does not export it for every target, hence our own constant.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_PEERGROUPS: nix::libc::c_int = 59;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERGROUPS: nix::libc::c_int = 0x3d;

/// The supplementary groups the peer had at connect(), from the socket itself. The kernel
/// answers ERANGE with the size it needs when the buffer is short (net/core/sock.c).
#[allow(unsafe_code)]
pub fn peer_groups(fd: BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    use nix::libc::{c_void, getsockopt, gid_t, socklen_t, SOL_SOCKET};
    let mut groups: Vec<gid_t> = vec![0; 64];
    // Twice at most: the groups were fixed at connect(), so the size asked for fits.
    for _ in 0..2 {
        let capacity = groups.len() * std::mem::size_of::<gid_t>();
        let mut len = socklen_t::try_from(capacity).map_err(std::io::Error::other)?;
        // SAFETY: `groups` is a live, writable buffer of exactly `len` bytes; the kernel
        // writes at most `len` bytes into it and stores the byte count in `len`. The fd
        // is borrowed, so open for the whole call.
        let rc = unsafe {
            getsockopt(
                fd.as_raw_fd(),
                SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast::<c_void>(),
                &mut len,
            )
        };
        let len = usize::try_from(len).map_err(std::io::Error::other)?;
        if rc == 0 {
            groups.truncate(len.min(capacity) / std::mem::size_of::<gid_t>());
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(nix::libc::ERANGE) || len <= capacity {
            return Err(err);
        }
        groups = vec![0; len.div_ceil(std::mem::size_of::<gid_t>())];
    }
    Err(std::io::Error::other(
        "SO_PEERGROUPS kept asking for a larger buffer",
    ))
}

/// The fallback for kernels without SO_PEERGROUPS: `Groups:` of `/proc/PID/status`,
/// trusted only if the process's start time (field 22 of `/proc/PID/stat`) is the same
/// before and after, so a pid that changed hands in between gives nothing, and if its
/// effective uid and gid are the ones SO_PEERCRED recorded, so a pid already reused by
/// another user gives nothing either. `None` when a read fails or a check does not hold.
pub fn groups_from_proc(pid: i32, uid: u32, gid: u32) -> Option<Vec<u32>> {
    let before = start_time(pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let after = start_time(pid)?;
    if before != after {
        tracing::warn!(
            pid,
            "pid reused while reading its groups; no supplementary groups"
        );
        return None;
    }
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
    // `Uid:`/`Gid:` list real, effective, saved and filesystem ids; SO_PEERCRED has the
    // effective ones.
    let effective =
        |name: &str| -> Option<u32> { field(name)?.split_whitespace().nth(1)?.parse().ok() };
    if effective("Uid:")? != uid || effective("Gid:")? != gid {
        tracing::warn!(
            pid,
            "pid now belongs to another user; no supplementary groups"
        );
        return None;
    }
    Some(
        field("Groups:")?
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
    )
}

/// Field 22 (`starttime`) of `/proc/PID/stat`.
fn start_time(pid: i32) -> Option<u64> {
    parse_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `comm` (field 2) may hold spaces and parentheses: fields are counted from the last `)`,
/// after which comes field 3.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sorted(mut v: Vec<u32>) -> Vec<u32> {
        v.sort_unstable();
        v.dedup();
        v
    }

    fn our_groups() -> Vec<u32> {
        sorted(
            nix::unistd::getgroups()
                .unwrap()
                .into_iter()
                .map(Gid::as_raw)
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_socket_pair_reports_our_own_credentials_and_groups() {
        let (a, _b) = UnixStream::pair().unwrap();
        let cred = PeerCred::of(&a).unwrap();
        assert_eq!(cred.uid, nix::unistd::getuid().as_raw());
        assert_eq!(cred.gid, nix::unistd::getgid().as_raw());
        assert_eq!(cred.pid, Some(i32::try_from(std::process::id()).unwrap()));
        assert_eq!(sorted(cred.groups.clone()), our_groups());
        // The /proc fallback agrees while the process lives.
        let pid = cred.pid.unwrap();
        let (uid, gid) = (cred.uid, cred.gid);
        assert_eq!(
            groups_from_proc(pid, uid, gid).map(sorted),
            Some(our_groups())
        );
        // Not if the process has another identity than the socket recorded.
        assert_eq!(groups_from_proc(pid, uid + 1, gid), None);
        assert_eq!(groups_from_proc(pid, uid, gid + 1), None);
    }

    /// A peer running as another user with other groups, which has exited before we look:
    /// its groups come from the socket, not from a `/proc` entry that no longer exists.
    #[tokio::test]
    async fn a_child_under_another_identity_keeps_its_groups_after_it_exits() {
        if !nix::unistd::getuid().is_root()
            || Command::new("setpriv").arg("--help").output().is_err()
        {
            eprintln!("skipped: needs root and setpriv");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // nobody must reach the socket: the temp dir is root's 0700.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let path = dir.path().join("peer.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        // connect() completes into the backlog; the child exits before we accept.
        let out = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--groups",
                "65534,100",
            ])
            .args(["socat", "-u", "OPEN:/dev/null"])
            .arg(format!("UNIX-CONNECT:{}", path.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (stream, _) = listener.accept().await.unwrap();
        let cred = PeerCred::of(&stream).unwrap();
        assert_eq!((cred.uid, cred.gid), (65534, 65534));
        assert_eq!(sorted(cred.groups.clone()), vec![100, 65534]);
        let pid = cred.pid.unwrap();
        assert!(
            groups_from_proc(pid, 65534, 65534).is_none(),
            "the child is gone"
        );
        let user = cred.user_info();
        assert_eq!(user.uid, "65534");
        assert_eq!(user.groups.len(), 2, "{:?}", user.groups);
        assert_eq!(user.groups[0], group_name(65534));
        assert!(user.groups.contains(&group_name(100)), "{:?}", user.groups);
        // Asked again, still the child's: nothing is read lazily.
        assert_eq!(PeerCred::of(&stream).unwrap().groups, cred.groups);
    }

    #[test]
    fn the_proc_fallback_gives_nothing_for_a_missing_process() {
        // pid_max is at most 2^22; this pid cannot exist.
        assert_eq!(groups_from_proc(i32::MAX, 0, 0), None);
    }

    #[test]
    fn start_time_is_counted_after_the_command_name() {
        let fields: Vec<String> = (3..=25).map(|n| n.to_string()).collect();
        let stat = format!("42 (we ird) (name) {}", fields.join(" "));
        assert_eq!(parse_start_time(&stat), Some(22));
        assert_eq!(parse_start_time("42 (short) S 1 2"), None);
        assert_eq!(parse_start_time("no parenthesis"), None);
        assert_eq!(parse_start_time(""), None);
    }
}
