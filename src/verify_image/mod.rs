//! The `verify-image` door: containerd 2.x's image-verifier plugin
//! (`io.containerd.image-verifier.v1.bindir`) runs a binary from its `bin_dir` for every
//! pull through its transfer service, and the pull goes on only if it exits 0. `portcullis
//! install image-verifier` places a two-line wrapper there that runs `portcullis
//! verify-image --config FILE -- <containerd's arguments>`.
//!
//! The pull is judged as the image rules judge any pull ([`Scope::Images`]: the image
//! rules, and the signature policies when they are configured), as an image
//! `name@digest` in no namespace (containerd does not say whose pull it is; the run-time
//! checks at the proxy and the CRI door are per namespace). It is asked of the daemon
//! (`hook.daemonSocket`: one cache and one decision log for every door) within
//! `hook.timeout`, else decided in-process from the config file; when neither can decide,
//! the pull is refused unless `hook.failOpen` (the hook's [`Gate`]).
//!
//! [`Scope::Images`]: crate::core::Scope::Images

pub(crate) mod contract;
pub(crate) mod install;

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use contract::Invocation;

use crate::hook::gate::{Decision, Gate};
use crate::review::{AdmissionRequest, Door, UserInfo};

/// Runs one verification as containerd invoked it: the reason on stdout, exit 0 to let
/// the pull go on, 1 to refuse it.
pub fn run(config: &Path, containerd_args: Vec<String>) -> ExitCode {
    let (outcome, reason) = match judge(config, containerd_args) {
        Ok(decision) => (decision.allowed, reason(&decision)),
        Err(why) => (false, format!("portcullis: refused: {why}")),
    };
    println!("{}", contract::output(&reason));
    if outcome {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn judge(config: &Path, containerd_args: Vec<String>) -> Result<Decision, String> {
    let invocation = contract::parse_args(containerd_args)?;
    let mut stdin = Vec::new();
    std::io::stdin()
        .take(contract::INPUT_LIMIT as u64 + 1)
        .read_to_end(&mut stdin)
        .map_err(|e| format!("reading stdin: {e}"))?;
    contract::read_descriptor(&invocation, &stdin)?;
    let image = pinned(&invocation)?;
    let request = AdmissionRequest::for_pull(&image, "", "", puller());
    let gate = Gate::load(config).at(Door::VerifyImage);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let decision = runtime.block_on(gate.decide(&request));
    for note in &decision.notes {
        eprintln!("portcullis: {note}");
    }
    Ok(decision)
}

/// The reference judged: the name containerd pulls, pinned to the digest it resolved (a
/// name that already carries a digest must carry that one).
fn pinned(invocation: &Invocation) -> Result<String, String> {
    let name = &invocation.name;
    match name.split_once('@') {
        Some((_, digest)) if digest == invocation.digest => Ok(name.clone()),
        Some((_, digest)) => Err(format!(
            "-name {name:?} names digest {digest}, -digest {}",
            invocation.digest
        )),
        None => Ok(format!("{name}@{}", invocation.digest)),
    }
}

/// containerd runs the verifier as itself.
fn puller() -> UserInfo {
    UserInfo {
        username: "containerd-image-verifier".into(),
        ..UserInfo::default()
    }
}

/// What containerd shows the puller: the refusal, or what admitted it.
fn reason(d: &Decision) -> String {
    let mut text = if d.allowed {
        "portcullis: allowed".to_owned()
    } else {
        format!("portcullis: refused: {}", d.message)
    };
    if d.allowed && !d.message.is_empty() {
        text.push_str(&format!(": {}", d.message));
    }
    for w in &d.warnings {
        text.push_str(&format!("; warning: {w}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_judged_reference_is_pinned_to_the_resolved_digest() {
        let at = |name: &str| Invocation {
            name: name.into(),
            digest: "sha256:aa".into(),
            media_type: contract::DESCRIPTOR.into(),
            operation: "pull".into(),
        };
        assert_eq!(pinned(&at("r/app:1")).unwrap(), "r/app:1@sha256:aa");
        assert_eq!(pinned(&at("r/app@sha256:aa")).unwrap(), "r/app@sha256:aa");
        assert!(pinned(&at("r/app@sha256:bb")).is_err());
    }
}
