//! `portcullis completions SHELL` and `portcullis man DIR`: the shell completions and the
//! man pages (one per verb) a package ships, generated from the command line's own
//! definitions with `clap_complete` and `clap_mangen`, so they never drift from it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// The directory to write `portcullis.1` and `portcullis-VERB.1` into (created).
    dir: PathBuf,
}

/// Prints the completion script for `shell`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut super::Cli::command(),
        "portcullis",
        &mut out,
    );
    super::emit(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the man pages into `dir`.
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("{}", args.dir.display()))?;
    clap_mangen::generate_to(super::Cli::command(), &args.dir)
        .with_context(|| format!("writing man pages into {}", args.dir.display()))?;
    eprintln!("wrote the man pages into {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_pages_cover_every_verb() {
        let mut out = Vec::new();
        let shell = clap_complete::Shell::Bash;
        clap_complete::generate(
            shell,
            &mut crate::cli::Cli::command(),
            "portcullis",
            &mut out,
        );
        let bash = String::from_utf8(out).unwrap();
        for verb in [
            "proxy",
            "serve",
            "check",
            "audit",
            "hook",
            "verify-image",
            "install",
        ] {
            assert!(bash.contains(verb), "no {verb} in the bash completions");
        }
        let dir = tempfile::tempdir().unwrap();
        man(ManArgs {
            dir: dir.path().join("man1"),
        })
        .unwrap();
        for page in ["portcullis.1", "portcullis-audit.1", "portcullis-check.1"] {
            let text = std::fs::read_to_string(dir.path().join("man1").join(page)).unwrap();
            assert!(text.contains(".TH"), "{page} is not a man page");
        }
    }
}
