//! The harness every real-component test shares: a private containerd (own root, state and
//! socket under a temp dir), the proxy binary in front of it, dockerd pointed at the proxy,
//! a local busybox image, the real `ctr` and `docker` clients, a webhook server the test
//! controls, and a real registry to pull from (`registry.rs`).
//!
//! Missing components are a failure, not a skip: run `scripts/setup.sh` first. Each test
//! binary names what it needs in `PREREQUISITES` (see `prereq.rs`); the harness checks
//! them all at its first use and fails with one line naming what is missing.
// Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod clients;
pub mod cosign;
pub mod cri;
pub mod gatekeeper;
pub mod go;
pub mod notation;
pub mod podman;
pub mod prereq;
pub mod procstat;
pub mod registry;
pub mod verifier;
pub mod webhook;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use prereq::prerequisites;
pub use webhook::WebhookServer;

pub const IMAGE: &str = "docker.io/library/busybox:1.36";
/// A `policyDir` whose MutatingAdmissionPolicy gives every container the env var
/// `GREETING=hello-from-a-policy`.
pub const GREETING_POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/policies/greeting"
);

pub const IMAGE_LATEST: &str = "docker.io/library/busybox:latest";

/// Asserts that `tool` (a name in `prereq.rs`'s table) is installed.
#[track_caller]
pub fn require(tool: &str) {
    prerequisites(&[tool]);
}

/// Checks this test binary's prerequisites (`PREREQUISITES` at its root) once, at the
/// first harness use: every test after a failed check fails with the same one line.
#[track_caller]
pub fn check_prerequisites() {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    if let Some(line) = MISSING.get_or_init(|| prereq::missing(crate::PREREQUISITES)) {
        panic!("{line}");
    }
}

/// A harness part needs `names`: the binary's prerequisites are checked (once), then any of
/// `names` its `PREREQUISITES` does not list.
#[track_caller]
pub fn needs(names: &[&str]) {
    check_prerequisites();
    let unlisted: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !crate::PREREQUISITES.contains(n))
        .collect();
    if !unlisted.is_empty() {
        prerequisites(&unlisted);
    }
}

/// The busybox image tar, built once per test binary.
pub fn image_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| build_image_tar("busybox.tar", &[IMAGE, IMAGE_LATEST], None))
}

