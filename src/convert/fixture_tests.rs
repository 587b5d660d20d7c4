//! Every captured runtime spec in tests/fixtures/runtime-specs converted to a Pod and checked
//! against the facts its `NAME.cmd` implies (write-back: roundtrip_tests.rs).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::pod::to_pod_value;
use super::{ContainerRecord, PodOptions, TaskInfo};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/runtime-specs");

/// Every fixture, as `kind/name`; `every_fixture_is_covered` checks this against the directory.
pub(super) const FIXTURES: [&str; 19] = [
    "ctr/caps",
    "ctr/hostnet",
    "ctr/mounts",
    "ctr/plain",
    "ctr/privileged",
    "ctr/runtime",
    "docker/binds",
    "docker/capadd",
    "docker/device",
    "docker/hostpid",
    "docker/plain",
    "docker/resources",
    "docker/seccomp_unconfined",
    "docker/user",
    "podman/annot",
    "podman/capadd",
    "podman/plain",
    "podman/privileged",
    "podman/user",
];

pub(super) fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// dockerd's pid on the capture host: its prestart hook is `/proc/6552/exe`.
pub(super) const DOCKERD_HOOK: &str = "/proc/6552/exe";

/// The hooks the captures ran with: dockerd's libnetwork-setkey (trusted by the binary the
/// door finds behind `/proc/<pid>/exe`) and the hooks.d hook that captured the podman specs.
pub(super) const CAPTURE_HOOKS: [&str; 2] = [
    "/usr/bin/dockerd",
    "/usr/libexec/oci/hooks.d/capture-config",
];

/// A record as each door would build it: `ctr containers info` views carry the containerd
/// Container; podman bundles carry config.json plus the hook's state (no labels). The door's
/// resolution of dockerd's hook is what it was on the capture host (pid 6552 was dockerd).
pub(super) fn record(name: &str) -> ContainerRecord {
    let mut r = unresolved_record(name);
    if name.starts_with("docker/") {
        r.hook_exes
            .insert(DOCKERD_HOOK.to_owned(), "/usr/bin/dockerd".to_owned());
    }
    r
}

pub(super) fn unresolved_record(name: &str) -> ContainerRecord {
    let (kind, _) = name.split_once('/').unwrap();
    if kind == "podman" {
        let spec = read_json(&format!("{DIR}/{name}.config.json"));
        let state = read_json(&format!("{DIR}/{name}.state.json"));
        return super::record::from_oci_config("podman", state["id"].as_str().unwrap(), &spec)
            .unwrap();
    }
    let info = read_json(&format!("{DIR}/{name}.container.json"));
    let namespace = if kind == "docker" { "moby" } else { "default" };
    super::record::from_container_info(namespace, &info).unwrap()
}

