//! The command line: parse, set up logging, dispatch to one verb. Exit codes: 0 success,
//! 1 a refusal (for verbs that decide), 2 bad input, configuration or runtime error.

mod audit;
mod check;
mod daemon;
mod hook;
mod install;
mod manual;
mod proxy;
mod runc;
mod serve;
mod verify_image;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Kubernetes-style admission control at the container runtime"
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `portcullis=debug`.
    #[arg(long, global = true, env = "PORTCULLIS_LOG", default_value = "info")]
    log: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Proxy containerd's socket, admitting the calls that create or change containers.
    Proxy(proxy::Args),
    /// Serve admission webhooks (AdmissionReview, ImageReview, raw objects) on the same
    /// policies, over TLS, mTLS, plain TCP and unix sockets.
    Serve(serve::Args),
    /// Evaluate the configured policies offline against Pods, OCI specs, container records
    /// or AdmissionReviews (exit 0 admitted, 1 denied, 2 bad input or policy).
    Check(check::Args),
    /// OCI runtime hook (Podman, CRI-O, containerd base spec): exit 0 admits, 1 refuses.
    Hook(hook::Args),
    /// runc wrapper: checks `create`/`run`, then execs the real runc with the same arguments.
    Runc(runc::Args),
    /// containerd 2.x image verifier (`bin_dir` plugin): judges one pull by the image rules
    /// and signature policies; the reason on stdout, exit 0 admits, 1 refuses.
    VerifyImage(verify_image::Args),
    /// Audit the containers that exist now (containerd, dockerd, Podman) against the
    /// configured policies (exit 0 no violation, 1 any, 2 error).
    Audit(audit::Args),
    /// Install a door on this host: `install proxy`, `install hooks --podman |
    /// --containerd-base-spec | --docker`, `install image-verifier` (`--dry-run`, `--root`).
    Install(install::Args),
    /// Undo `install proxy`, `install hooks` or `install image-verifier`: originals restored
    /// byte for byte, created files removed.
    Uninstall(install::UninstallArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(manual::CompletionsArgs),
    /// Write the man pages (`portcullis.1`, `portcullis-VERB.1`) into a directory.
    Man(manual::ManArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    let result = match cli.command {
        Command::Proxy(args) => proxy::run(args),
        Command::Check(args) => check::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Hook(args) => hook::run(args),
        Command::Runc(args) => runc::run(args),
        Command::Install(args) => install::run(args),
        Command::Uninstall(args) => install::uninstall(args),
        Command::VerifyImage(args) => verify_image::run(args),
        Command::Completions(args) => manual::completions(args),
        Command::Man(args) => manual::man(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes a verb's report to standard output. A reader that went away (`| head`) is
/// not an error of the verb: the exit code still says what was decided.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
