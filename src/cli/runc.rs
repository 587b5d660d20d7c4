//! `portcullis runc`: a runc wrapper. On `create`/`run` it checks the bundle like the hook
//! and refuses (exit 1, message on stderr and in runc's `--log`) without running runc;
//! otherwise it execs the real runc with exactly the same arguments.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use crate::convert::{self, cgroups, strict};
use crate::hook::gate::{report_lines, Decision, Gate};
use crate::hook::request::{self, bundle_request};
use crate::hook::runc::{self as wrapper, Exec, RuncCall};
use crate::review::Door;

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
    if let Some(exec) = &call.exec {
        let gate = Gate::load(&args.config).at(Door::Runc);
        let what = format!("exec in container {}", exec.id);
        let decision = match exec_refusal(args, call, exec) {
            Ok(None) => return Ok(None),
            Ok(Some(why)) => gate.refuse(format!("{what}: {why}")),
            Err(e) => gate.refuse(format!(
                "{what}: cannot tell what the exec'd process would hold ({e:#}), so it is refused"
            )),
        };
        return Ok(Some(refused(call, &decision, &what)));
    }
    let Some(create) = &call.create else {
        return Ok(None);
    };
    let gate = Gate::load(&args.config).at(Door::Runc);
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
    if decision.allowed {
        for line in report_lines(&decision, &what) {
            eprintln!("{line}");
        }
        return Ok(None);
    }
    Ok(Some(refused(call, &decision, &what)))
}

/// Reports a refusal on stderr and in runc's `--log`; the exit code.
fn refused(call: &RuncCall, decision: &Decision, what: &str) -> ExitCode {
    let lines = report_lines(decision, what);
    for line in &lines {
        eprintln!("{line}");
    }
    if let Some(first) = lines.first() {
        wrapper::log_refusal(call, first);
    }
    ExitCode::from(1)
}

/// Why `runc exec` would run a process holding more than its container (convert::exec),
/// if it would: the container's process from its bundle (found with `runc state`), the
/// exec's from `--process` or from the container's with the flags applied, as runc does.
fn exec_refusal(args: &Args, call: &RuncCall, exec: &Exec) -> anyhow::Result<Option<String>> {
    let runc = wrapper::find_runc(args.runc.as_deref(), std::env::var_os("PATH"))
        .context("no runc found (pass --runc PATH)")?;
    let mut state = std::process::Command::new(&runc);
    if let Some(root) = &call.root {
        state.arg("--root").arg(root);
    }
    let out = state.args(["state", &exec.id]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "runc state: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let state: Value = serde_json::from_slice(&out.stdout).context("runc state")?;
    let bundle = state["bundle"]
        .as_str()
        .context("runc state has no bundle")?;
    let spec = request::read_spec(std::path::Path::new(bundle))?;
    let own = spec.get("process").cloned().unwrap_or(Value::Null);
    let process = match &exec.process {
        Some(file) => {
            let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
            strict::parse_process(&bytes)?
        }
        None => exec_process(own.clone(), exec)?,
    };
    Ok(convert::exec::check(&own, &process)
        .err()
        .map(|r| r.to_string()))
}

/// The process `runc exec` builds from the container's and its flags (runc's exec.go).
fn exec_process(mut p: Value, exec: &Exec) -> anyhow::Result<Value> {
    // Indexing below writes into objects; anything else in the bundle is refused instead.
    anyhow::ensure!(p.is_object(), "the container's `process` is not an object");
    for key in ["capabilities", "user"] {
        let ok = p.get(key).is_none_or(|v| v.is_object() || v.is_null());
        anyhow::ensure!(ok, "the container's `process.{key}` is not an object");
    }
    let uint = |s: &str| -> anyhow::Result<u32> {
        s.parse()
            .with_context(|| format!("{s:?} is not a numeric id"))
    };
    if !exec.caps.is_empty() {
        let caps = &mut p["capabilities"];
        let inheritable = caps.get("inheritable").is_some_and(|v| !v.is_null());
        for set in ["bounding", "effective", "permitted"]
            .into_iter()
            .chain(inheritable.then_some("ambient"))
        {
            let list = &mut caps[set];
            if !list.is_array() {
                *list = Value::Array(Vec::new());
            }
            if let Some(list) = list.as_array_mut() {
                list.extend(exec.caps.iter().map(|c| Value::from(c.as_str())));
            }
        }
    }
    if let Some(user) = &exec.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
        p["user"]["uid"] = uint(uid)?.into();
        if !gid.is_empty() {
            p["user"]["gid"] = uint(gid)?.into();
        }
    }
    if !exec.additional_gids.is_empty() {
        let gids = exec
            .additional_gids
            .iter()
            .map(|g| uint(g).map(Value::from))
            .collect::<anyhow::Result<Vec<_>>>()?;
        p["user"]["additionalGids"] = Value::Array(gids);
    }
    if let Some(profile) = &exec.apparmor {
        p["apparmorProfile"] = profile.as_str().into();
    }
    if let Some(label) = &exec.process_label {
        p["selinuxLabel"] = label.as_str().into();
    }
    if exec.no_new_privs {
        p["noNewPrivileges"] = true.into();
    }
    Ok(p)
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
        Ok(spec) => match cgroups::refusal(&spec) {
            Some(why) => gate.refuse(format!("{what}: linux.cgroupsPath {why}")),
            None => {
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
        },
        Err(e) => gate.undecidable(format!("{what}: {e:#}")),
    })
}