pub(super) fn opts() -> PodOptions {
    PodOptions {
        runtime_classes: [
            ("runc", "io.containerd.runc.v2"),
            ("kata", "io.containerd.kata.v2"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect(),
        allowed_hooks: CAPTURE_HOOKS.iter().map(|h| (*h).to_owned()).collect(),
        ..Default::default()
    }
}

/// [`opts`] without `spec.allowedHooks`: the default configuration.
pub(super) fn opts_without_hooks() -> PodOptions {
    PodOptions {
        allowed_hooks: Vec::new(),
        ..opts()
    }
}

pub(super) fn pod(name: &str) -> Value {
    to_pod_value(&record(name), &opts()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(super) fn c0(p: &Value) -> &Value {
    &p["spec"]["containers"][0]
}

pub(super) fn sc(p: &Value) -> &Value {
    &c0(p)["securityContext"]
}

pub(super) fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `mountPath → volume` of the Pod.
fn volumes(p: &Value) -> BTreeMap<String, (Value, Value)> {
    let vols = p["spec"]["volumes"].as_array().cloned().unwrap_or_default();
    c0(p)["volumeMounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let v = vols
                .iter()
                .find(|v| v["name"] == m["name"])
                .cloned()
                .expect("mount without volume");
            (m["mountPath"].as_str().unwrap().to_owned(), (v, m))
        })
        .collect()
}

/// The facts every unprivileged, host-isolated container shows.
fn assert_isolated(name: &str, p: &Value) {
    assert_eq!(sc(p)["privileged"], false, "{name}");
    for ns in ["hostNetwork", "hostPID", "hostIPC"] {
        assert_eq!(p["spec"][ns], false, "{name}: {ns}");
    }
    assert_eq!(p["spec"]["hostUsers"], true, "{name}");
    assert_eq!(sc(p)["procMount"], "Default", "{name}");
}

#[test]
fn every_fixture_is_covered_and_converts() {
    let mut found = Vec::new();
    for kind in ["ctr", "docker", "podman"] {
        for entry in std::fs::read_dir(format!("{DIR}/{kind}")).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            if let Some(n) = file.strip_suffix(".cmd") {
                found.push(format!("{kind}/{n}"));
            }
        }
    }
    found.sort();
    assert_eq!(
        found, FIXTURES,
        "a fixture was added or removed: cover it here"
    );
    for name in FIXTURES {
        let p = pod(name);
        assert_eq!(p["apiVersion"], "v1");
        assert_eq!(p["kind"], "Pod");
        assert_eq!(
            c0(&p)["name"],
            p["metadata"]["name"],
            "{name}: no CRI names, both are the id"
        );
        assert!(!strs(&c0(&p)["command"]).is_empty(), "{name}");
    }
}

#[test]
fn plain_containers_are_isolated_and_unprivileged() {
    for name in ["docker/plain", "ctr/plain", "podman/plain"] {
        let p = pod(name);
        assert_isolated(name, &p);
        assert!(
            sc(&p)["capabilities"].get("add").is_none(),
            "{name}: {}",
            sc(&p)["capabilities"]
        );
        assert_eq!(sc(&p)["runAsUser"], 0, "{name}");
        assert_eq!(sc(&p)["readOnlyRootFilesystem"], false, "{name}");
        assert!(
            p["metadata"]["annotations"]
                .get("portcullis.dev/devices")
                .is_none(),
            "{name}"
        );
    }
    // dockerd: its runtime-managed mounts (/dev/shm tmpfs, containers/<id>/hosts …) are hidden.
    let p = pod("docker/plain");
    assert!(volumes(&p).is_empty(), "{}", p["spec"]);
    assert_eq!(p["metadata"]["namespace"], "moby");
    assert_eq!(c0(&p)["image"], "", "dockerd sends no image");
    assert_eq!(strs(&c0(&p)["command"]), ["sleep", "30"]);
    assert!(c0(&p).get("args").is_none());
    assert_eq!(sc(&p)["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(sc(&p)["allowPrivilegeEscalation"], true);
    assert_eq!(p["spec"]["runtimeClassName"], "runc");
    assert!(
        p["metadata"].get("labels").is_none(),
        "the bundle path is no valid label value"
    );
    assert!(p["metadata"]["annotations"]["com.docker/engine.bundle.path"].is_string());
    assert_eq!(
        p["metadata"]["annotations"]["portcullis.dev/runtime"],
        "io.containerd.runc.v2"
    );
    let sysctls = &p["spec"]["securityContext"]["sysctls"];
    assert!(sysctls
        .as_array()
        .unwrap()
        .contains(&json!({"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"})));
    assert_eq!(
        p["spec"]["securityContext"].get("supplementalGroups"),
        None,
        "gid 0 is the primary gid"
    );

    // ctr: no seccomp profile unless asked (--seccomp), so the truth is Unconfined.
    let p = pod("ctr/plain");
    assert_eq!(sc(&p)["seccompProfile"]["type"], "Unconfined");
    assert_eq!(
        sc(&p)["allowPrivilegeEscalation"],
        false,
        "ctr sets noNewPrivileges"
    );
    assert_eq!(c0(&p)["image"], "docker.io/library/busybox:1.36");
    assert_eq!(p["metadata"]["name"], "fx-plain");
    assert_eq!(p["metadata"]["namespace"], "default");
    assert_eq!(
        p["metadata"]["labels"]["io.containerd.image.config.stop-signal"],
        "SIGTERM"
    );
    let v = volumes(&p);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v["/run"].0["emptyDir"]["medium"], "Memory");

    // podman: its own default set lacks three of Docker's; its generated files are hidden.
    let p = pod("podman/plain");
    assert_eq!(
        strs(&sc(&p)["capabilities"]["drop"]),
        ["AUDIT_WRITE", "MKNOD", "NET_RAW"]
    );
    assert!(volumes(&p).is_empty(), "{}", p["spec"]);
    assert_eq!(p["metadata"]["namespace"], "podman");
    assert_eq!(
        p["metadata"]["name"],
        "258253c57db8bcf0ea03ed14631073a8a81de1060c19c31c673e640cff7b037c"
    );
    assert_eq!(sc(&p)["seccompProfile"]["type"], "RuntimeDefault");
    assert!(p["spec"].get("runtimeClassName").is_none());
    assert_eq!(
        p["metadata"]["annotations"]["io.container.manager"],
        "libpod"
    );
}

#[test]
fn docker_binds() {
    // docker run -v /tmp:/hosttmp:ro -v /etc:/hostetc --tmpfs /scratch --read-only
    let p = pod("docker/binds");
    let v = volumes(&p);
    assert_eq!(
        v.keys().collect::<Vec<_>>(),
        ["/hostetc", "/hosttmp", "/scratch"],
        "{v:?}"
    );
    assert_eq!(v["/hosttmp"].0["hostPath"]["path"], "/tmp");
    assert_eq!(v["/hosttmp"].1["readOnly"], true);
    assert_eq!(v["/hostetc"].0["hostPath"]["path"], "/etc");
    assert!(v["/hostetc"].1.get("readOnly").is_none());
    assert_eq!(v["/scratch"].0["emptyDir"]["medium"], "Memory");
    assert_eq!(sc(&p)["readOnlyRootFilesystem"], true);
    assert_isolated("docker/binds", &p);
}

#[test]
fn docker_capadd() {
    // --cap-add NET_ADMIN --cap-add SYS_TIME --cap-drop CHOWN
    let p = pod("docker/capadd");
    assert_eq!(
        strs(&sc(&p)["capabilities"]["add"]),
        ["NET_ADMIN", "SYS_TIME"]
    );
    assert_eq!(strs(&sc(&p)["capabilities"]["drop"]), ["CHOWN"]);
    assert_isolated("docker/capadd", &p);
}

#[test]
fn docker_device() {
    // --device /dev/null:/dev/mynull
    let p = pod("docker/device");
    assert_eq!(
        p["metadata"]["annotations"]["portcullis.dev/devices"],
        "/dev/mynull"
    );
    assert_isolated("docker/device", &p);
    assert!(sc(&p)["capabilities"].get("add").is_none());
}

#[test]
fn docker_hostpid() {
    // --pid host --ipc host
    let p = pod("docker/hostpid");
    assert_eq!(p["spec"]["hostPID"], true);
    assert_eq!(p["spec"]["hostIPC"], true);
    assert_eq!(p["spec"]["hostNetwork"], false);
    assert!(
        volumes(&p).is_empty(),
        "the host /dev/shm of --ipc host is implied by hostIPC"
    );
}

#[test]
fn docker_resources() {
    // --memory 64m --cpus 0.5 --pids-limit 100 --sysctl net.ipv4.ip_forward=1 -e FOO=bar -w /tmp
    let p = pod("docker/resources");
    let limits = &c0(&p)["resources"]["limits"];
    assert_eq!(limits["memory"], "67108864");
    assert_eq!(limits["cpu"], "500m");
    assert_eq!(
        limits.as_object().unwrap().len(),
        2,
        "pids has no Pod equivalent: {limits}"
    );
    assert!(p["spec"]["securityContext"]["sysctls"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "net.ipv4.ip_forward", "value": "1"})));
    assert!(c0(&p)["env"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "FOO", "value": "bar"})));
    assert_eq!(c0(&p)["workingDir"], "/tmp");
}

