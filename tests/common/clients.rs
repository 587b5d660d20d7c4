//! The gRPC clients we did not write, as the real-component tests run them: the grpc-go
//! client of `tests/fixtures/clients/go` and `tests/fixtures/clients/python/client.py`
//! under two Python interpreters — the registry's grpcio (>= 1.57, in the venv
//! `scripts/setup.sh` makes in `target/clients-venv`) and Debian's python3-grpcio 1.51
//! (`/usr/bin/python3`) — which differ in what they send as `:authority` (see
//! `tests/clients/python.rs`). Shared by the relay matrix (`tests/clients.rs`) and the CRI
//! door's third-party kubelets (`tests/cri/clients.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The grpc-go client (`main.go` and `cri.go`), built once per test binary run.
pub fn grpc_go() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients/go");
        super::go::build("grpc-go-client", &dir, &["grpc-go", "protobuf-go"])
    })
}

/// A Python interpreter with grpcio importable.
pub struct Python {
    pub exe: PathBuf,
    pub grpcio: String,
}

impl Python {
    /// The venv's interpreter, with grpcio from the package registry.
    pub fn registry() -> Self {
        super::needs(&["grpcio-venv"]);
        let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients-venv/bin/python");
        let py = Self::new(exe);
        assert!(
            py.at_least(1, 57),
            "{} has grpcio {}, not >= 1.57; run scripts/setup.sh",
            py.exe.display(),
            py.grpcio
        );
        py
    }

    /// Debian's interpreter, with Debian's python3-grpcio: the pre-1.57 `:authority`.
    pub fn debian() -> Self {
        super::needs(&["python3-grpcio"]);
        let py = Self::new(PathBuf::from("/usr/bin/python3"));
        assert!(
            !py.at_least(1, 57),
            "Debian's python3-grpcio is {}: this matrix expects the pre-1.57 one",
            py.grpcio
        );
        py
    }

    fn new(exe: PathBuf) -> Self {
        let out = Command::new(&exe)
            .args(["-c", "import grpc; print(grpc.__version__)"])
            .output();
        let grpcio = match out {
            Ok(out) if out.status.success() => super::text(&out).trim().to_owned(),
            Ok(out) => panic!(
                "{} cannot import grpc; run scripts/setup.sh (as root): {}",
                exe.display(),
                super::text(&out)
            ),
            Err(e) => panic!("{}: {e}; run scripts/setup.sh (as root)", exe.display()),
        };
        eprintln!("{}: grpcio {grpcio}", exe.display());
        Self { exe, grpcio }
    }

    fn at_least(&self, major: u32, minor: u32) -> bool {
        let mut parts = self
            .grpcio
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
    }

    /// `client.py SOCKET ARGS…`, killed after a minute so a hung relay fails the test.
    pub fn client(&self, socket: &Path, args: &[&str]) -> Command {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients/python/client.py");
        let mut cmd = Command::new("timeout");
        cmd.arg("60")
            .arg(&self.exe)
            .arg(script)
            .arg(socket)
            .args(args);
        cmd
    }

    /// Runs the script to its end: its JSON lines, or a panic with everything it said.
    #[track_caller]
    pub fn run(&self, socket: &Path, args: &[&str]) -> Vec<Value> {
        let out = self.client(socket, args).output().unwrap();
        self.answers(args, &out)
    }

    #[track_caller]
    pub fn answers(&self, args: &[&str], out: &Output) -> Vec<Value> {
        assert!(
            out.status.success(),
            "grpcio {} `{}` failed ({}):\n{}",
            self.grpcio,
            args.join(" "),
            out.status,
            super::text(out)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}
