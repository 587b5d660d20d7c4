//! `portcullis install` / `uninstall` under `--root`: the dry run changes nothing and shows
//! the diff, a second install changes nothing, uninstall restores every original byte for
//! byte and removes what it created, broken inputs are refused with nothing written, an
//! edited file is not clobbered without `--force`; the written units pass
//! `systemd-analyze verify`; and the installed tree works: a real containerd on the
//! rewritten config.toml and the proxy on the written config admit through the old socket.

mod common;
#[path = "install/edits.rs"]
mod edits;
#[path = "install/verifier.rs"]
mod verifier;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox"];

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{image_tar, ok, text, unique, wait_for_socket, Proc, IMAGE};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A realistic containerd config: version 2, comments, CRI and other tables.
const CONTAINERD_TOML: &str = r#"# containerd config, managed by hand.
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = -999

[grpc]
  # where every client dials
  address = "/run/containerd/containerd.sock"
  max_recv_message_size = 16777216

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true # the kubelet uses systemd
"#;

const DAEMON_JSON: &str = "{\n    \"log-driver\": \"journald\",\n    \"storage-driver\": \"overlay2\",\n    \"log-opts\": {\"tag\": \"{{.Name}}\"},\n    \"debug\": false\n}\n";

fn portcullis(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Asserts success; standard output then standard error (the diff, then what was done).
#[track_caller]
fn run_ok(args: &[&str]) -> String {
    both(portcullis(args))
}

#[track_caller]
fn both(out: Output) -> String {
    assert!(out.status.success(), "command failed: {}", text(&out));
    text(&out)
}

/// Every entry under `root`: its mode and, for files, its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = path.symlink_metadata().unwrap();
            let bytes = if meta.is_dir() {
                stack.push(path.clone());
                None
            } else {
                Some(std::fs::read(&path).unwrap())
            };
            out.insert(
                path.strip_prefix(root).unwrap().into(),
                (meta.mode(), bytes),
            );
        }
    }
    out
}

#[track_caller]
fn assert_same_tree(root: &Path, before: &BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>, what: &str) {
    let now = tree(root);
    let names = |t: &BTreeMap<PathBuf, _>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&now), names(before), "{what}: the entries differ");
    for (path, entry) in before {
        assert!(&now[path] == entry, "{what}: {} differs", path.display());
    }
}

/// A --root with the realistic containerd config and a daemon.json (mode 0600) with other keys.
fn host() -> tempfile::TempDir {
    let root = tempfile::Builder::new()
        .prefix("portcullis-install-")
        .tempdir()
        .unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc/containerd")).unwrap();
    std::fs::create_dir_all(r.join("etc/docker")).unwrap();
    std::fs::write(r.join("etc/containerd/config.toml"), CONTAINERD_TOML).unwrap();
    let daemon = r.join("etc/docker/daemon.json");
    std::fs::write(&daemon, DAEMON_JSON).unwrap();
    std::fs::set_permissions(&daemon, std::fs::Permissions::from_mode(0o600)).unwrap();
    root
}

fn install_proxy(root: &Path, extra: &[&str]) -> Output {
    let r = root.to_str().unwrap();
    let mut args = vec!["install", "proxy", "--root", r, "--binary", BIN];
    args.extend(extra);
    portcullis(&args)
}

