//! containerd 2.x's image-verifier runner, re-done for the tests (containerd 1.6 from
//! Debian has no such plugin): `pkg/imageverifier/bindir` `runVerifier`, step for step —
//! the binary in `bin_dir` run with exactly `-name REF -digest DIGEST -stdin-media-type
//! application/vnd.oci.descriptor.v1+json`, the descriptor written to stdin by Go's
//! `json.Encoder` (compact JSON and a newline), stdout read up to 32 KiB (the reason,
//! trimmed, with "(stdout truncated)" if more came), stderr logged, the exit code the
//! judgement, and on `per_verifier_timeout` the process group killed (containerd starts
//! the verifier in a group of its own and kills the group).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// containerd's `outputLimitBytes`.
pub const OUTPUT_LIMIT: usize = 1 << 15;
pub const DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";

/// What containerd made of one run.
#[derive(Debug)]
pub struct Judgement {
    /// `None`: killed at the timeout (containerd: an error, the pull fails).
    pub exit_code: Option<i32>,
    /// stdout as containerd keeps it.
    pub reason: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The verifier's process group.
    pub pgid: i32,
}

impl Judgement {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Runs `bin` as containerd runs a verifier for a pull of `name` resolved to `descriptor`
/// (whose `digest` is passed as `-digest`).
pub fn run(bin: &Path, name: &str, descriptor: &serde_json::Value, timeout: Duration) -> Judgement {
    let digest = descriptor["digest"].as_str().unwrap_or_default().to_owned();
    run_with_digest(bin, name, descriptor, &digest, timeout)
}

/// [`run`] with `-digest` given apart from the descriptor (a mismatch containerd never
/// makes, to show the verifier notices).
pub fn run_with_digest(
    bin: &Path,
    name: &str,
    descriptor: &serde_json::Value,
    digest: &str,
    timeout: Duration,
) -> Judgement {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args([
            "-name",
            name,
            "-digest",
            digest,
            "-stdin-media-type",
            DESCRIPTOR,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let pgid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let encoded = format!("{descriptor}\n");
    std::thread::spawn(move || {
        let _ = stdin.write_all(encoded.as_bytes());
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        kept.extend_from_slice(&all[..all.len().min(OUTPUT_LIMIT)]);
        let mut reason = String::from_utf8_lossy(&kept).trim().to_owned();
        if all.len() > OUTPUT_LIMIT {
            reason.push_str("(stdout truncated)");
        }
        reason
    });
    let err = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let exit_code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > timeout {
            // containerd: cancel the context, kill the group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Judgement {
        exit_code,
        reason: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed: started.elapsed(),
        pgid,
    }
}

/// A descriptor as containerd resolves one: the image index of the test image.
pub fn descriptor(digest: &str, size: u64) -> serde_json::Value {
    serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": size,
    })
}

/// `portcullis install image-verifier` of `config` (YAML, written to `dir/verifier.yaml`)
/// into `dir/bin`, checked to write containerd's stanza naming it into
/// `dir/etc/containerd/config.toml`: the wrapper containerd would run.
pub fn install(dir: &Path, config: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config_path = dir.join("verifier.yaml");
    std::fs::write(&config_path, config).unwrap();
    let bin_dir = dir.join("bin");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        // Under --root, so that the install's record stays in `dir` too.
        .args(["install", "image-verifier", "--root"])
        .arg(dir)
        .args(["--bin-dir", "/bin"])
        .arg("--config")
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let toml = std::fs::read_to_string(dir.join("etc/containerd/config.toml")).unwrap();
    assert!(
        toml.contains(
            "[plugins.\"io.containerd.image-verifier.v1.bindir\"]\n  bin_dir = \"/bin\"\n"
        ),
        "{toml}"
    );
    bin_dir.join("portcullis")
}

/// Processes still in group `pgid` (none once containerd killed it).
pub fn group_alive(pgid: i32) -> bool {
    Command::new("pgrep")
        .args(["-g", &pgid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}
