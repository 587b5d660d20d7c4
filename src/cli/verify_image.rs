//! `portcullis verify-image`: containerd's image-verifier binary (see `verify_image`).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Config file (YAML), the same as every door's.
    #[arg(long, short)]
    config: PathBuf,
    /// containerd's arguments, after `--`: `-name REF -digest DIGEST -stdin-media-type TYPE`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    containerd: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    Ok(crate::verify_image::run(&args.config, args.containerd))
}
