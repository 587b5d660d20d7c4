//! An isolated Podman with the `portcullis` binary as its OCI hook: its own root, runroot
//! and tmpdir under the test's directory, cgroupfs, file events, and the hooks directory
//! `portcullis install hooks --podman` writes. (tests/hook.rs keeps its own copy.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{needs, ok};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// The busybox image as `podman load` names it (the docker-archive's `busybox:1.36`).
pub const PODMAN_IMAGE: &str = "localhost/busybox:1.36";

pub struct Podman {
    dir: PathBuf,
    hooks: PathBuf,
}

impl Podman {
    /// Installs the hook (judging by `config`) in `dir/hooks.d` and loads the busybox image.
    pub fn new(dir: &Path, config: &Path) -> Self {
        needs(&["root", "podman"]);
        let hooks = dir.join("hooks.d");
        ok(Command::new(BIN)
            .args(["install", "hooks", "--podman", "--dir"])
            .arg(&hooks)
            .arg("--config")
            .arg(config)
            .args(["--binary", BIN])
            .output()
            .unwrap());
        let p = Self {
            dir: dir.to_path_buf(),
            hooks,
        };
        ok(p.run(&["load", "-i", super::image_tar().to_str().unwrap()]));
        p
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let d = &self.dir;
        Command::new("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "overlay"])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"])
            .arg("--hooks-dir")
            .arg(&self.hooks)
            .args(args)
            .output()
            .unwrap()
    }

    /// `podman run --rm --name NAME` of the busybox image with `extra` flags and the
    /// ulimits these machines need, running `command`.
    pub fn container(&self, name: &str, extra: &[&str], command: &[&str]) -> Output {
        let mut args = vec!["run", "--rm", "--name", name, "--network", "none"];
        args.extend([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]);
        args.extend(extra);
        args.extend(["--pull", "never", PODMAN_IMAGE]);
        args.extend(command);
        self.run(&args)
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
        // Unmounts the overlay layers so the temp dir can go.
        let _ = self.run(&["system", "reset", "--force"]);
    }
}
