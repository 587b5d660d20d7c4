//! §3 The runc wrapper (`portcullis runc`): subcommands other than `create` and `run` that
//! start processes (`restore`, `exec`) must be judged or refused, not handed to runc.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::kit::{all_caps, outcome, Corpus, Gate};

const NS: &str = "default";

/// A bundle whose config.json is `spec`, for the runc wrapper.
fn bundle(dir: &Path, name: &str, spec: &Value) -> std::path::PathBuf {
    bundle_text(dir, name, &spec.to_string())
}

/// A bundle whose config.json is exactly `text`.
fn bundle_text(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let b = dir.join(name);
    std::fs::create_dir_all(b.join("rootfs")).unwrap();
    std::fs::write(b.join("config.json"), text).unwrap();
    b
}

/// `portcullis runc --config CONFIG --runc SCRIPT -- --root ROOT ARGS...`, the "real runc"
/// being a script that records it was handed the call: `(outcome, runc ran)`.
fn wrapper(g: &Gate, config: &Path, name: &str, args: &[String]) -> (Result<(), String>, bool) {
    let marker = g.host(&format!("runc-{name}.marker"));
    // A stand-in runc: `state` answers for a running container whose bundle holds a
    // baseline-clean spec (the wrapper reads it to judge an exec); any other command is
    // what must not run, and leaves the marker.
    let bundle = g.host_dir(&format!("runc-{name}-bundle"));
    let clean = g.spec(NS, &format!("state-{name}"), &["sh"]);
    std::fs::write(bundle.join("config.json"), clean.to_string()).unwrap();
    let runc = g.host(&format!("runc-{name}.sh"));
    std::fs::write(
        &runc,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = state ] && {{ printf '{{\"id\":\"x\",\"status\":\"running\",\"bundle\":\"{}\"}}'; exit 0; }}; done\nid -u > {}\nexit 0\n",
            bundle.display(),
            marker.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&runc, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["runc", "--config"])
        .arg(config)
        .arg("--runc")
        .arg(&runc)
        .arg("--")
        .arg("--root")
        .arg(g.host("runc-root/default"))
        .args(args)
        .output()
        .unwrap();
    (outcome(out), marker.exists())
}

/// The wrapper reads `create`'s bundle as the proxy reads a spec: what the proxy must
/// refuse, the wrapper must refuse before runc (Go's JSON) runs it.
#[test]
fn runc_wrapper_create_reads_the_bundle_as_runc_does() {
    let g = Gate::new("");
    let mut c = Corpus::new("runc wrapper create");
    let config = g.host("wrapper.yaml");
    std::fs::write(&config, super::kit::BASELINE).unwrap();
    let clean = g.spec(NS, "wrapped", &["sh"]);
    let mut privileged = clean["process"].clone();
    privileged["capabilities"] = all_caps();
    let mut hooked = clean.clone();
    hooked["hooks"] =
        serde_json::json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "true"]}]});
    let mut host_root = clean.clone();
    host_root["root"] = serde_json::json!({"path": g.host_dir("wrapper-root"), "readonly": false});
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("control: a baseline-clean bundle", clean.to_string(), &[]),
        (
            "benign process, then \"PROCESS\" with every capability",
            super::kit::with_members(&clean, &[("PROCESS", privileged.to_string())]),
            &["process", "duplicate", "key"],
        ),
        (
            "a createRuntime hook",
            hooked.to_string(),
            &["hook", "privileged"],
        ),
        (
            "root.path a host directory",
            host_root.to_string(),
            &["root", "hostPath"],
        ),
    ];
    for (n, (case, text, words)) in cases.into_iter().enumerate() {
        let b = bundle_text(g.dir(), &format!("create-bundle-{n}"), &text);
        let args = vec![
            "create".to_owned(),
            "--bundle".to_owned(),
            b.display().to_string(),
            format!("w-create-{n}"),
        ];
        let (result, ran) = wrapper(&g, &config, &format!("create-{n}"), &args);
        if words.is_empty() {
            c.admitted(case, &result, vec![("the wrapper ran runc".into(), ran)]);
        } else {
            c.refused(
                case,
                &result,
                words,
                vec![("the wrapper ran runc with it".into(), ran)],
            );
        }
    }
    c.finish(&g.w);
}

#[test]
fn runc_wrapper_subcommands_other_than_create_and_run() {
    let g = Gate::new("");
    let mut c = Corpus::new("runc wrapper");
    let config = g.host("wrapper.yaml");
    std::fs::write(&config, super::kit::BASELINE).unwrap();
    let mut privileged = g.spec(NS, "wrapped", &["sh"]);
    privileged["process"]["capabilities"] = all_caps();
    privileged["linux"]["seccomp"] = Value::Null;
    let b = bundle(g.dir(), "privileged-bundle", &privileged);
    let process = g.host("process.json");
    std::fs::write(&process, privileged["process"].to_string()).unwrap();
    let cases: Vec<(&str, Vec<String>, &[&str])> = vec![
        (
            "control: create of a privileged bundle",
            vec![
                "create".into(),
                "--bundle".into(),
                b.display().to_string(),
                "w-create".into(),
            ],
            &["privileged", "capabilit"],
        ),
        (
            "restore of a privileged bundle from a checkpoint",
            vec![
                "restore".into(),
                "--image-path".into(),
                g.host("checkpoint").display().to_string(),
                "--bundle".into(),
                b.display().to_string(),
                "w-restore".into(),
            ],
            &["restore", "checkpoint"],
        ),
        (
            "exec --process with every capability",
            vec![
                "exec".into(),
                "--process".into(),
                process.display().to_string(),
                "some-container".into(),
            ],
            &["exec", "capabilit", "privileged"],
        ),
        (
            "exec --cap CAP_SYS_ADMIN",
            vec![
                "exec".into(),
                "--cap".into(),
                "CAP_SYS_ADMIN".into(),
                "some-container".into(),
                "sh".into(),
            ],
            &["exec", "capabilit", "SYS_ADMIN"],
        ),
    ];
    for (n, (case, args, words)) in cases.into_iter().enumerate() {
        let (result, ran) = wrapper(&g, &config, &n.to_string(), &args);
        c.refused(
            case,
            &result,
            words,
            vec![("the wrapper ran runc with it".to_owned(), ran)],
        );
    }
    // Control: an exec holding what its container holds goes on to runc.
    for (name, case, args) in [
        (
            "plain",
            "control: a plain exec",
            vec!["exec", "-t", "some-container", "sh"],
        ),
        (
            "own-cap",
            "control: exec --cap of a capability the container has",
            vec!["exec", "--cap", "CAP_CHOWN", "some-container", "sh"],
        ),
    ] {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let (result, ran) = wrapper(&g, &config, name, &args);
        c.admitted(case, &result, vec![("the wrapper ran runc".into(), ran)]);
    }
    c.finish(&g.w);
}
