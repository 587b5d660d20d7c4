//! An isolated Podman: its own root, runroot and tmpdir under the test's directory,
//! cgroupfs, file events and, when asked, the `portcullis` binary as its OCI hook (the
//! hooks directory `portcullis install hooks --podman` writes). tests/hook.rs,
//! tests/gatekeeper_doors.rs and tests/audit.rs run their containers through it.

use std::path::Path;
use std::process::{Command, Output};

use super::{needs, ok};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// The busybox image as `podman load` names it (the docker-archive's `busybox:1.36`).
pub const PODMAN_IMAGE: &str = "localhost/busybox:1.36";

pub struct Podman {
    /// The global flags every `podman` call of this instance takes.
    flags: Vec<String>,
}

impl Podman {
    /// Installs the hook (judging by `config`) in `dir/hooks.d` and loads the busybox image.
    pub fn new(dir: &Path, config: &Path) -> Self {
        needs(&["root", "podman"]);
        let hooks = dir.join("hooks.d");
        ok(Command::new(BIN)
            // Under --root, so that the install's record stays in `dir` too.
            .args(["install", "hooks", "--podman", "--root"])
            .arg(dir)
            .args(["--dir", "/hooks.d"])
            .arg("--config")
            .arg(config)
            .args(["--binary", BIN])
            .output()
            .unwrap());
        Self::with_flags(dir, Some(&hooks))
    }

    /// The same Podman with no hook: containers run unjudged (what exists before a policy).
    pub fn without_hook(dir: &Path) -> Self {
        needs(&["root", "podman"]);
        Self::with_flags(dir, None)
    }

    fn with_flags(dir: &Path, hooks: Option<&Path>) -> Self {
        let d = dir.display();
        let mut flags = vec![
            format!("--root={d}/root"),
            format!("--runroot={d}/runroot"),
            format!("--tmpdir={d}/tmp"),
            "--storage-driver=overlay".into(),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=file".into(),
        ];
        flags.extend(hooks.map(|h| format!("--hooks-dir={}", h.display())));
        let p = Self { flags };
        ok(p.run(&["load", "-i", super::image_tar().to_str().unwrap()]));
        p
    }

    /// The global flags (for `portcullis audit --podman-flag`).
    pub fn flags(&self) -> &[String] {
        &self.flags
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(&self.flags)
            .args(args)
            .output()
            .unwrap()
    }

    /// `podman run --rm --name NAME` of the busybox image with `extra` flags and the
    /// ulimits these machines need, running `command`.
    pub fn container(&self, name: &str, extra: &[&str], command: &[&str]) -> Output {
        self.run(&Self::run_args(&["--rm"], name, extra, command))
    }

    /// A detached `sleep` named `name` with `extra` flags; it must start.
    pub fn start(&self, name: &str, extra: &[&str]) {
        ok(self.run(&Self::run_args(&["-d"], name, extra, &["sleep", "600"])));
    }

    fn run_args<'a>(
        mode: &[&'a str],
        name: &'a str,
        extra: &[&'a str],
        command: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec!["run"];
        args.extend(mode);
        args.extend(["--name", name, "--network", "none"]);
        args.extend([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]);
        args.extend(extra);
        args.extend(["--pull", "never", PODMAN_IMAGE]);
        args.extend(command);
        args
    }

    /// The names of every container Podman knows, running or not.
    pub fn containers(&self) -> Vec<String> {
        ok(self.run(&["ps", "-a", "--format", "{{.Names}}"]))
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Removes what still runs and unmounts the overlay layers so the temp dir can go.
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["system", "reset", "--force"]);
    }
}
