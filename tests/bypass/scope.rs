//! §4 Scope: which namespace a container is judged in (a label or annotation must not move
//! it out of baseline `default`), and who the gate is a boundary for: a non-root member of
//! the proxy socket's group.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use super::kit::{outcome, written, Corpus, Gate};
use crate::common::{text, unique, IMAGE};

const NS: &str = "default";

#[test]
fn namespace_claims_in_labels_and_annotations_do_not_move_a_container() {
    let g = Gate::new("exemptions: {namespaces: [kube-system]}\n");
    let mut c = Corpus::new("namespace claims");
    let cases = [
        ("--label", "io.kubernetes.pod.namespace=elsewhere"),
        ("--label", "io.kubernetes.pod.namespace=kube-system"),
        ("--annotation", "io.kubernetes.pod.namespace=kube-system"),
        ("--annotation", "io.kubernetes.pod.namespace=elsewhere"),
        (
            "--annotation",
            "io.kubernetes.cri.sandbox-namespace=kube-system",
        ),
        ("--label", "io.kubernetes.cri.sandbox-namespace=kube-system"),
    ];
    for (flag, claim) in cases {
        let id = unique("c");
        let result = outcome(g.w.ctr(&[
            "run",
            "-d",
            "--null-io",
            "--seccomp",
            "--privileged",
            flag,
            claim,
            IMAGE,
            &id,
            "sleep",
            "300",
        ]));
        c.refused(
            &format!("ctr run --privileged {flag} {claim} in baseline default"),
            &result,
            &["privileged"],
            g.effects(NS, &id),
        );
    }
    c.finish(&g.w);
}

/// A system user and group made for the corpus (idempotent): `(uid, gid)`.
fn system_user(name: &str) -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).arg(name).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    if Command::new("getent")
        .args(["group", name])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        let _ = Command::new("groupadd").args(["--system", name]).status();
    }
    if id("-u").is_none() {
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .args(["--gid", name, name])
            .status();
    }
    (
        id("-u").expect("useradd failed"),
        id("-g").expect("groupadd failed"),
    )
}

