//! The systemd units `portcullis install proxy` writes: the proxy's own unit (the one the
//! package ships, deploy/systemd) and drop-ins that start dockerd and the kubelet after it,
//! since both dial containerd's well-known socket, which is now the proxy's.

use std::path::Path;

/// The unit as shipped; its `ExecStart` names the packaged binary.
pub const PROXY_UNIT: &str = include_str!("../../deploy/systemd/portcullis-proxy.service");
pub const PROXY_UNIT_NAME: &str = "portcullis-proxy.service";
/// Where the package puts the binary, as the shipped unit names it.
pub const PACKAGED_BINARY: &str = "/usr/bin/portcullis";
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// The units that dial containerd and so must start after the proxy.
pub const CLIENTS: &[&str] = &["docker.service", "kubelet.service"];
pub const DROP_IN: &str = "10-portcullis.conf";

/// The proxy's unit, with `ExecStart` naming `binary` (quoted for systemd if it must be).
pub fn proxy_unit(binary: &Path) -> String {
    let binary = binary.display().to_string();
    if binary == PACKAGED_BINARY {
        return PROXY_UNIT.to_owned();
    }
    let quoted = quote(&binary);
    PROXY_UNIT
        .lines()
        .map(|l| match l.strip_prefix("ExecStart=") {
            Some(rest) => match rest.strip_prefix(PACKAGED_BINARY) {
                Some(args) => format!("ExecStart={quoted}{args}\n"),
                None => format!("{l}\n"),
            },
            None => format!("{l}\n"),
        })
        .collect()
}

/// Where the shipped unit lets the proxy write (`ReadWritePaths=`, `LogsDirectory=`).
const WRITABLE: &[&str] = &["/run/containerd", "/var/log/portcullis"];

/// A drop-in for the proxy's unit making writable the directories of `files` (its socket,
/// its decision log) that the shipped unit's `ProtectSystem=strict` keeps read-only; `None`
/// when all are in the shipped unit's writable directories.
pub fn write_paths<'a>(files: impl Iterator<Item = &'a Path>) -> Option<String> {
    let mut dirs: Vec<String> = Vec::new();
    for dir in files.filter_map(Path::parent) {
        let shipped = WRITABLE.iter().any(|w| dir.starts_with(w));
        let d = dir.display().to_string();
        if !shipped && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    if dirs.is_empty() {
        return None;
    }
    let quoted: Vec<String> = dirs.iter().map(|d| quote(d)).collect();
    Some(format!(
        "# Written by `portcullis install proxy`: the proxy's socket or decision log is outside\n\
         # the directories the unit makes writable (ProtectSystem=strict).\n\
         [Service]\nReadWritePaths={}\n",
        quoted.join(" ")
    ))
}

/// `s` as one word of a systemd unit line.
fn quote(s: &str) -> String {
    if s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.to_owned()
    }
}

/// The drop-in for `client` (`docker.service`, …).
pub fn drop_in(client: &str) -> String {
    format!(
        "# Written by `portcullis install proxy`; `portcullis uninstall proxy` removes it.\n\
         # {client} dials containerd's well-known socket, which the Portcullis proxy now owns:\n\
         # start after the proxy, and start the proxy with it.\n\
         [Unit]\nAfter={PROXY_UNIT_NAME}\nWants={PROXY_UNIT_NAME}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_names_this_binary() {
        assert_eq!(proxy_unit(Path::new(PACKAGED_BINARY)), PROXY_UNIT);
        let u = proxy_unit(Path::new("/opt/p p/portcullis"));
        assert!(
            u.contains(
                "\nExecStart=\"/opt/p p/portcullis\" proxy --config /etc/portcullis/config.yaml\n"
            ),
            "{u}"
        );
        assert_eq!(u.lines().count(), PROXY_UNIT.lines().count());
        assert!(drop_in("docker.service").contains("\nAfter=portcullis-proxy.service\n"));
        let shipped = [
            Path::new("/run/containerd/containerd.sock"),
            Path::new("/var/log/portcullis/d.jsonl"),
        ];
        assert_eq!(write_paths(shipped.into_iter()), None);
        let moved = [
            Path::new("/run/k3s/containerd/containerd.sock"),
            Path::new("/var/log/a b/d.jsonl"),
        ];
        assert!(write_paths(moved.into_iter())
            .unwrap()
            .ends_with("\nReadWritePaths=/run/k3s/containerd \"/var/log/a b\"\n"));
    }
}