#[test]
fn proxy_dry_run_install_again_and_uninstall_round_trip() {
    let host = host();
    let r = host.path();
    let before = tree(r);

    let dry = both(install_proxy(r, &["--dry-run"]));
    for want in [
        "--- a/etc/containerd/config.toml\n+++ b/etc/containerd/config.toml\n",
        "-  address = \"/run/containerd/containerd.sock\"\n+  address = \"/run/containerd/containerd-real.sock\"\n",
        "+  uid = 0\n+  gid = 0\n",
        "--- /dev/null\n+++ b/etc/systemd/system/portcullis-proxy.service\n",
        &format!("+ExecStart={BIN} proxy --config /etc/portcullis/config.yaml\n"),
        "+++ b/etc/systemd/system/docker.service.d/10-portcullis.conf\n",
        "+++ b/etc/systemd/system/kubelet.service.d/10-portcullis.conf\n",
        "+++ b/etc/portcullis/config.yaml\n",
        "-    \"debug\": false\n+    \"debug\": false,\n+    \"containerd\": \"/run/containerd/containerd.sock\"\n",
        "mkdir /etc/portcullis/policies\n",
        "dry run, nothing changed",
    ] {
        assert!(dry.contains(want), "dry run lacks {want:?}:\n{dry}");
    }
    assert_same_tree(r, &before, "after --dry-run");

    let out = both(install_proxy(r, &[]));
    assert!(
        out.contains("systemctl enable --now portcullis-proxy"),
        "{out}"
    );
    let toml = std::fs::read_to_string(r.join("etc/containerd/config.toml")).unwrap();
    assert_eq!(
        toml,
        CONTAINERD_TOML.replace(
            "containerd.sock\"\n  max_recv_message_size = 16777216\n",
            "containerd-real.sock\"\n  max_recv_message_size = 16777216\n  uid = 0\n  gid = 0\n"
        ),
        "only [grpc] changes, comments and layout kept"
    );
    let daemon = r.join("etc/docker/daemon.json");
    let json = std::fs::read_to_string(&daemon).unwrap();
    assert!(
        json == DAEMON_JSON.replace(
            "false\n",
            "false,\n    \"containerd\": \"/run/containerd/containerd.sock\"\n"
        ),
        "{json}"
    );
    assert_eq!(
        daemon.metadata().unwrap().mode() & 0o777,
        0o600,
        "mode kept"
    );
    assert!(r.join("etc/portcullis/policies").is_dir());
    assert!(r
        .join("var/lib/portcullis/install/proxy/manifest.json")
        .is_file());
    verify_units(r);

    let out = install_proxy(r, &["--now"]);
    assert!(
        !out.status.success() && text(&out).contains("--now runs systemctl on this host"),
        "{}",
        text(&out)
    );

    let installed = tree(r);
    let again = both(install_proxy(r, &[]));
    assert!(again.contains("nothing to change"), "{again}");
    assert!(both(install_proxy(r, &["--dry-run"])).contains("nothing to change"));
    assert_same_tree(r, &installed, "after a second install");

    let rs = r.to_str().unwrap();
    let dry = run_ok(&["uninstall", "proxy", "--root", rs, "--dry-run"]);
    assert!(dry.contains("+++ /dev/null"), "{dry}");
    assert_same_tree(r, &installed, "after uninstall --dry-run");
    run_ok(&["uninstall", "proxy", "--root", rs]);
    assert_same_tree(r, &before, "after uninstall");

    // An edit made after the install is the operator's: not clobbered without --force.
    both(install_proxy(r, &[]));
    std::fs::write(&daemon, "{\"containerd\": \"/elsewhere.sock\"}\n").unwrap();
    let edited = tree(r);
    let out = portcullis(&["uninstall", "proxy", "--root", rs]);
    let msg = text(&out);
    assert!(!out.status.success());
    assert!(
        msg.contains("/etc/docker/daemon.json changed since") && msg.contains("--force"),
        "{msg}"
    );
    assert_same_tree(r, &edited, "after a refused uninstall");
    run_ok(&["uninstall", "proxy", "--root", rs, "--force"]);
    assert_same_tree(r, &before, "after uninstall --force");
}

/// `systemd-analyze verify` on the written unit, and on stub docker/kubelet units that pick
/// up the drop-ins: no error and no warning (an unknown key is a warning).
fn verify_units(root: &Path) {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze missing: units not verified");
        return;
    }
    let units = root.join("etc/systemd/system");
    let stubs = tempfile::tempdir().unwrap();
    let mut files = vec![units.join("portcullis-proxy.service")];
    for client in ["docker.service", "kubelet.service"] {
        let d = stubs.path().join(format!("{client}.d"));
        std::fs::create_dir_all(&d).unwrap();
        let drop_in = units.join(format!("{client}.d/10-portcullis.conf"));
        std::fs::copy(&drop_in, d.join("10-portcullis.conf")).unwrap();
        let stub = stubs.path().join(client);
        std::fs::write(&stub, "[Service]\nExecStart=/bin/true\n").unwrap();
        files.push(stub);
    }
    for f in files {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&f)
            .output()
            .unwrap();
        let msg = text(&out);
        assert!(
            out.status.success() && msg.trim().is_empty(),
            "systemd-analyze verify {}: {msg}",
            f.display()
        );
    }
}

