//! `portcullis install` and `portcullis uninstall`: the command line of the installer
//! (`crate::install` plans and carries out the changes). `install proxy` puts the proxy in
//! front of a system containerd; `install hooks` the hook door (a hooks.d file for Podman
//! and CRI-O, a containerd CRI base runtime spec, or the dockerd runtime shim);
//! `install image-verifier` containerd 2.x's image verifier. Each one that writes files
//! takes `--root`, `--dry-run`, and is undone by `uninstall`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::hook::install as hooks;
use crate::install::{self, proxy, Plan, Root};
use crate::verify_image::install as verifier;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Put the proxy in front of the system containerd: containerd moved to a root-only
    /// socket, the proxy on its old address, the config, the systemd units, dockerd's
    /// daemon.json. Idempotent; `portcullis uninstall proxy` restores the originals.
    Proxy(Proxy),
    /// The OCI hook (`--podman`, `--containerd-base-spec`) or the runc wrapper (`--docker`).
    Hooks(Hooks),
    /// containerd 2.x's image verifier: the plugin's stanza in containerd's config.toml
    /// and the wrapper in its bin_dir. Idempotent; `portcullis uninstall image-verifier`
    /// restores the originals.
    ImageVerifier(ImageVerifier),
}

/// What every writing install takes.
#[derive(clap::Args)]
struct Common {
    /// Read and write every path under this directory (like dpkg's --root): an image
    /// build, or a node agent with the host mounted at /host.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print the changes as a unified diff per file and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
struct Proxy {
    #[command(flatten)]
    common: Common,
    /// containerd's config (written if absent).
    #[arg(long, default_value = "/etc/containerd/config.toml")]
    containerd_config: PathBuf,
    /// Where containerd's gRPC socket moves to (root only); the proxy dials it.
    #[arg(long, default_value = proxy::DEFAULT_REAL_SOCKET)]
    real_socket: PathBuf,
    /// Portcullis's config: written (the packaged default) if absent, checked if present.
    #[arg(long, default_value = "/etc/portcullis/config.yaml")]
    config: PathBuf,
    /// dockerd's config, whose `containerd` is set to the proxy's socket.
    #[arg(long, default_value = "/etc/docker/daemon.json")]
    daemon_json: PathBuf,
    /// Leave dockerd's daemon.json alone.
    #[arg(long)]
    no_docker: bool,
    /// The binary the systemd unit runs (default: this one).
    #[arg(long, conflicts_with = "no_units")]
    binary: Option<PathBuf>,
    /// Write no systemd units: the proxy runs elsewhere (the Kubernetes node agent's pod,
    /// `deploy/kubernetes/node-agent.yaml`), and a host unit would compete for its socket.
    #[arg(long)]
    no_units: bool,
    /// Then run the next steps (daemon-reload, restart containerd, enable --now the proxy,
    /// try-restart docker and kubelet): only with --root / on a host booted with systemd.
    #[arg(long, conflicts_with_all = ["dry_run", "no_units"])]
    now: bool,
}

#[derive(clap::Args)]
struct ImageVerifier {
    #[command(flatten)]
    common: Common,
    /// containerd's config: the verifier's stanza is added to it (written if absent).
    #[arg(long, default_value = "/etc/containerd/config.toml")]
    containerd_config: PathBuf,
    /// containerd's verifier `bin_dir` [default: the one the config names, else
    /// /opt/containerd/image-verifier/bin].
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The config file the verifier reads.
    #[arg(long, default_value = "/etc/portcullis/config.yaml")]
    config: PathBuf,
    /// The portcullis binary (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(false)))]
struct Hooks {
    #[command(flatten)]
    common: Common,
    /// Write a hooks.d 1.0.0 file (Podman, CRI-O) into --dir.
    #[arg(long, group = "target")]
    podman: bool,
    /// Print a containerd CRI `base_runtime_spec` (containerd's default spec with the hooks).
    #[arg(long, group = "target")]
    containerd_base_spec: bool,
    /// Print the daemon.json `runtimes` entry and the wrapper shim (written with --shim).
    #[arg(long, group = "target")]
    docker: bool,
    /// hooks.d directory.
    #[arg(long, default_value = hooks::PODMAN_HOOKS_DIR)]
    dir: PathBuf,
    /// The config file the hook and wrapper read.
    #[arg(long, default_value = "/etc/portcullis/config.yaml")]
    config: PathBuf,
    /// The portcullis binary (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// With --docker: write the shim here (mode 755).
    #[arg(long)]
    shim: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    /// What to uninstall.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(install::COMPONENTS))]
    component: String,
    #[command(flatten)]
    common: Common,
    /// Put the originals back even over files changed since the install wrote them.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Proxy(p) => install_proxy(p),
        What::Hooks(h) => install_hooks(h),
        What::ImageVerifier(v) => image_verifier(v),
    }
}

fn this_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(b) => Ok(b),
        None => std::env::current_exe().context("finding this binary (pass --binary)"),
    }
}

