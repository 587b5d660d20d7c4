//! `portcullis install proxy`: the plan that puts the proxy in front of a system containerd
//! so that every client goes through it — containerd moved to a root-only socket, the proxy
//! on containerd's old address, its config and policy directory, its systemd unit, the
//! units that dial containerd ordered after it, and dockerd pointed at it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::containerd_toml::{self, DEFAULT_ADDRESS};
use super::daemon_json;
use super::fsops::Root;
use super::manifest::Manifest;
use super::plan::Plan;
use super::units;
use crate::config::RawConfig;

pub const COMPONENT: &str = "proxy";
/// The config as the package ships it.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/config.yaml");
pub const DEFAULT_REAL_SOCKET: &str = "/run/containerd/containerd-real.sock";
const DEFAULT_POLICY_DIR: &str = "/etc/portcullis/policies";

/// What to install where; every path is a host path (read and written under the root).
#[derive(Debug, Clone)]
pub struct Options {
    pub containerd_config: PathBuf,
    /// Where containerd is moved to.
    pub real_socket: PathBuf,
    pub config: PathBuf,
    /// `None`: leave dockerd's config alone.
    pub daemon_json: Option<PathBuf>,
    /// The binary the systemd unit runs; `None` (`--no-units`): no units, the proxy runs
    /// elsewhere (the Kubernetes node agent's pod), so nothing on the host may start one
    /// that would compete with it for the socket.
    pub unit_binary: Option<PathBuf>,
}

/// The addresses the install settles on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    /// containerd's address before the install: where clients dial, the proxy's `listen`.
    pub listen: String,
    /// containerd's new, root-only address: the proxy's `containerd`.
    pub real: String,
}

pub fn plan(root: &Root, o: &Options) -> anyhow::Result<(Plan, Addresses)> {
    let mut plan = Plan::new(COMPONENT);
    let real = path_str(&o.real_socket, "--real-socket")?;
    let toml_at = root.at(&o.containerd_config)?;
    let previous = match root.read_text(&o.containerd_config)? {
        None => {
            let text = containerd_toml::minimal(&real);
            plan.write(root, &o.containerd_config, text.into_bytes(), 0o644)?;
            Some(DEFAULT_ADDRESS.to_owned())
        }
        Some(text) => {
            let edited = containerd_toml::edit(&text, &toml_at, &real)?;
            plan.write(root, &o.containerd_config, edited.text.into_bytes(), 0o644)?;
            edited.previous
        }
    };
    // Installed before: containerd's old address is the one the first install recorded.
    let listen = match previous {
        Some(p) => p,
        None => Manifest::load(root, COMPONENT)?
            .and_then(|m| m.notes.get("listen").cloned())
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned()),
    };
    if listen == real {
        bail!("--real-socket {real} is containerd's current address; the proxy needs it moved elsewhere");
    }
    plan.notes.insert("listen".into(), listen.clone());
    let addresses = Addresses { listen, real };
    let paths = config_file(root, o, &addresses, &mut plan)?;
    if let Some(dir) = paths.policy_dir.filter(|d| d.is_absolute()) {
        plan.dir(root, &dir)?;
    }
    if let Some(binary) = &o.unit_binary {
        plan_units(
            root,
            binary,
            &addresses,
            paths.decision_log.as_deref(),
            &mut plan,
        )?;
    }
    if let Some(file) = &o.daemon_json {
        let at = root.at(file)?;
        let text = root.read_text(file)?;
        if let Some(new) = daemon_json::edit(text.as_deref(), &at, &addresses.listen)? {
            plan.write(root, file, new.into_bytes(), 0o644)?;
        }
    }
    Ok((plan, addresses))
}

/// `p` as a config file holds it, absolute and UTF-8; else an error naming `what`.
pub(super) fn path_str(p: &Path, what: &str) -> anyhow::Result<String> {
    match p.to_str() {
        Some(s) if p.is_absolute() => Ok(s.to_owned()),
        _ => bail!("{what} {}: give an absolute, UTF-8 path", p.display()),
    }
}

/// The paths of the proxy's config the install must provide for.
struct ConfigPaths {
    policy_dir: Option<PathBuf>,
    decision_log: Option<PathBuf>,
}