#[test]
fn broken_inputs_are_refused_and_nothing_is_written() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "etc/containerd/config.toml",
            "version = 2\n[grpc\n  address = 1\n",
            &["/etc/containerd/config.toml", "line 2"],
        ),
        (
            "etc/docker/daemon.json",
            "{\"debug\": true,}\n",
            &["/etc/docker/daemon.json", "not a JSON object"],
        ),
        (
            "etc/portcullis/config.yaml",
            "proxy:\n  listen: /run/other.sock\n",
            &[
                "proxy.listen is /run/other.sock",
                "set `proxy.listen: /run/containerd/containerd.sock`",
            ],
        ),
        (
            "etc/portcullis/config.yaml",
            "proxy: [\n",
            &["/etc/portcullis/config.yaml: does not load"],
        ),
    ];
    for (file, content, wants) in cases {
        let host = host();
        let r = host.path();
        std::fs::create_dir_all(r.join(file).parent().unwrap()).unwrap();
        std::fs::write(r.join(file), content).unwrap();
        let before = tree(r);
        for dry in [true, false] {
            let extra: &[&str] = if dry { &["--dry-run"] } else { &[] };
            let out = install_proxy(r, extra);
            let msg = text(&out);
            assert_eq!(out.status.code(), Some(2), "{file}: {msg}");
            for want in wants {
                assert!(msg.contains(want), "{file}: lacks {want:?}: {msg}");
            }
            assert_same_tree(r, &before, file);
        }
    }
}

#[test]
fn an_empty_root_gets_minimal_files_and_uninstall_empties_it_again() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    both(install_proxy(r, &[]));
    let toml = std::fs::read_to_string(r.join("etc/containerd/config.toml")).unwrap();
    assert!(toml.contains("version = 2\n\n[grpc]\n  address = \"/run/containerd/containerd-real.sock\"\n  uid = 0\n  gid = 0\n"), "{toml}");
    let json = std::fs::read_to_string(r.join("etc/docker/daemon.json")).unwrap();
    assert_eq!(
        json,
        "{\n  \"containerd\": \"/run/containerd/containerd.sock\"\n}\n"
    );
    assert!(both(install_proxy(r, &[])).contains("nothing to change"));
    run_ok(&["uninstall", "proxy", "--root", r.to_str().unwrap()]);
    assert_same_tree(
        r,
        &BTreeMap::new(),
        "after uninstall of an install into nothing",
    );
}

/// The Kubernetes node agent runs the proxy in its pod: `--no-units` moves containerd but
/// writes no unit (nor the docker/kubelet drop-ins that would start one on the host).
#[test]
fn no_units_moves_containerd_and_writes_no_systemd_unit() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let rs = r.to_str().unwrap();
    let out = both(portcullis(&[
        "install",
        "proxy",
        "--root",
        rs,
        "--no-units",
    ]));
    assert!(!out.contains("enable --now portcullis-proxy"), "{out}");
    let toml = std::fs::read_to_string(r.join("etc/containerd/config.toml")).unwrap();
    assert!(toml.contains("containerd-real.sock"), "{toml}");
    assert!(!r.join("etc/systemd").exists(), "no unit under --no-units");
    let refused = portcullis(&["install", "proxy", "--root", rs, "--no-units", "--now"]);
    assert!(
        !refused.status.success(),
        "--now starts a unit --no-units did not write"
    );
    run_ok(&["uninstall", "proxy", "--root", rs]);
    assert_same_tree(
        r,
        &BTreeMap::new(),
        "after uninstall of a --no-units install",
    );
}

#[test]
fn hooks_and_image_verifier_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let rs = r.to_str().unwrap();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    let before = tree(r);
    let installs: [(&str, &[&str], &str); 3] = [
        (
            "hooks",
            &["install", "hooks", "--podman"],
            "usr/share/containers/oci/hooks.d/portcullis.json",
        ),
        (
            "hooks",
            &[
                "install",
                "hooks",
                "--docker",
                "--shim",
                "/usr/local/bin/portcullis-runc",
            ],
            "usr/local/bin/portcullis-runc",
        ),
        (
            "image-verifier",
            &["install", "image-verifier"],
            "opt/containerd/image-verifier/bin/portcullis",
        ),
    ];
    for (_, args, file) in installs {
        let with = |extra: &[&str]| {
            let mut a = args.to_vec();
            a.extend(["--root", rs, "--binary", BIN]);
            a.extend(extra);
            run_ok(&a)
        };
        let dry = with(&["--dry-run"]);
        assert!(
            dry.contains(&format!("--- /dev/null\n+++ b/{file}\n")),
            "{dry}"
        );
        assert!(!r.join(file).exists(), "{file} written by --dry-run");
        with(&[]);
        let written = r.join(file);
        assert!(written.is_file(), "{file}");
        let snapshot = tree(r);
        assert!(with(&[]).contains("nothing to change"), "{file}");
        assert_same_tree(r, &snapshot, file);
    }
    let shim = r.join("usr/local/bin/portcullis-runc");
    assert_eq!(shim.metadata().unwrap().mode() & 0o777, 0o755);
    let hook: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join(installs[0].2)).unwrap()).unwrap();
    assert_eq!(hook["hook"]["path"], BIN);
    for component in ["hooks", "image-verifier"] {
        run_ok(&["uninstall", component, "--root", rs]);
    }
    assert_same_tree(r, &before, "after uninstalling hooks and image-verifier");
    let out = portcullis(&["uninstall", "hooks", "--root", rs]);
    assert!(
        text(&out).contains("nothing to uninstall"),
        "{}",
        text(&out)
    );
}

