//! Small Go programs the tests drive (a grpc-go client, the `encoding/json` oracle), built
//! offline in GOPATH mode against Debian's `golang-*-dev` sources: no module proxy, no user
//! Go environment, no cgo.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use super::prereq::GOPATH;

/// Builds `main` (a `main.go`, or a directory: its `package main` of several files) into
/// `target/tmp/NAME/NAME` and returns the binary. `sources` name the
/// GOPATH sources it needs (prerequisites of `prereq.rs`: `grpc-go`, `runtime-spec-go`, …);
/// a missing one (or Go itself) fails with what to install. Callers keep the result in a
/// `OnceLock`: one build per test binary run.
pub fn build(name: &str, main: &Path, sources: &[&str]) -> PathBuf {
    let mut needs = vec!["go"];
    needs.extend(sources);
    super::prereq::prerequisites(&needs);
    // Under target/, so the Go build cache survives between runs (grpc-go and x/net take
    // ~15 s the first time; later builds a second).
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let bin = dir.join(name);
    // Build under a name of our own and rename: another test process may be running the
    // binary it built a moment ago.
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    let out = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&tmp)
        .args(go_files(main))
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPROXY", "off")
        .env("GOENV", "off")
        .env("CGO_ENABLED", "0")
        .env_remove("GOFLAGS")
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("running go build: {e}"));
    assert!(
        out.status.success(),
        "go build {}:\n{}{}",
        main.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &bin)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), bin.display()));
    bin
}

/// `main` itself, or the `.go` files in the directory `main` (GOPATH mode builds no
/// directory named by an absolute path outside GOPATH, but takes its files).
fn go_files(main: &Path) -> Vec<PathBuf> {
    if !main.is_dir() {
        return vec![main.to_owned()];
    }
    let entries =
        std::fs::read_dir(main).unwrap_or_else(|e| panic!("reading {}: {e}", main.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "go"))
        .collect();
    files.sort();
    files
}
