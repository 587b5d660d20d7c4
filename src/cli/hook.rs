//! `portcullis hook`: an OCI runtime hook. Reads the state on stdin and the bundle's
//! `config.json`, decides (through the daemon, else in-process), and exits 0 to admit or
//! 1 with `portcullis: <why>` on stderr to refuse. `poststop` only reports and always
//! exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::hook::daemon::Daemon;
use crate::hook::event::lifecycle_event;
use crate::hook::gate::{report_lines, Decision, Gate};
use crate::hook::request::{self, bundle_request};
use crate::hook::state::{Stage, State};

#[derive(clap::Args)]
pub struct Args {
    /// Config file (YAML), the same as every door's.
    #[arg(long, short)]
    config: PathBuf,
    /// The hook stage; by default read from the state's `status` (`creating`/`created`:
    /// createRuntime, `stopped`: poststop).
    #[arg(long, value_enum)]
    stage: Option<Stage>,
}

/// Events are best effort: they never hold a container up for long.
const EVENT_TIMEOUT: Duration = Duration::from_millis(500);

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let gate = Gate::load(&args.config);
    let state = std::io::read_to_string(std::io::stdin())
        .map_err(Into::into)
        .and_then(|text| State::parse(&text));
    let state = match state {
        Ok(s) => s,
        // poststop never fails the runtime, whatever it was given.
        Err(e) if args.stage == Some(Stage::Poststop) => {
            eprintln!("portcullis: {e}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Ok(finish(&gate.undecidable(e.to_string()), "the container")),
    };
    let what = format!("container {}", state.id);
    let Some(stage) = args.stage.or_else(|| Stage::from_status(&state.status)) else {
        let why = format!(
            "cannot tell the hook stage from status {:?}; pass --stage",
            state.status
        );
        return Ok(finish(&gate.undecidable(why), &what));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let spec = request::read_spec(&state.bundle);
    let namespace = request::namespace(
        &state.annotations,
        &state.bundle,
        None,
        gate.pod_options().kubernetes_namespace,
    );
    let mut opts = gate.pod_options();
    opts.storage_roots
        .extend(request::storage_root(&state.bundle));
    let request = spec
        .and_then(|spec| bundle_request(&namespace, &state.id, &spec, &opts, "portcullis-hook"));
    let image = request
        .as_ref()
        .map(|r| request::image_of(r).to_owned())
        .unwrap_or_default();
    if !stage.decides() {
        // poststop: report, never fail the runtime.
        send_event(
            &runtime,
            &gate,
            lifecycle_event(stage, &state, &image, None),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let decision = match &request {
        Ok(r) => runtime.block_on(gate.decide(r)),
        Err(e) => gate.undecidable(format!("{what}: {e:#}")),
    };
    let event = lifecycle_event(
        stage,
        &state,
        &image,
        Some((decision.allowed, &decision.message)),
    );
    send_event(&runtime, &gate, event);
    Ok(finish(&decision, &what))
}

/// Tells on stderr, and the exit code: 0 admitted, 1 refused.
pub fn finish(decision: &Decision, what: &str) -> ExitCode {
    for line in report_lines(decision, what) {
        eprintln!("{line}");
    }
    if decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn send_event(runtime: &tokio::runtime::Runtime, gate: &Gate, event: serde_json::Value) {
    let Some(socket) = &gate.hook.daemon_socket else {
        return;
    };
    let timeout = EVENT_TIMEOUT.min(gate.hook.timeout);
    if let Err(e) = runtime.block_on(Daemon::new(socket).event(&event, timeout)) {
        tracing::debug!(error = %e, "lifecycle event not delivered");
    }
}
