//! `portcullis runc`: a runc wrapper. On `create`/`run` it checks the bundle like the hook
//! and refuses (exit 1, message on stderr and in runc's `--log`) without running runc;
//! otherwise it execs the real runc with exactly the same arguments.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::convert::cgroups;
use crate::hook::gate::{report_lines, Decision, Gate};
use crate::hook::request::{self, bundle_request};
use crate::hook::runc::{self as wrapper, RuncCall};

#[derive(clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Config file (YAML), the same as every door's.
    #[arg(long, short)]
    config: PathBuf,
    /// The real runc (default: the first ELF `runc` on PATH other than this binary, else
    /// /usr/sbin/runc, /usr/bin/runc).
    #[arg(long)]
    runc: Option<PathBuf>,
    /// runc's own arguments, passed on unchanged. Put them after `--` so none is taken
    /// for one of ours (`--log`, `--version`).
    #[arg(allow_hyphen_values = true)]
    args: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text: Vec<String> = args
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Arguments the wrapper cannot place might hide the bundle or the id it must check:
    // refused, whatever `hook.failOpen` says (nothing failed; the call is unjudgeable).
    let call = match wrapper::parse(&text) {
        Ok(call) => call,
        Err(e) => {
            eprintln!("portcullis: refused: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(code) = check(&args, &call)? {
        return Ok(code);
    }
    let runc = wrapper::find_runc(args.runc.as_deref(), std::env::var_os("PATH"))
        .context("no runc found (pass --runc PATH)")?;
    let error = std::process::Command::new(&runc).args(&args.args).exec();
    Err(error).with_context(|| format!("cannot run {}", runc.display()))
}

/// `Some(exit code)` when the call is refused.
fn check(args: &Args, call: &RuncCall) -> anyhow::Result<Option<ExitCode>> {
    let Some(create) = &call.create else {
        return Ok(None);
    };
    let gate = Gate::load(&args.config);
    let bundle = match &create.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir()?,
    };
    let what = format!("container {}", create.id);
    let decision = if create.restore && !gate.hook.allow_restore {
        gate.refuse(format!(
            "{what}: runc restore is refused: the restored process comes from a checkpoint \
             image, which is not judged; set hook.allowRestore to judge restores by their \
             bundle alone"
        ))
    } else {
        decide(&gate, call, &bundle, &create.id, &what)?
    };
    let lines = report_lines(&decision, &what);
    for line in &lines {
        eprintln!("{line}");
    }
    if decision.allowed {
        return Ok(None);
    }
    if let Some(first) = lines.first() {
        wrapper::log_refusal(call, first);
    }
    Ok(Some(ExitCode::from(1)))
}

/// The decision on the bundle's spec.
fn decide(
    gate: &Gate,
    call: &RuncCall,
    bundle: &std::path::Path,
    id: &str,
    what: &str,
) -> anyhow::Result<Decision> {
    Ok(match request::read_spec(bundle) {
        // Before runc runs, the container's cgroup must not exist yet (convert::cgroups).
        Ok(spec) if cgroups::refusal(&spec).is_some() => gate.refuse(format!(
            "{what}: linux.cgroupsPath {}",
            cgroups::refusal(&spec).unwrap_or_default()
        )),
        Ok(spec) => {
            let annotations = request::annotations(&spec);
            let namespace = request::namespace(
                &annotations,
                bundle,
                call.root.as_deref(),
                gate.pod_options().kubernetes_namespace,
            );
            match bundle_request(
                &namespace,
                id,
                &spec,
                &gate.pod_options(),
                "portcullis-runc",
            ) {
                Ok(r) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(gate.decide(&r)),
                Err(e) => gate.undecidable(format!("{what}: {e:#}")),
            }
        }
        Err(e) => gate.undecidable(format!("{what}: {e:#}")),
    })
}
