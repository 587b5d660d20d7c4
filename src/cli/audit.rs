//! `portcullis audit`: what already runs, judged by the configured policies, as
//! Gatekeeper's audit finds what violates a new policy. Lists the containers of each
//! runtime named (containerd, dockerd, Podman; the containerd at `proxy.containerd`,
//! by default `/run/containerd/containerd.sock`, when none is), builds each one's request
//! as its door would, and reports every violation. Exit codes: 0 none, 1 any violation
//! (whatever its action: `deny`, `warn`, `dryrun`, `error`), 2 an error (a runtime named
//! is unreachable, the config does not load). docs/audit.md has the details.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::audit::{self, render, Target};
use crate::config::Config;
use crate::core::Decider;

#[derive(clap::Args)]
pub struct Args {
    /// Config file (YAML): the policies to audit with.
    #[arg(long, short)]
    config: PathBuf,
    /// A containerd socket to audit (every namespace); repeatable.
    #[arg(long, value_name = "SOCK")]
    containerd: Vec<PathBuf>,
    /// A dockerd socket to audit; repeatable. Running containers' specs are read from the
    /// containerd dockerd uses (dockerd's `GET /info`, else the first --containerd, else
    /// `proxy.containerd`).
    #[arg(long, value_name = "SOCK")]
    docker: Vec<PathBuf>,
    /// Audit Podman's containers (through the `podman` command).
    #[arg(long)]
    podman: bool,
    /// A global flag for every `podman` command run, e.g. `--podman-flag=--root=/x`;
    /// repeatable. Implies --podman.
    #[arg(long = "podman-flag", value_name = "FLAG", allow_hyphen_values = true)]
    podman_flags: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Human,
    Json,
}

/// The runtimes to audit: those named, else the containerd at `proxy.containerd`.
fn targets(args: &Args, config: &Config) -> Vec<Target> {
    let mut targets: Vec<Target> = args
        .containerd
        .iter()
        .cloned()
        .map(Target::Containerd)
        .collect();
    targets.extend(args.docker.iter().cloned().map(Target::Docker));
    if args.podman || !args.podman_flags.is_empty() {
        targets.push(Target::Podman(args.podman_flags.clone()));
    }
    if targets.is_empty() {
        targets.push(Target::Containerd(config.proxy.containerd.clone()));
    }
    targets
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let decider = Arc::new(Decider::new(&config)?);
    let targets = targets(&args, &config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let audited = runtime.block_on(audit::run(&targets, &config, decider))?;
    for line in render::skipped_lines(&audited) {
        eprintln!("portcullis: {line}");
    }
    let text = match args.output {
        Output::Human => render::table(&audited),
        Output::Json => serde_json::to_string_pretty(&render::json(&audited))? + "\n",
    };
    super::emit(&text)?;
    Ok(ExitCode::from(render::exit_code(&audited)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("audit").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn no_runtime_named_audits_the_proxys_containerd_and_each_named_one_else() {
        let config = Config::default();
        assert_eq!(
            targets(&parse(&["-c", "x"]), &config),
            [Target::Containerd("/run/containerd/containerd.sock".into())]
        );
        let args = parse(&[
            "-c",
            "x",
            "--containerd",
            "/a.sock",
            "--docker",
            "/d.sock",
            "--podman-flag=--root=/r",
        ]);
        assert_eq!(
            targets(&args, &config),
            [
                Target::Containerd("/a.sock".into()),
                Target::Docker("/d.sock".into()),
                Target::Podman(vec!["--root=/r".into()]),
            ]
        );
        assert_eq!(args.output, Output::Human);
        assert!(parse(&["-c", "x", "--output", "json"]).output == Output::Json);
    }
}
