//! `portcullis check` as a user runs it: the real binary on real files, exit codes 0/1/2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/runtime-specs"
);

fn check(dir: &Path, config: &str, args: &[&str]) -> Output {
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("check")
        .arg("--config")
        .arg(&config_path)
        .args(args)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn exit_codes_say_admitted_denied_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "images: {disallowLatest: true}\n";
    let pinned = write(dir.path(), "pinned.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: 'busybox:1.36'}]\n");
    let latest = write(dir.path(), "latest.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers: [{name: c, image: busybox}]\n");
    let garbage = write(dir.path(), "garbage.yaml", "kind: [unclosed\n");

    let ok = check(
        dir.path(),
        rules,
        &[
            pinned.to_str().unwrap(),
            &format!("{FIXTURES}/ctr/plain.container.json"),
        ],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let denied = check(
        dir.path(),
        rules,
        &[pinned.to_str().unwrap(), latest.to_str().unwrap()],
    );
    assert_eq!(denied.status.code(), Some(1));
    let out = String::from_utf8_lossy(&denied.stdout);
    assert!(
        out.contains("admitted") && out.contains("images.disallowLatest"),
        "{out}"
    );

    let bad = check(dir.path(), rules, &[garbage.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("garbage.yaml"));

    let bad_policy = check(
        dir.path(),
        "images: {disallowLatests: true}\n",
        &[pinned.to_str().unwrap()],
    );
    assert_eq!(bad_policy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_policy.stderr).contains("disallowLatests"));
}

#[test]
fn json_output_reads_oci_configs_and_admission_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let review = write(
        dir.path(),
        "review.json",
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
        "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
        "name":"r","namespace":"ns","operation":"CREATE","userInfo":{"username":"alice"},
        "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r"},"spec":{"containers":[{"name":"c","image":"nginx:latest"}]}}}}"#,
    );
    let out = check(
        dir.path(),
        "images: {disallowLatest: true}\n",
        &[
            "--output",
            "json",
            review.to_str().unwrap(),
            &format!("{FIXTURES}/podman/privileged.config.json"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!(
        (
            report[0]["namespace"].as_str(),
            report[0]["allowed"].as_bool()
        ),
        (Some("ns"), Some(false))
    );
    assert_eq!(report[1]["name"], "privileged");
    assert_eq!(report[0]["status"]["code"], 403);
}