/// Prints the plan (`--dry-run`: the diff on standard output) or carries it out; what it
/// did goes to standard error, so that a verb's printed data (a daemon.json entry, a
/// containerd stanza) stays alone on standard output.
fn carry_out(plan: &Plan, root: &Root, common: &Common, verb: &str) -> anyhow::Result<bool> {
    if plan.is_empty() {
        eprintln!("portcullis {verb}: nothing to change");
        return Ok(false);
    }
    if common.dry_run {
        print!("{}", plan.diff(true));
        eprintln!("portcullis {verb}: dry run, nothing changed");
        return Ok(false);
    }
    for path in plan.apply(root)? {
        eprintln!(
            "note: {} was edited since `portcullis {verb}` first wrote it; `portcullis un{verb}` will name it and restore its original only with --force",
            path.display()
        );
    }
    for d in &plan.dirs {
        eprintln!("created {}", d.display());
    }
    for c in &plan.changes {
        let what = if c.old.is_some() {
            "changed"
        } else {
            "created"
        };
        eprintln!("{what} {}", c.path.display());
    }
    Ok(true)
}

fn install_proxy(p: Proxy) -> anyhow::Result<ExitCode> {
    let root = Root::new(&p.common.root);
    let _lock = root.lock()?;
    let options = proxy::Options {
        containerd_config: p.containerd_config,
        real_socket: p.real_socket,
        config: p.config,
        daemon_json: (!p.no_docker).then_some(p.daemon_json),
        unit_binary: if p.no_units {
            None
        } else {
            Some(this_binary(p.binary)?)
        },
    };
    if p.now && !(p.common.root == Path::new("/") && Path::new("/run/systemd/system").is_dir()) {
        anyhow::bail!("--now runs systemctl on this host: it needs --root / and systemd as PID 1 (no /run/systemd/system here); install without --now and run the next steps yourself");
    }
    let (plan, a) = proxy::plan(&root, &options)?;
    eprintln!(
        "containerd moves to {} (root only); the proxy listens on {}",
        a.real, a.listen
    );
    let changed = carry_out(&plan, &root, &p.common, "install proxy")?;
    if p.now {
        for args in proxy::NOW {
            let status = std::process::Command::new("systemctl")
                .args(*args)
                .status()
                .with_context(|| format!("running systemctl {}", args.join(" ")))?;
            anyhow::ensure!(status.success(), "systemctl {}: {status}", args.join(" "));
        }
    } else if changed {
        eprint!("{}", proxy::next_steps(&options));
    }
    Ok(ExitCode::SUCCESS)
}

fn install_hooks(h: Hooks) -> anyhow::Result<ExitCode> {
    let binary = this_binary(h.binary)?;
    let root = Root::new(&h.common.root);
    let _lock = root.lock()?;
    if h.podman {
        let plan = install::podman_hook(&root, &h.dir, &binary, &h.config)?;
        carry_out(&plan, &root, &h.common, "install hooks")?;
    } else if h.containerd_base_spec {
        let spec = hooks::containerd_base_spec(&binary, &h.config);
        println!("{}", serde_json::to_string_pretty(&spec)?);
    } else {
        let shim_path = h.shim.clone().unwrap_or_else(|| hooks::DOCKER_SHIM.into());
        if let Some(path) = &h.shim {
            let plan = install::docker_shim(&root, path, &binary, &h.config)?;
            carry_out(&plan, &root, &h.common, "install hooks")?;
        }
        let entry = hooks::docker_runtimes(&shim_path);
        println!("{}", serde_json::to_string_pretty(&entry)?);
        if h.shim.is_none() {
            let shim = hooks::runc_shim(&binary, &h.config);
            println!("\n# {} (mode 755):\n{shim}", shim_path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn image_verifier(v: ImageVerifier) -> anyhow::Result<ExitCode> {
    let binary = this_binary(v.binary)?;
    let root = Root::new(&v.common.root);
    let _lock = root.lock()?;
    let (plan, bin_dir) = install::image_verifier(
        &root,
        &v.containerd_config,
        v.bin_dir.as_deref(),
        &binary,
        &v.config,
    )?;
    eprintln!("containerd runs the verifiers in {}", bin_dir.display());
    if carry_out(&plan, &root, &v.common, "install image-verifier")? {
        eprintln!("next step: systemctl restart containerd");
    }
    if v.common.root == Path::new("/") {
        if let Some(note) = verifier::containerd_too_old() {
            eprintln!("{note}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `portcullis uninstall COMPONENT`.
pub fn uninstall(u: UninstallArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&u.common.root);
    let _lock = root.lock()?;
    let (plan, manifest) = install::uninstall_plan(&root, &u.component, u.force)?;
    let verb = format!("uninstall {}", u.component);
    if u.common.dry_run {
        print!("{}", plan.diff(false));
        println!("portcullis {verb}: dry run, nothing changed");
        return Ok(ExitCode::SUCCESS);
    }
    install::uninstall_apply(&root, &plan, &manifest)?;
    for c in &plan.changes {
        let what = if c.new.is_some() {
            "restored"
        } else {
            "removed"
        };
        println!("{what} {}", c.path.display());
    }
    if u.component == proxy::COMPONENT {
        eprintln!("next steps:\n  systemctl daemon-reload\n  systemctl disable --now portcullis-proxy\n  systemctl restart containerd\n  systemctl restart docker kubelet   # those that run here");
    }
    Ok(ExitCode::SUCCESS)
}
