//! Linux capability sets in both spellings: the OCI spec's `CAP_NET_ADMIN` and Kubernetes'
//! `NET_ADMIN` (`securityContext.capabilities`, k8s.io/api/core/v1 `Capability`).
//!
//! The Pod view describes a container's capability set as `add`/`drop` relative to
//! [`DEFAULT`], the set Docker and containerd give a container by default
//! (moby `oci/caps/defaults.go`, containerd `oci/spec.go` `defaultUnixCaps`).

use std::collections::BTreeSet;

/// The Docker/containerd default capability set, in OCI spelling.
pub const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux defines (0 … 40, `include/uapi/linux/capability.h`), in number
/// order; what `add: [ALL]` grants on write-back.
pub const ALL: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `CAP_NET_ADMIN` / `net_admin` / `NET_ADMIN` → `CAP_NET_ADMIN` (containerd CRI accepts
/// either spelling and any case, `pkg/cri/opts/spec_linux.go`).
pub fn to_oci(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// `CAP_NET_ADMIN` → `NET_ADMIN`.
pub fn to_k8s(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(rest) => rest.to_owned(),
        None => upper,
    }
}

/// Whether a name can be a capability at all (`CAP_` + upper-case letters, digits, `_`).
pub fn is_well_formed(oci_name: &str) -> bool {
    oci_name.strip_prefix("CAP_").is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// A capability set as Kubernetes `add`/`drop`, names in Kubernetes spelling, sorted. Two
/// descriptions are exact: relative to [`DEFAULT`] (`add` = set − default, `drop` =
/// default − set), or `drop: [ALL]` with `add` = the whole set. The shorter one is shown (the
/// relative one on a tie), as a person would write it: `--cap-drop CHOWN` stays `drop: [CHOWN]`,
/// while `--cap-drop ALL --cap-add NET_BIND_SERVICE` is `drop: [ALL]`, which Pod Security
/// "restricted" requires.
pub fn add_drop(set: &[&str]) -> (Vec<String>, Vec<String>) {
    let have: BTreeSet<String> = set.iter().map(|c| to_oci(c)).collect();
    let default: BTreeSet<String> = DEFAULT.iter().map(|c| (*c).to_owned()).collect();
    let k8s = |s: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        let mut v: Vec<String> = s.map(|c| to_k8s(c)).collect();
        v.sort();
        v
    };
    let add = k8s(&mut have.difference(&default));
    let drop = k8s(&mut default.difference(&have));
    if add.len() + drop.len() > have.len() + 1 {
        (k8s(&mut have.iter()), vec!["ALL".to_owned()])
    } else {
        (add, drop)
    }
}

/// The set `add`/`drop` describe, following containerd CRI: start from [`DEFAULT`]
/// (`add: ALL` → every capability, `drop: ALL` → none), then add, then drop. Names come back
/// in OCI spelling; the order keeps `previous` order for capabilities that stay, and appends
/// new ones in [`ALL`] order (unknown names last, sorted), so a small change is a small diff.
pub fn from_add_drop(add: &[String], drop: &[String], previous: &[&str]) -> Vec<String> {
    let add: BTreeSet<String> = add.iter().map(|c| to_oci(c)).collect();
    let drop: BTreeSet<String> = drop.iter().map(|c| to_oci(c)).collect();
    let mut set: BTreeSet<String> = if add.contains("CAP_ALL") {
        ALL.iter().map(|c| (*c).to_owned()).collect()
    } else {
        DEFAULT.iter().map(|c| (*c).to_owned()).collect()
    };
    if drop.contains("CAP_ALL") {
        set.clear();
    }
    set.extend(add.iter().filter(|c| *c != "CAP_ALL").cloned());
    for c in drop.iter() {
        set.remove(c);
    }
    let mut out: Vec<String> = Vec::with_capacity(set.len());
    for c in previous.iter().map(|c| to_oci(c)) {
        if set.contains(&c) && !out.contains(&c) {
            out.push(c);
        }
    }
    for c in ALL.iter() {
        if set.contains(*c) && !out.iter().any(|o| o == c) {
            out.push((*c).to_owned());
        }
    }
    for c in &set {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(to_oci("net_admin"), "CAP_NET_ADMIN");
        assert_eq!(to_oci("CAP_SYS_ADMIN"), "CAP_SYS_ADMIN");
        assert_eq!(to_k8s("CAP_NET_ADMIN"), "NET_ADMIN");
        assert!(is_well_formed("CAP_FUTURE_2"));
        assert!(!is_well_formed("CAP_"));
        assert!(!is_well_formed("CAP_NET ADMIN"));
    }

    #[test]
    fn default_set_is_no_change() {
        let (add, drop) = add_drop(&DEFAULT);
        assert!(add.is_empty() && drop.is_empty());
    }

    #[test]
    fn add_drop_round_trips() {
        let mut set: Vec<&str> = DEFAULT
            .iter()
            .copied()
            .filter(|c| *c != "CAP_CHOWN")
            .collect();
        set.insert(3, "CAP_NET_ADMIN");
        set.push("CAP_FUTURE_THING");
        let (add, drop) = add_drop(&set);
        assert_eq!(add, ["FUTURE_THING", "NET_ADMIN"]);
        assert_eq!(drop, ["CHOWN"]);
        assert_eq!(from_add_drop(&add, &drop, &set), set, "order kept");
    }

    #[test]
    fn drop_all_when_that_is_shorter() {
        let (add, drop) = add_drop(&["CAP_NET_ADMIN"]);
        assert_eq!(
            (add.clone(), drop.clone()),
            (vec!["NET_ADMIN".into()], vec!["ALL".into()])
        );
        assert_eq!(from_add_drop(&add, &drop, &[]), ["CAP_NET_ADMIN"]);
        assert_eq!(add_drop(&[]), (vec![], vec!["ALL".into()]));
        let (add, drop) = add_drop(&["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]);
        assert_eq!(
            (add, drop),
            (
                vec!["CHOWN".into(), "NET_BIND_SERVICE".into()],
                vec!["ALL".into()]
            )
        );
        // 7 of the 14 defaults: relative is 7 entries, ALL form 8.
        let (add, drop) = add_drop(&DEFAULT[..7]);
        assert_eq!((add.len(), drop.len()), (0, 7));
    }

    #[test]
    fn add_all() {
        let set = from_add_drop(&["ALL".into()], &["SYS_ADMIN".into()], &[]);
        assert_eq!(set.len(), ALL.len() - 1);
        assert!(!set.contains(&"CAP_SYS_ADMIN".to_owned()));
    }
}
