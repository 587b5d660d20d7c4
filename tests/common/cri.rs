//! The CRI side of the harness: containerd's real CRI plugin with a working pod network,
//! local pause and busybox images in its `k8s.io` namespace, and a Rust CRI client that
//! acts as the kubelet — over `runtime.v1` or `runtime.v1alpha2`, against containerd's
//! socket or the proxy's.
//!
//! Everything a pod touches lives under the test's temp dir (containerd's root and state,
//! network namespaces, IPAM leases, pod logs, kubelet-style files), except what is host-wide
//! by nature: runc's state under `/run/containerd/runc/k8s.io`, the bridge the CNI plugin
//! makes (one per instance, deleted when containerd is dropped) and libcni's result cache
//! under `/var/lib/cni` (emptied as pods are removed).
//!
//! ```ignore
//! let w = CriWorld::new("proxy:\n  cri: relay\n");
//! let c = w.client(Via::Proxy, CriApi::V1);
//! let pod = pod_config(w.dir.path(), "web", "default", &uid());
//! let sandbox = c.run_pod(&pod)?;
//! let config = c.container_config(&pod, "main", IMAGE, &["sh", "-c", "echo hi"])?;
//! let id = c.create_container(&sandbox, &pod, config)?;
//! c.start(&id)?;
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use tonic::transport::Channel;
use tonic::Status;

use super::prereq::CNI_BIN_DIR;
use super::{check_prerequisites, needs, ok, Containerd, Proxy, IMAGE, IMAGE_LATEST};

/// The pod sandbox image containerd's CRI plugin runs as every pod's infra container:
/// busybox with `sleep 2147483647` as its command, built and imported locally.
pub const PAUSE_IMAGE: &str = "localhost/portcullis/pause:test";

/// How long one CRI call may take before the client gives up with `DeadlineExceeded`.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The pause image tar, built once per test binary from the same busybox layer as
/// [`super::image_tar`].
pub fn pause_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        super::build_image_tar(
            "pause.tar",
            &[PAUSE_IMAGE],
            Some(r#"["sleep","2147483647"]"#),
        )
    })
}

/// The pod network of one containerd: a bridge and a subnet no other instance uses.
/// Dropping it deletes the bridge (the CNI plugin made it on the first pod and leaves it).
pub struct Cni {
    pub bridge: String,
    pub subnet: String,
}

impl Drop for Cni {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The CRI plugin's section of containerd's config for an instance in `dir`, with its CNI
/// conflist written to `dir/cni`:
///
/// - `sandbox_image` is [`PAUSE_IMAGE`], which [`CriWorld`] imports (no registry);
/// - `restrict_oom_score_adj`: this machine has no CAP_SYS_RESOURCE, and the kubelet asks
///   for scores below containerd's own (its system-node-critical pods, -997);
/// - `netns_mounts_under_state_dir`: pods' network namespaces live in `dir/state`, not in
///   the host's `/var/run/netns`;
/// - streaming on a loopback port of the kernel's choosing;
/// - CNI: Debian's plugins in [`CNI_BIN_DIR`] and one conflist (cniVersion 1.0.0, which
///   both containerd 1.6's libcni and plugins 1.1 speak): a `bridge` with a name and a /24
///   unique to the instance, no gateway address and no masquerading (the host's routes and
///   iptables stay untouched), and `host-local` IPAM keeping its leases in `dir/cni-ipam`.
///   The pods' `lo` is not in the list: the CRI plugin sets it up itself with the
///   `loopback` plugin from the same directory.
pub fn plugin_config(dir: &Path) -> (String, Cni) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let (pid, n) = (std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    // An interface name has at most 15 bytes: "pc" + 6 hex digits of pid + "x" + n.
    let bridge = format!("pc{pid:x}x{n}");
    let index = (pid.wrapping_mul(16).wrapping_add(n)) & 0xffff;
    let subnet = format!("10.{}.{}.0/24", index >> 8, index & 0xff);
    let d = dir.display();
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": format!("portcullis-{bridge}"),
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": false,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "dataDir": format!("{d}/cni-ipam"),
                "ranges": [[{"subnet": subnet}]],
            },
        }],
    });
    std::fs::create_dir_all(dir.join("cni")).unwrap();
    std::fs::write(
        dir.join("cni/10-portcullis.conflist"),
        serde_json::to_string_pretty(&conflist).unwrap(),
    )
    .unwrap();
    let toml = format!(
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n\
         \x20 sandbox_image = \"{PAUSE_IMAGE}\"\n\
         \x20 restrict_oom_score_adj = true\n\
         \x20 netns_mounts_under_state_dir = true\n\
         \x20 stream_server_address = \"127.0.0.1\"\n\
         \x20 stream_server_port = \"0\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".registry]\n\
         \x20 config_path = \"{d}/certs.d\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
         \x20 bin_dir = \"{CNI_BIN_DIR}\"\n\
         \x20 conf_dir = \"{d}/cni\"\n"
    );
    (toml, Cni { bridge, subnet })
}

/// Which socket a client dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Containerd,
    Proxy,
}

/// A CRI test world: temp dir, containerd with its CRI plugin and pod network, the pause
/// and busybox images (both tags) in `k8s.io`, and the proxy in front. Dropping it stops
/// and removes every pod (so the CNI plugin releases its addresses and interfaces), then
/// the proxy, containerd (after its tasks), the bridge and the directory.
pub struct CriWorld {
    pub proxy: Proxy,
    pub containerd: Containerd,
    pub dir: tempfile::TempDir,
}