#[test]
fn docker_seccomp_unconfined() {
    // --security-opt seccomp=unconfined --security-opt apparmor=unconfined
    let p = pod("docker/seccomp_unconfined");
    assert_eq!(sc(&p)["seccompProfile"]["type"], "Unconfined");
    // The capture host had no AppArmor, so dockerd wrote no apparmorProfile at all.
    assert!(sc(&p).get("appArmorProfile").is_none());
    assert_isolated("docker/seccomp_unconfined", &p);
}

#[test]
fn docker_user() {
    // --user 1000:1000 --security-opt no-new-privileges --group-add 10
    let p = pod("docker/user");
    assert_eq!(sc(&p)["runAsUser"], 1000);
    assert_eq!(sc(&p)["runAsGroup"], 1000);
    assert_eq!(sc(&p)["runAsNonRoot"], true);
    assert_eq!(sc(&p)["allowPrivilegeEscalation"], false);
    assert_eq!(
        p["spec"]["securityContext"]["supplementalGroups"],
        json!([10])
    );
}

#[test]
fn ctr_caps() {
    // --cap-add CAP_SYS_ADMIN --cap-add CAP_NET_ADMIN
    let p = pod("ctr/caps");
    assert_eq!(
        strs(&sc(&p)["capabilities"]["add"]),
        ["NET_ADMIN", "SYS_ADMIN"]
    );
    assert!(sc(&p)["capabilities"].get("drop").is_none());
    assert_isolated("ctr/caps", &p);
}

#[test]
fn ctr_hostnet() {
    // --net-host: ctr also binds the host's /etc/hosts and /etc/resolv.conf, read-only.
    let p = pod("ctr/hostnet");
    assert_eq!(p["spec"]["hostNetwork"], true);
    assert_eq!(p["spec"]["hostPID"], false);
    let v = volumes(&p);
    assert_eq!(v["/etc/hosts"].0["hostPath"]["path"], "/etc/hosts");
    assert_eq!(v["/etc/hosts"].1["readOnly"], true);
    assert_eq!(v["/etc/resolv.conf"].1["readOnly"], true);
}

