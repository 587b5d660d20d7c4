//! `root.path`: whose filesystem the container's `/` is (runtime-spec config.md "Root").
//!
//! `ctr run --rootfs /` hands the container the host's own root filesystem. The view accepts
//! only the forms runtimes use for a container's own root, and shows anything else as a
//! `hostPath` volume mounted at `/`, which Pod Security baseline refuses:
//!
//! - a relative path with no `..` component: inside the bundle, where containerd (`rootfs`)
//!   mounts the container's snapshot; runc resolves it against the bundle directory;
//! - dockerd's overlay2 mount of the container layer, `/var/lib/docker/overlay2/<id>/merged`;
//! - containers/storage's (Podman, CRI-O), `/var/lib/containers/storage/overlay/<id>/merged`;
//!
//! - `<data root>/overlay2/<id>/merged` or `<data root>/overlay/<id>/merged` for a data root in
//!   `PodOptions::storage_roots`: those the operator lists in `spec.storageRoots`
//!   (`dockerd --data-root`, `podman --root`), and the graph root the hook door learns from
//!   the bundle path the runtime gives it (`<graph root>/overlay-containers/<id>/userdata`);
//!
//! with `<id>` 64 lower-case hex digits. These directories are created by the daemons as root,
//! under data roots only root can write, so a caller cannot place a symlink or a directory of
//! its choosing there; the most it can name is another container's mounted layer, which is that
//! container's files, not the host's. Other data roots (`--data-root`, rootless storage) are
//! shown as `hostPath`: the view cannot tell them from any other host directory.

use super::spec::{ConvertError, Node};

/// Absolute per-container roots: (data root prefix, directory after the layer id).
const OWN_ROOTS: [(&str, &str); 2] = [
    ("/var/lib/docker/overlay2/", "/merged"),
    ("/var/lib/containers/storage/overlay/", "/merged"),
];

fn is_layer_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An absolute path of plain names: no `.`, `..` or empty components to play with.
fn is_plain_absolute(p: &str) -> bool {
    p.strip_prefix('/')
        .is_some_and(|r| r.split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

/// Whether `path` is recognisably the runtime's own root for one container.
pub(crate) fn is_own_root(path: &str, storage_roots: &[String]) -> bool {
    if !path.starts_with('/') {
        return !path.split('/').any(|c| c == "..");
    }
    let extra = storage_roots
        .iter()
        .map(|g| g.trim_end_matches('/'))
        .filter(|g| is_plain_absolute(g))
        .flat_map(|g| ["overlay2", "overlay"].map(|d| (format!("{g}/{d}/"), "/merged")));
    let fixed = OWN_ROOTS.iter().map(|(p, t)| ((*p).to_owned(), *t));
    fixed.chain(extra).any(|(prefix, tail)| {
        path.strip_prefix(prefix.as_str())
            .and_then(|rest| rest.strip_suffix(tail))
            .is_some_and(is_layer_id)
    })
}

/// `root.path` when it is a host directory rather than the container's own root.
pub(crate) fn host_root<'a>(
    root: &Node<'a>,
    storage_roots: &[String],
) -> Result<Option<&'a str>, ConvertError> {
    Ok(root
        .path("root.path")
        .str()?
        .filter(|p| !is_own_root(p, storage_roots)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "951263f1586f6ad152a0d5d5272998d2a2ad33e042056e9b801f44de61068edd";

    #[test]
    fn runtimes_own_roots() {
        for p in [
            "rootfs".to_owned(),
            "a/b".to_owned(),
            ".".to_owned(),
            String::new(),
            format!("/var/lib/docker/overlay2/{ID}/merged"),
            format!("/var/lib/containers/storage/overlay/{ID}/merged"),
        ] {
            assert!(is_own_root(&p, &[]), "{p}");
        }
    }

    #[test]
    fn host_directories() {
        for p in [
            "/".to_owned(),
            "/rootfs".to_owned(),
            "../..".to_owned(),
            "rootfs/../../../".to_owned(),
            "..".to_owned(),
            format!("/var/lib/docker/overlay2/{ID}/diff"),
            format!("/var/lib/docker/overlay2/{ID}/merged/.."),
            format!("/var/lib/docker/overlay2/{ID}/merged/etc"),
            format!("/var/lib/docker/overlay2/../../../{ID}/merged"),
            format!("/var/lib/docker/overlay2/x/../{ID}/merged"),
            "/var/lib/docker/overlay2/../../../../../merged".to_owned(),
            format!("/data/docker/overlay2/{ID}/merged"),
            format!("/var/lib/docker/overlay2/{}/merged", ID.to_uppercase()),
            format!("//var/lib/docker/overlay2/{ID}/merged"),
            format!("/tmp/var/lib/containers/storage/overlay/{ID}/merged"),
        ] {
            assert!(!is_own_root(&p, &[]), "{p}");
        }
    }

    #[test]
    fn listed_and_learnt_data_roots() {
        let roots = ["/tmp/p/root".to_owned(), "/x/../".to_owned()];
        assert!(is_own_root(
            &format!("/tmp/p/root/overlay/{ID}/merged"),
            &roots
        ));
        assert!(is_own_root(
            &format!("/tmp/p/root/overlay2/{ID}/merged"),
            &roots
        ));
        assert!(!is_own_root(
            &format!("/tmp/p/root/vfs/{ID}/merged"),
            &roots
        ));
        let slash = ["/data/docker/".to_owned()];
        assert!(is_own_root(
            &format!("/data/docker/overlay2/{ID}/merged"),
            &slash
        ));
        assert!(!is_own_root(&format!("/tmp/p/overlay/{ID}/merged"), &roots));
        assert!(!is_own_root(&format!("/x/..//overlay/{ID}/merged"), &roots));
        assert!(!is_own_root(&format!("/x/../overlay/{ID}/merged"), &roots));
    }
}