/// Builds an image tar with scripts/busybox-image.sh (`cmd`: the image config's Cmd) as
/// `target/tmp/images/NAME`: under a name of this process's and then renamed into place,
/// so test binaries running at once never read half a tar, and a run leaves one file per
/// image in the target directory rather than a directory per process in /tmp.
pub fn build_image_tar(name: &str, refs: &[&str], cmd: Option<&str>) -> PathBuf {
    needs(&["busybox"]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("images");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join(name);
    let partial = dir.join(format!("{name}.{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
    let mut script = Command::new(script);
    if let Some(cmd) = cmd {
        script.env("IMAGE_CMD", cmd);
    }
    let out = script.arg(&partial).args(refs).output().unwrap();
    assert!(
        out.status.success(),
        "building the image {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &tar).unwrap();
    tar
}

/// A child process killed (and reaped) when dropped.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Self {
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id, while it has not been stopped.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited on its own (reaping it if so).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `path` accepts connections.
pub fn wait_for_socket(path: &Path, what: &str, proc: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what} did not listen on {} in 30 s; log:\n{}",
        path.display(),
        proc.log_text()
    );
}

/// A private containerd.
pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    config: PathBuf,
    proc: Proc,
    starts: u32,
    /// The CRI plugin's pod network (dropped after the tasks are cleaned up).
    cni: Option<cri::Cni>,
}

impl Containerd {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, false)
    }

    /// A private containerd with its CRI plugin serving `runtime.v1` and
    /// `runtime.v1alpha2` on the same socket (CNI and streaming stay private to `dir`); see
    /// [`cri::plugin_config`]. Its images are [`cri::CriWorld`]'s to import.
    pub fn start_with_cri(dir: &Path) -> Self {
        Self::start_with(dir, true)
    }

    fn start_with(dir: &Path, cri: bool) -> Self {
        needs(&["root", "containerd", "runc", "ctr"]);
        let dir = dir.join("containerd");
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        let d = dir.display();
        let (plugins, cni) = if cri {
            let (plugins, cni) = cri::plugin_config(&dir);
            (plugins, Some(cni))
        } else {
            (
                "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".to_owned(),
                None,
            )
        };
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n{plugins}\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        )
        .unwrap();
        let proc = Self::spawn(&dir, &config, &socket, 0);
        Self {
            dir,
            socket,
            config,
            proc,
            starts: 1,
            cni,
        }
    }

    fn spawn(dir: &Path, config: &Path, socket: &Path, n: u32) -> Proc {
        let log = dir.join(format!("containerd-{n}.log"));
        let proc = Proc::spawn(Command::new("containerd").arg("--config").arg(config), log);
        wait_for_socket(socket, "containerd", &proc);
        proc
    }

    /// Stops and starts containerd again on the same root, state and socket.
    pub fn restart(&mut self) {
        self.proc.stop();
        let _ = std::fs::remove_file(&self.socket);
        self.proc = Self::spawn(&self.dir, &self.config, &self.socket, self.starts);
        self.starts += 1;
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// containerd's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.id()
    }

    /// Kills and deletes every task, so no shim or container outlives the test (runc's
    /// state lives under the host-wide `/run/containerd/runc`, shared by every containerd).
    pub fn clean_up(&self) {
        let Ok(out) = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["namespaces", "ls", "-q"])
            .output()
        else {
            return;
        };
        for ns in String::from_utf8_lossy(&out.stdout).lines() {
            let ctr = |args: &[&str]| {
                Command::new("ctr")
                    .arg("--address")
                    .arg(&self.socket)
                    .args(["-n", ns])
                    .args(args)
                    .output()
                    .ok()
            };
            let tasks = ctr(&["tasks", "ls", "-q"])
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for id in tasks.lines() {
                ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
                ctr(&["tasks", "delete", "-f", id]);
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.clean_up();
    }
}

/// A container id unique to this test process, so parallel and repeated runs never meet
/// in the host-wide runc state.
pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The binary the daemons run: `PORTCULLIS_BIN` if set (e.g. a release build, for the
/// memory figures of tests/load.rs), else the one cargo built for this test.
pub fn portcullis_bin() -> PathBuf {
    std::env::var_os("PORTCULLIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portcullis")))
}

/// A `portcullis` daemon under test (the proxy, or serve), its config file and its socket.
pub struct Portcullis {
    pub socket: PathBuf,
    pub config: PathBuf,
    proc: Proc,
}

/// The proxy binary under test.
pub type Proxy = Portcullis;
/// `portcullis serve` under test.
pub type Serve = Portcullis;

impl Portcullis {
    /// Writes `config` to `dir/VERB.yaml` and runs `portcullis VERB --config it` with
    /// `args` then `socket_flag dir/VERB.sock`, logging to `dir/VERB.log`, until the socket
    /// accepts connections.
    fn spawn(dir: &Path, verb: &str, config: &str, args: &[&OsStr], socket_flag: &str) -> Self {
        let socket = dir.join(format!("{verb}.sock"));
        let config_path = dir.join(format!("{verb}.yaml"));
        std::fs::write(&config_path, config).unwrap();
        let proc = Proc::spawn(
            Command::new(portcullis_bin())
                .args(["--log", "portcullis=debug,info", verb, "--config"])
                .arg(&config_path)
                .args(args)
                .arg(socket_flag)
                .arg(&socket),
            dir.join(format!("{verb}.log")),
        );
        wait_for_socket(&socket, &format!("portcullis {verb}"), &proc);
        Self {
            socket,
            config: config_path,
            proc,
        }
    }

    /// Starts `portcullis proxy` with `config` (YAML; `proxy.listen` and `proxy.containerd`
    /// are set by the harness).
    pub fn start(dir: &Path, containerd: &Path, config: &str) -> Self {
        let args = [OsStr::new("--containerd"), containerd.as_os_str()];
        Self::spawn(dir, "proxy", config, &args, "--listen")
    }