#[test]
fn ctr_mounts() {
    // --mount type=bind,src=/etc,dst=/hostetc,options=rbind:ro --read-only
    let p = pod("ctr/mounts");
    let v = volumes(&p);
    assert_eq!(v["/hostetc"].0["hostPath"]["path"], "/etc");
    assert_eq!(v["/hostetc"].1["readOnly"], true);
    assert_eq!(sc(&p)["readOnlyRootFilesystem"], true);
    assert_isolated("ctr/mounts", &p);
}

#[test]
fn privileged_containers() {
    for name in ["ctr/privileged", "podman/privileged"] {
        let p = pod(name);
        assert_eq!(sc(&p)["privileged"], true, "{name}");
        assert_eq!(
            sc(&p)["procMount"],
            "Default",
            "{name}: privileged is not reported as Unmasked too"
        );
        assert!(
            strs(&sc(&p)["capabilities"]["add"]).contains(&"SYS_ADMIN"),
            "{name}"
        );
        assert!(sc(&p)["capabilities"].get("drop").is_none(), "{name}");
        assert_eq!(sc(&p)["seccompProfile"]["type"], "Unconfined", "{name}");
        assert_eq!(p["spec"]["hostNetwork"], false, "{name}");
    }
    let p = pod("ctr/privileged");
    let devices = p["metadata"]["annotations"]["portcullis.dev/devices"]
        .as_str()
        .unwrap();
    assert!(devices.split(',').any(|d| d == "/dev/kvm"), "{devices}");
    let p = pod("podman/privileged");
    assert_eq!(
        p["metadata"]["annotations"]["io.podman.annotations.privileged"],
        "TRUE"
    );
}

#[test]
fn ctr_runtime() {
    // --runtime io.containerd.runc.v2 --label team=payments --label app=web
    let p = pod("ctr/runtime");
    assert_eq!(p["spec"]["runtimeClassName"], "runc");
    assert_eq!(
        p["metadata"]["annotations"]["portcullis.dev/runtime"],
        "io.containerd.runc.v2"
    );
    assert_eq!(p["metadata"]["labels"]["team"], "payments");
    assert_eq!(p["metadata"]["labels"]["app"], "web");
    let unmapped = to_pod_value(&record("ctr/runtime"), &PodOptions::default()).unwrap();
    assert!(
        unmapped["spec"].get("runtimeClassName").is_none(),
        "an unmapped runtime has no class"
    );
}

#[test]
fn task_info_is_shown() {
    let mut r = record("ctr/plain");
    r.task = Some(TaskInfo {
        runtime_path: "/opt/shim".into(),
        runc_binary: "/usr/bin/crun".into(),
    });
    let p = to_pod_value(&r, &opts()).unwrap();
    assert_eq!(
        p["metadata"]["annotations"]["portcullis.dev/runtime-path"],
        "/opt/shim"
    );
    assert_eq!(
        p["metadata"]["annotations"]["portcullis.dev/runc-binary"],
        "/usr/bin/crun"
    );
}

#[test]
fn podman_annot() {
    // --annotation io.portcullis.test=yes --pid host
    let p = pod("podman/annot");
    assert_eq!(p["metadata"]["annotations"]["io.portcullis.test"], "yes");
    assert!(
        p["metadata"].get("labels").is_none(),
        "spec annotations never become labels"
    );
    assert_eq!(p["spec"]["hostPID"], true);
    assert_eq!(p["spec"]["hostNetwork"], false);
}

#[test]
fn podman_capadd() {
    // --cap-add NET_ADMIN --cap-drop ALL
    let p = pod("podman/capadd");
    assert_eq!(strs(&sc(&p)["capabilities"]["add"]), ["NET_ADMIN"]);
    assert_eq!(strs(&sc(&p)["capabilities"]["drop"]), ["ALL"]);
    assert_isolated("podman/capadd", &p);
}

#[test]
fn podman_user() {
    // --user 1000:1000 --read-only -v /tmp:/hosttmp:ro
    let p = pod("podman/user");
    assert_eq!(sc(&p)["runAsUser"], 1000);
    assert_eq!(sc(&p)["runAsGroup"], 1000);
    assert!(p["spec"]["securityContext"]
        .get("supplementalGroups")
        .is_none());
    assert_eq!(sc(&p)["readOnlyRootFilesystem"], true);
    let v = volumes(&p);
    assert_eq!(v["/hosttmp"].0["hostPath"]["path"], "/tmp");
    assert_eq!(v["/hosttmp"].1["readOnly"], true);
    assert_eq!(
        v.len(),
        4,
        "/hosttmp plus the --read-only tmpfs on /tmp, /run, /var/tmp: {v:?}"
    );
    assert!(
        !v.contains_key("/etc/passwd"),
        "podman's generated passwd is hidden"
    );
}