/// Plans the config file: the shipped one (with these addresses) when absent; when present,
/// it is the operator's and is only checked to agree.
fn config_file(
    root: &Root,
    o: &Options,
    a: &Addresses,
    plan: &mut Plan,
) -> anyhow::Result<ConfigPaths> {
    let at = root.at(&o.config)?;
    let Some(text) = root.read_text(&o.config)? else {
        plan.write(root, &o.config, default_config(a).into_bytes(), 0o644)?;
        return Ok(ConfigPaths {
            policy_dir: Some(DEFAULT_POLICY_DIR.into()),
            decision_log: None,
        });
    };
    // Stage one of the loader only: `policyDir` is a host path, read by the proxy, not here.
    let raw: RawConfig = if text.trim().is_empty() {
        RawConfig::default()
    } else {
        serde_saphyr::from_str(&text).with_context(|| {
            format!(
                "{}: does not load; fix it, or move it away to have the default written",
                at.display()
            )
        })?
    };
    for (key, have, want) in [
        ("proxy.listen", &raw.proxy.listen, &a.listen),
        ("proxy.containerd", &raw.proxy.containerd, &a.real),
    ] {
        if have != Path::new(want) {
            bail!(
                "{}: {key} is {} but the install puts {} there; set `{key}: {want}` in it (or move the file away to have the default written) and run the install again",
                at.display(),
                have.display(),
                if key == "proxy.listen" { "the proxy (containerd's old address)" } else { "containerd" },
            );
        }
    }
    Ok(ConfigPaths {
        policy_dir: raw.policy_dir,
        decision_log: raw.decision_log.file,
    })
}

/// The proxy's unit (running `binary`), a drop-in letting it write where its config says
/// when that is outside the unit's own paths, and the drop-ins ordering the clients of
/// containerd's socket after it.
fn plan_units(
    root: &Root,
    binary: &Path,
    addresses: &Addresses,
    decision_log: Option<&Path>,
    plan: &mut Plan,
) -> anyhow::Result<()> {
    let unit_dir = Path::new(units::UNIT_DIR);
    let unit = units::proxy_unit(binary);
    plan.write(
        root,
        &unit_dir.join(units::PROXY_UNIT_NAME),
        unit.into_bytes(),
        0o644,
    )?;
    let written = [Some(Path::new(&addresses.listen)), decision_log];
    if let Some(text) = units::write_paths(written.into_iter().flatten()) {
        let drop_in = unit_dir.join(format!("{}.d", units::PROXY_UNIT_NAME));
        plan.write(
            root,
            &drop_in.join(units::DROP_IN),
            text.into_bytes(),
            0o644,
        )?;
    }
    for client in units::CLIENTS {
        let drop_in = unit_dir.join(format!("{client}.d")).join(units::DROP_IN);
        plan.write(root, &drop_in, units::drop_in(client).into_bytes(), 0o644)?;
    }
    Ok(())
}

/// deploy/config.yaml with the proxy's two addresses (byte for byte the shipped file when
/// they are the defaults, as the package's conffile is).
pub fn default_config(a: &Addresses) -> String {
    let mut text = DEFAULT_CONFIG.to_owned();
    for (key, default, value) in [
        ("listen", DEFAULT_ADDRESS, &a.listen),
        ("containerd", DEFAULT_REAL_SOCKET, &a.real),
    ] {
        if value != default {
            let quoted = serde_json::to_string(value).unwrap_or_default();
            text = text.replace(
                &format!("\n  {key}: {default}\n"),
                &format!("\n  {key}: {quoted}\n"),
            );
        }
    }
    text
}

/// `install proxy --now`: the next steps, run (docker and kubelet only if running).
pub const NOW: &[&[&str]] = &[
    &["daemon-reload"],
    &["restart", "containerd.service"],
    &["enable", "--now", "portcullis-proxy.service"],
    &["try-restart", "docker.service", "kubelet.service"],
];

/// What the operator runs next (the installer changes files, not running services).
pub fn next_steps(o: &Options) -> String {
    let mut s =
        String::from("next steps:\n  systemctl daemon-reload\n  systemctl restart containerd\n");
    if o.unit_binary.is_some() {
        s += "  systemctl enable --now portcullis-proxy\n";
    }
    if o.daemon_json.is_some() {
        s += "  systemctl restart docker     # if dockerd runs here\n";
    }
    s += "  systemctl restart kubelet    # if the kubelet runs here\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_takes_the_addresses_and_loads() {
        let defaults = Addresses {
            listen: DEFAULT_ADDRESS.into(),
            real: DEFAULT_REAL_SOCKET.into(),
        };
        let text = default_config(&defaults);
        assert_eq!(text, DEFAULT_CONFIG);
        let raw: RawConfig = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(raw.proxy.listen, Path::new(DEFAULT_ADDRESS));
        let moved = default_config(&Addresses {
            listen: "/tmp/a b/c.sock".into(),
            real: "/tmp/r.sock".into(),
        });
        let raw: RawConfig = serde_saphyr::from_str(&moved).unwrap();
        assert_eq!(raw.proxy.listen, Path::new("/tmp/a b/c.sock"));
        assert_eq!(raw.proxy.containerd, Path::new("/tmp/r.sock"));
    }
}