/// `ctr` against the proxy as `user` (not root; its groups are its own).
fn ctr_as(user: &str, socket: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            user,
            "--regid",
            user,
            "--init-groups",
            "ctr",
            "--address",
        ])
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_member_of_the_proxy_sockets_group_cannot_get_host_power() {
    use std::os::unix::fs::PermissionsExt as _;
    const USER: &str = "portcullis-bypass";
    let (uid, _) = system_user(USER);
    assert_ne!(uid, 0);
    let g = Gate::new(&format!("proxy: {{listenMode: \"0660:root:{USER}\"}}\n"));
    // The socket lives in the test's directory: let the user reach it.
    std::fs::set_permissions(g.dir(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let socket = &g.w.proxy.socket;
    let mut c = Corpus::new(&format!(
        "a non-root member of the socket's group (uid {uid})"
    ));

    // `ctr run IMAGE` mounts the image on the client side to read /etc/group, which a
    // non-root user cannot: the user runs hand-written specs with `ctr run --config`
    // (root.path `rootfs`, the bundle's empty rootfs: what runs at `runc create` runs; the
    // process itself is not found at start, which is not the gate's doing).
    let run = |case: &str, bend: &dyn Fn(&mut serde_json::Value, &str), flags: &[&str]| {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["/bin/sleep", "300"]);
        spec["root"] = json!({"path": "rootfs", "readonly": false});
        bend(&mut spec, &id);
        let file = g.host(&format!("{id}.json"));
        std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut args = vec!["run", "-d"];
        // --null-io would replace a --log-uri.
        if !flags.contains(&"--log-uri") {
            args.push("--null-io");
        }
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--config", file.to_str().unwrap(), &id]);
        let out = ctr_as(USER, socket, &args);
        eprintln!("{case}: {}", text(&out).trim());
        (id, outcome(out))
    };

    // The user can use the gate at all: a baseline-clean spec is admitted.
    let (id, result) = run("control", &|_, _| {}, &[]);
    c.admitted(
        "control: a baseline-clean spec (ctr run --config) is admitted",
        &Ok(()),
        vec![(
            format!("the container exists ({result:?})"),
            g.exists(NS, &id),
        )],
    );

    // Every capability: refused (held today).
    let (id, result) = run(
        "privileged",
        &|s, _| s["process"]["capabilities"] = super::kit::all_caps(),
        &[],
    );
    c.refused(
        "every capability (ctr run --privileged-like)",
        &result,
        &["privileged", "capabilit"],
        g.effects(NS, &id),
    );

    // --log-uri binary://: the shim runs it as root.
    let marker = g.host("user-logbin.marker");
    let evil = g.evil_script("user-logbin.sh", &marker);
    let uri = format!("binary://{}", evil.display());
    let (id, result) = run("log-uri", &|_, _| {}, &["--log-uri", &uri]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    // `ctr run` creates the (plain) container first; the task must never exist.
    let mut effects = g.task_effects(NS, &id);
    effects.push(written(&marker));
    c.refused(
        "ctr run --log-uri binary:///evil.sh",
        &result,
        &["stdio", "binary"],
        effects,
    );

    // --runc-binary: the shim runs it as root.
    let marker = g.host("user-runc.marker");
    let evil = g.evil_script("user-runc.sh", &marker);
    let (id, result) = run(
        "runc-binary",
        &|_, _| {},
        &["--runc-binary", evil.to_str().unwrap()],
    );
    let mut effects = g.effects(NS, &id);
    effects.push(written(&marker));
    c.refused(
        "ctr run --runc-binary /evil.sh",
        &result,
        &["runc", "binary"],
        effects,
    );

    // A createRuntime hook (ctr keeps hooks when it re-marshals).
    let marker = g.host("user-hook.marker");
    let hook = json!({"createRuntime": [{"path": "/bin/sh",
        "args": ["sh", "-c", format!("id -u > {}", marker.display())]}]});
    let (id, result) = run("hook", &|s, _| s["hooks"] = hook.clone(), &[]);
    let mut effects = g.effects(NS, &id);
    effects.push(written(&marker));
    c.refused(
        "a createRuntime hook running /bin/sh",
        &result,
        &["hook", "privileged"],
        effects,
    );

    // root.path: a host directory as the container's writable root.
    let hostdir = g.host_dir("user-hostdir");
    let (id, result) = run(
        "root.path",
        &|s, _| {
            s["root"] = json!({"path": hostdir, "readonly": false});
            s["process"]["args"] = json!(["/bin/sh", "-c", "id -u > /owned; sleep 300"]);
        },
        &[],
    );
    let mut effects = g.effects(NS, &id);
    effects.push(written(&hostdir.join("owned")));
    c.refused(
        "root.path a host directory",
        &result,
        &["root", "hostPath"],
        effects,
    );

    // A containerd namespace nobody listed: the caller picks the namespace, so for the
    // boundary to hold an unlisted one cannot be a free-for-all — the `"*"` entry of
    // `namespaces:` (in BASELINE) is what the operator sets for that.
    {
        let id = unique("c");
        let mut spec = g.spec("unconfigured", &id, &["/bin/sleep", "300"]);
        spec["root"] = json!({"path": "rootfs", "readonly": false});
        spec["process"]["capabilities"] = super::kit::all_caps();
        let file = g.host(&format!("{id}.json"));
        std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = ctr_as(
            USER,
            socket,
            &[
                "-n",
                "unconfigured",
                "run",
                "-d",
                "--null-io",
                "--config",
                file.to_str().unwrap(),
                &id,
            ],
        );
        c.refused(
            "every capability in a containerd namespace nobody configured (ctr -n unconfigured)",
            &outcome(out),
            &["privileged", "capabilit", "namespace"],
            g.effects("unconfigured", &id),
        );
    }

    // --net-host: held today.
    let (id, result) = run(
        "hostNetwork",
        &|s, _| {
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "network")
        },
        &[],
    );
    c.refused(
        "no network namespace (ctr run --net-host-like)",
        &result,
        &["hostNetwork", "namespace"],
        g.effects(NS, &id),
    );
    c.finish(&g.w);
}
