//! §3 The runc wrapper (`portcullis runc`): subcommands other than `create` and `run` that
//! start processes (`restore`, `exec`) must be judged or refused, not handed to runc.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::kit::{all_caps, outcome, Corpus, Gate};

const NS: &str = "default";

/// A bundle whose config.json is `spec`, for the runc wrapper.
fn bundle(dir: &Path, name: &str, spec: &Value) -> std::path::PathBuf {
    let b = dir.join(name);
    std::fs::create_dir_all(b.join("rootfs")).unwrap();
    std::fs::write(b.join("config.json"), serde_json::to_vec(spec).unwrap()).unwrap();
    b
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
    let root = g.host("runc-root/default");
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
        // The "real runc" is a script recording that the wrapper handed the call on.
        let marker = g.host(&format!("runc-{n}.marker"));
        let runc = g.evil_script(&format!("runc-{n}.sh"), &marker);
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["runc", "--config"])
            .arg(&config)
            .arg("--runc")
            .arg(&runc)
            .arg("--")
            .arg("--root")
            .arg(&root)
            .args(&args)
            .output()
            .unwrap();
        c.refused(
            case,
            &outcome(out),
            words,
            vec![("the wrapper ran runc with it".to_owned(), marker.exists())],
        );
    }
    c.finish(&g.w);
}
