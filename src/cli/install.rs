//! `portcullis install hooks`: put the hook door in place — a hooks.d file for Podman and
//! CRI-O, a containerd CRI base runtime spec, or the dockerd runtime entry for the wrapper.
//! `portcullis install image-verifier`: containerd 2.x's image verifier.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::hook::install;
use crate::verify_image::install as verifier;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// The OCI hook (`--podman`, `--containerd-base-spec`) or the runc wrapper (`--docker`).
    Hooks(Hooks),
    /// containerd 2.x's image verifier: writes the wrapper into --bin-dir and prints the
    /// config.toml stanza that enables the plugin.
    ImageVerifier(ImageVerifier),
}

#[derive(clap::Args)]
struct ImageVerifier {
    /// containerd's verifier `bin_dir`.
    #[arg(long, default_value = verifier::BIN_DIR)]
    bin_dir: PathBuf,
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
    #[arg(long, default_value = install::PODMAN_HOOKS_DIR)]
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let h = match args.what {
        What::Hooks(h) => h,
        What::ImageVerifier(v) => return image_verifier(v),
    };
    let binary = this_binary(h.binary)?;
    if h.podman {
        let file = h.dir.join(install::HOOKS_FILE);
        std::fs::create_dir_all(&h.dir).with_context(|| format!("{}", h.dir.display()))?;
        let text = serde_json::to_string_pretty(&install::hooks_d(&binary, &h.config))?;
        std::fs::write(&file, text + "\n").with_context(|| format!("{}", file.display()))?;
        println!("wrote {}", file.display());
    } else if h.containerd_base_spec {
        let spec = install::containerd_base_spec(&binary, &h.config);
        println!("{}", serde_json::to_string_pretty(&spec)?);
    } else {
        let shim_path = h
            .shim
            .clone()
            .unwrap_or_else(|| install::DOCKER_SHIM.into());
        let shim = install::runc_shim(&binary, &h.config);
        if let Some(path) = &h.shim {
            std::fs::write(path, &shim).with_context(|| format!("{}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
            eprintln!("wrote {}", path.display());
        }
        let entry = install::docker_runtimes(&shim_path);
        println!("{}", serde_json::to_string_pretty(&entry)?);
        if h.shim.is_none() {
            println!("\n# {} (mode 755):\n{shim}", shim_path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn this_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(b) => Ok(b),
        None => std::env::current_exe().context("finding this binary (pass --binary)"),
    }
}

fn image_verifier(v: ImageVerifier) -> anyhow::Result<ExitCode> {
    let binary = this_binary(v.binary)?;
    let file = v.bin_dir.join(verifier::WRAPPER);
    std::fs::create_dir_all(&v.bin_dir).with_context(|| format!("{}", v.bin_dir.display()))?;
    std::fs::write(&file, verifier::wrapper(&binary, &v.config))
        .with_context(|| format!("{}", file.display()))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
    eprintln!("wrote {}", file.display());
    eprintln!("add to containerd's config.toml (containerd 2.x) and restart containerd:");
    print!("{}", verifier::containerd_config(&v.bin_dir));
    Ok(ExitCode::SUCCESS)
}
