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
    let quoted = if binary.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        format!("\"{}\"", binary.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        binary
    };
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
    }
}