    /// Starts `portcullis serve` on a unix socket in `dir`, plus the listeners `config` and
    /// `extra_args` name.
    pub fn serve(dir: &Path, config: &str, extra_args: &[&str]) -> Self {
        let args: Vec<&OsStr> = extra_args.iter().map(OsStr::new).collect();
        Self::spawn(dir, "serve", config, &args, "--socket")
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// The daemon's process id (for [`procstat`]), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.id()
    }

    /// Stops the process (its socket stays, answering no one).
    pub fn stop(&mut self) {
        self.proc.stop();
    }
}

/// A dockerd whose containerd is `containerd` (the proxy's socket, usually).
pub struct Dockerd {
    pub socket: PathBuf,
    proc: Proc,
}

impl Dockerd {
    pub fn start(dir: &Path, containerd: &Path) -> Self {
        Self::start_with(dir, containerd, &[])
    }

    /// [`Dockerd::start`] with more dockerd flags (e.g. `--add-runtime NAME=PATH`).
    pub fn start_with(dir: &Path, containerd: &Path, extra: &[&str]) -> Self {
        needs(&["root", "dockerd", "docker"]);
        let d = dir.join("docker");
        std::fs::create_dir_all(&d).unwrap();
        let socket = d.join("docker.sock");
        let proc = Proc::spawn(
            Command::new("dockerd")
                .arg("--containerd")
                .arg(containerd)
                .arg("--data-root")
                .arg(d.join("data"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("docker.pid"))
                .arg("-H")
                .arg(format!("unix://{}", socket.display()))
                .args([
                    "--bridge",
                    "none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-masq=false",
                ])
                .args(extra),
            d.join("dockerd.log"),
        );
        wait_for_socket(&socket, "dockerd", &proc);
        Self { socket, proc }
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .unwrap()
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }
}

/// A container record as `ctr run` stores it: busybox, runc v2, and `spec` (the OCI runtime
/// spec's JSON).
pub fn container(id: String, spec: Vec<u8>) -> containerd_client::services::v1::Container {
    containerd_client::services::v1::Container {
        id,
        image: "docker.io/library/busybox:1.36".into(),
        runtime: Some(containerd_client::services::v1::container::Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: spec,
        }),
        ..Default::default()
    }
}

/// Runs `ctr` against `socket`.
pub fn ctr(socket: &Path, args: &[&str]) -> Output {
    needs(&["ctr"]);
    Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "command failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to `127.0.0.1:port` (a JSON body when not empty): the response's
/// head (status line and headers) and body.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_owned(), body.to_owned())
}

/// A test world: temp dir, containerd with the busybox image imported through the proxy.
/// Fields drop in order: the proxy, then containerd (after its tasks are cleaned up),
/// then the directory they lived in.
pub struct World {
    pub proxy: Proxy,
    pub containerd: Containerd,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new(config: &str) -> Self {
        Self::start(config, false)
    }

    /// [`World::new`] with containerd's CRI plugin enabled.
    pub fn with_cri(config: &str) -> Self {
        Self::start(config, true)
    }

    fn start(config: &str, cri: bool) -> Self {
        check_prerequisites();
        let dir = tempfile::Builder::new()
            .prefix("portcullis-e2e-")
            .tempdir()
            .unwrap();
        let containerd = Containerd::start_with(dir.path(), cri);
        let proxy = Proxy::start(dir.path(), &containerd.socket, config);
        // Through the proxy: exercises Content/Write streaming and the image services.
        ok(ctr(
            &proxy.socket,
            &["images", "import", image_tar().to_str().unwrap()],
        ));
        Self {
            dir,
            containerd,
            proxy,
        }
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        ctr(&self.proxy.socket, args)
    }

    pub fn ctr_direct(&self, args: &[&str]) -> Output {
        ctr(&self.containerd.socket, args)
    }

    /// Container ids in `namespace`, asked of containerd directly.
    pub fn containers(&self, namespace: &str) -> Vec<String> {
        ok(self.ctr_direct(&["-n", namespace, "containers", "ls", "-q"]))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- proxy log ---\n{}\n--- containerd log ---\n{}",
            self.proxy.log(),
            self.containerd.log()
        )
    }
}