impl CriWorld {
    /// The world with the proxy started on `proxy_config` (YAML, e.g. `"proxy:\n  cri:
    /// relay\n"`).
    /// A CRI containerd and a proxy with `proxy_config` in front of it; `{dir}` in the
    /// config is replaced by the world's directory (`{dir}/pods` holds the pod logs,
    /// `{dir}/kubelet` the kubelet's files).
    pub fn new(proxy_config: &str) -> Self {
        check_prerequisites();
        needs(&["cni", "ip"]);
        let dir = tempfile::Builder::new()
            .prefix("portcullis-cri-")
            .tempdir()
            .unwrap();
        let containerd = Containerd::start_with_cri(dir.path());
        for tar in [pause_tar(), super::image_tar()] {
            let tar = tar.to_str().unwrap();
            ok(super::ctr(
                &containerd.socket,
                &["-n", "k8s.io", "images", "import", tar],
            ));
        }
        // `{dir}` in the config is this world's directory (the kubelet's, for the CRI door).
        let proxy_config = proxy_config.replace("{dir}", dir.path().to_str().unwrap());
        let proxy = Proxy::start(dir.path(), &containerd.socket, &proxy_config);
        let w = Self {
            proxy,
            containerd,
            dir,
        };
        // The CRI plugin learns of imports from containerd's events: wait until it has.
        let c = w.client(Via::Containerd, CriApi::V1);
        for image in [PAUSE_IMAGE, IMAGE, IMAGE_LATEST] {
            w.wait(&format!("CRI to list {image}"), || {
                matches!(c.image_status(image), Ok(Some(_)))
            });
        }
        w
    }

    pub fn socket(&self, via: Via) -> &Path {
        match via {
            Via::Containerd => &self.containerd.socket,
            Via::Proxy => &self.proxy.socket,
        }
    }

    /// The pods' subnet (`10.X.Y.0/24`).
    pub fn pod_subnet(&self) -> &str {
        &self.containerd.cni.as_ref().unwrap().subnet
    }

    /// A client of `api` dialling `via`.
    pub fn client(&self, via: Via, api: CriApi) -> CriClient {
        CriClient::connect(self.socket(via), api)
    }

    /// Polls `done` every 100 ms for 30 s; panics naming `what`, with the logs.
    #[track_caller]
    pub fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ends of the proxy's and containerd's logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- proxy log (tail) ---\n{}\n--- containerd log (tail) ---\n{}",
            tail(&self.proxy.log(), 40),
            tail(&self.containerd.log(), 60)
        )
    }

    /// `result`'s value, or a panic with `what`, the status and the logs.
    #[track_caller]
    /// A pod `name` in `namespace` whose one container `sleeper` (busybox, `sleep 3600`)
    /// is created and started through `c` and running: (sandbox id, container id). `at`
    /// says where, in failure messages.
    pub fn running_container(
        &self,
        c: &CriClient,
        name: &str,
        namespace: &str,
        at: &str,
    ) -> (String, String) {
        let pod = pod_config(self.dir.path(), name, namespace, &uid());
        let sandbox = self.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));
        let config = c.container_config(&pod, "sleeper", super::IMAGE, &["sleep", "3600"]);
        let config = self.expect(&format!("the container's config {at}"), config);
        let id = self.expect(
            &format!("CreateContainer {at}"),
            c.create_container(&sandbox, &pod, config),
        );
        self.expect(&format!("StartContainer {at}"), c.start(&id));
        let running = c.wait_state(&id, CONTAINER_RUNNING, Duration::from_secs(30));
        self.expect(&format!("ContainerStatus {at}"), running);
        (sandbox, id)
    }

    pub fn expect<T>(&self, what: &str, result: Result<T, Status>) -> T {
        result
            .unwrap_or_else(|s| panic!("{what}: {:?}: {}\n{}", s.code(), s.message(), self.logs()))
    }

    /// `result`'s refusal, which must have `code` and a message holding every one of
    /// `parts`; else a panic with `what` and the logs.
    #[track_caller]
    pub fn refused<T: std::fmt::Debug>(
        &self,
        what: &str,
        result: Result<T, Status>,
        code: tonic::Code,
        parts: &[&str],
    ) -> Status {
        let status = match result {
            Ok(value) => panic!("{what} was not refused: {value:?}\n{}", self.logs()),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "{what}: {status:?}\n{}", self.logs());
        for part in parts {
            assert!(
                status.message().contains(part),
                "{what}: no {part:?} in {status:?}\n{}",
                self.logs()
            );
        }
        status
    }
}

impl Drop for CriWorld {
    fn drop(&mut self) {
        let c = self.client(Via::Containerd, CriApi::V1);
        for pod in c.list_pods().unwrap_or_default() {
            let _ = c.stop_and_remove_pod(&pod.id);
        }
    }
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A fresh pod UID.
pub fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The CRI version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriApi {
    V1,
    V1alpha2,
}

impl CriApi {
    pub const ALL: [CriApi; 2] = [CriApi::V1, CriApi::V1alpha2];
}

mod client;
mod kubelet;

pub use client::{image_spec, CriClient};
pub use kubelet::{
    container_state, pod_config, sandbox_security, security, CONTAINER_CREATED, CONTAINER_EXITED,
    CONTAINER_RUNNING,
};