/// The installed tree at work: containerd started on the rewritten config.toml (its root
/// and state under the test's --root) listens root-only on the new socket; the proxy,
/// started on the written config, owns the old one, and `ctr` there is admitted by it.
#[test]
fn the_installed_proxy_admits_every_client_of_the_old_socket() {
    common::check_prerequisites();
    let root = tempfile::Builder::new()
        .prefix("portcullis-install-")
        .tempdir()
        .unwrap();
    let r = root.path();
    let d = r.display();
    std::fs::create_dir_all(r.join("etc/containerd")).unwrap();
    std::fs::write(
        r.join("etc/containerd/config.toml"),
        format!(
            "# A private containerd under the test's root.\nversion = 2\nroot = \"{d}/var/lib/containerd\"\n\
             state = \"{d}/run/containerd\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n\
             [grpc]\n  address = \"{d}/run/containerd/containerd.sock\"\n\n\
             [ttrpc]\n  address = \"{d}/run/containerd/containerd.sock.ttrpc\"\n\n\
             [debug]\n  address = \"{d}/run/containerd/debug.sock\"\n\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt/containerd\"\n"
        ),
    )
    .unwrap();
    let old = r.join("run/containerd/containerd.sock");
    let real = r.join("run/containerd/containerd-real.sock");
    let out = both(install_proxy(
        r,
        &["--real-socket", real.to_str().unwrap(), "--no-docker"],
    ));
    assert!(
        out.contains(&format!("the proxy listens on {}", old.display())),
        "{out}"
    );

    // The written config names host paths; this test's host is the root.
    let written = std::fs::read_to_string(r.join("etc/portcullis/config.yaml")).unwrap();
    assert!(written.contains(&format!("  listen: \"{}\"\n", old.display())));
    assert!(written.contains(&format!("  containerd: \"{}\"\n", real.display())));
    let drop_in = r.join("etc/systemd/system/portcullis-proxy.service.d/10-portcullis.conf");
    let paths = std::fs::read_to_string(&drop_in).unwrap();
    assert!(
        paths.contains(&format!("\nReadWritePaths={d}/run/containerd\n")),
        "a socket outside /run/containerd is made writable: {paths}"
    );
    verify_units(r);
    let config = r.join("proxy-under-root.yaml");
    std::fs::write(
        &config,
        written
            .replace("/etc/portcullis/", &format!("{d}/etc/portcullis/"))
            .replace("/var/log/portcullis/", &format!("{d}/var/log/portcullis/")),
    )
    .unwrap();

    let containerd = Proc::spawn(
        Command::new("containerd")
            .arg("--config")
            .arg(r.join("etc/containerd/config.toml")),
        r.join("containerd.log"),
    );
    wait_for_socket(&real, "containerd", &containerd);
    let meta = real.metadata().unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "the real socket is root's"
    );
    assert_eq!(
        meta.mode() & 0o007,
        0,
        "no access for others: {:o}",
        meta.mode()
    );

    let proxy = Proc::spawn(
        Command::new(BIN).arg("proxy").arg("--config").arg(&config),
        r.join("proxy.log"),
    );
    wait_for_socket(&old, "portcullis proxy", &proxy);
    let logs = || format!("{}\n{}", proxy.log_text(), containerd.log_text());

    ok(common::ctr(
        &old,
        &["images", "import", image_tar().to_str().unwrap()],
    ));
    // ctr applies no seccomp profile unless asked, which baseline refuses.
    let admitted = common::ctr(
        &old,
        &["run", "--rm", "--seccomp", IMAGE, &unique("ok"), "true"],
    );
    assert!(admitted.status.success(), "{}\n{}", text(&admitted), logs());
    let refused = common::ctr(
        &old,
        &[
            "run",
            "--rm",
            "--privileged",
            IMAGE,
            &unique("priv"),
            "true",
        ],
    );
    let msg = text(&refused);
    assert!(
        !refused.status.success()
            && msg.contains(r#"violates PodSecurity "baseline:latest""#)
            && msg.contains("privileged"),
        "{msg}\n{}",
        logs()
    );
    let log = std::fs::read_to_string(r.join("var/log/portcullis/decisions.jsonl")).unwrap();
    assert!(log.lines().count() >= 2, "{log}");
}
