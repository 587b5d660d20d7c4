use serde_json::json;

use super::*;

const WHAT: &str = "test";

fn mount(kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        r#type: kind.into(),
        source: source.into(),
        target: String::new(),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

fn any<M: Message>(type_url: &str, m: &M) -> Any {
    Any {
        type_url: type_url.into(),
        value: m.encode_to_vec(),
    }
}

#[test]
fn rootfs_must_be_the_snapshot_or_nothing() {
    let snapshot = vec![mount(
        "overlay",
        "overlay",
        &["lowerdir=/a", "upperdir=/b", "workdir=/c"],
    )];
    assert!(check_rootfs(WHAT, &[], Some(&snapshot), "").is_ok());
    assert!(check_rootfs(WHAT, &[], None, "").is_ok());
    assert!(check_rootfs(WHAT, &snapshot, Some(&snapshot), "").is_ok());
    let host = vec![mount("bind", "/", &["rbind", "rw"])];
    let e = check_rootfs(WHAT, &host, Some(&snapshot), "").unwrap_err();
    assert_eq!(e.code, Code::PermissionDenied);
    assert!(e.message.contains("rootfs"), "{}", e.message);
    assert!(check_rootfs(WHAT, &host, None, "").is_err());
    // The snapshot's mounts plus one more, or reordered options, are not the snapshot's.
    let mut more = snapshot.clone();
    more.push(mount("bind", "/etc", &["rbind"]));
    assert!(check_rootfs(WHAT, &more, Some(&snapshot), "").is_err());
    // containerd's client labels the snapshot's mounts with the spec's mountLabel.
    let label = "system_u:object_r:container_file_t:s0:c1,c2";
    let mut labelled = snapshot.clone();
    labelled[0].options.push(format!("context=\"{label}\""));
    assert!(check_rootfs(WHAT, &labelled, Some(&snapshot), label).is_ok());
    assert!(check_rootfs(WHAT, &labelled, Some(&snapshot), "").is_err());
    let reordered = vec![mount(
        "overlay",
        "overlay",
        &["upperdir=/b", "lowerdir=/a", "workdir=/c"],
    )];
    assert!(check_rootfs(WHAT, &reordered, Some(&snapshot), "").is_err());
}

#[test]
fn stdio_that_runs_or_writes_as_root_needs_the_allow_list() {
    let none = TaskRules::default();
    for ok in ["", "/run/containerd/fifo/123/stdout", "fifo:///tmp/x"] {
        assert!(check_stdio(WHAT, "stdout", ok, &none).is_ok(), "{ok}");
    }
    for bad in [
        "binary:///tmp/evil.sh",
        "binary:///usr/bin/logger?tag=x",
        "file:///etc/cron.d/x",
        "file:///tmp/log",
        "tcp://127.0.0.1:1",
    ] {
        let e = check_stdio(WHAT, "stdout", bad, &none).unwrap_err();
        assert!(e.message.contains("stdout"), "{}", e.message);
    }
    let rules = TaskRules {
        stdio: vec!["binary:///usr/bin/logger".into()],
        ..Default::default()
    };
    assert!(check_stdio(WHAT, "stdout", "binary:///usr/bin/logger?tag=x", &rules).is_ok());
    assert!(check_stdio(WHAT, "stdout", "binary:///usr/bin/logger2", &rules).is_err());
    let e = check_stdio(WHAT, "stderr", "binary:///tmp/evil.sh", &rules).unwrap_err();
    assert!(e.message.contains("proxy.tasks.stdio"), "{}", e.message);
}

#[test]
fn shim_paths_need_the_allow_list() {
    let none = TaskRules::default();
    assert!(check_runtime(WHAT, "runtime_path", "", &none).is_ok());
    assert!(check_runtime(WHAT, "runtime.name", "io.containerd.runc.v2", &none).is_ok());
    for bad in [
        "/tmp/evil",
        "/usr/bin/containerd-shim-runc-v2",
        "../../tmp/x",
    ] {
        let e = check_runtime(WHAT, "runtime_path", bad, &none).unwrap_err();
        assert!(
            e.message.contains("proxy.tasks.runtimePaths"),
            "{}",
            e.message
        );
    }
    let rules = TaskRules {
        runtime_paths: vec!["/usr/bin/containerd-shim-runc-v2".into()],
        ..Default::default()
    };
    assert!(check_runtime(
        WHAT,
        "runtime_path",
        "/usr/bin/containerd-shim-runc-v2",
        &rules
    )
    .is_ok());
}

#[test]
fn runc_options_that_choose_how_root_runs_are_refused() {
    let none = TaskRules::default();
    let url = "containerd.runc.v1.Options";
    let plain = RuncOptions {
        systemd_cgroup: true,
        io_uid: 1000,
        ..Default::default()
    };
    assert!(check_options(WHAT, "options", Some(&any(url, &plain)), &none).is_ok());
    assert!(check_options(WHAT, "options", None, &none).is_ok());
    let bare = RuncOptions {
        binary_name: "runc".into(),
        ..Default::default()
    };
    assert!(check_options(WHAT, "options", Some(&any(url, &bare)), &none).is_ok());
    let binary = RuncOptions {
        binary_name: "/tmp/evil-runc".into(),
        ..Default::default()
    };
    let e = check_options(WHAT, "options", Some(&any(url, &binary)), &none).unwrap_err();
    assert!(e.message.contains("options.binary_name"), "{}", e.message);
    let rules = TaskRules {
        runc_binaries: vec!["/tmp/evil-runc".into()],
        ..Default::default()
    };
    assert!(check_options(WHAT, "options", Some(&any(url, &binary)), &rules).is_ok());
    for (name, o) in [
        (
            "no_pivot_root",
            RuncOptions {
                no_pivot_root: true,
                ..Default::default()
            },
        ),
        (
            "root",
            RuncOptions {
                root: "/tmp/r".into(),
                ..Default::default()
            },
        ),
        (
            "criu_path",
            RuncOptions {
                criu_path: "/tmp/criu".into(),
                ..Default::default()
            },
        ),
        (
            "shim_cgroup",
            RuncOptions {
                shim_cgroup: "/".into(),
                ..Default::default()
            },
        ),
    ] {
        let e = check_options(WHAT, "options", Some(&any(url, &o)), &rules).unwrap_err();
        assert!(
            e.message.contains(&format!("options.{name}")),
            "{}",
            e.message
        );
    }
    // The standard roots are allowed by default; others need the allow-list.
    for root in ["/run/containerd/runc", "/var/run/docker/runtime-runc/"] {
        let o = RuncOptions {
            root: root.into(),
            ..Default::default()
        };
        assert!(
            check_options(WHAT, "options", Some(&any(url, &o)), &none).is_ok(),
            "{root}"
        );
    }
    let mine = RuncOptions {
        root: "/srv/docker/exec/runtime-runc".into(),
        ..Default::default()
    };
    assert!(check_options(WHAT, "options", Some(&any(url, &mine)), &none).is_err());
    let listed = TaskRules {
        runc_roots: vec!["/srv/docker/exec/runtime-runc".into()],
        ..Default::default()
    };
    assert!(check_options(WHAT, "options", Some(&any(url, &mine)), &listed).is_ok());
    let legacy = LegacyRuncOptions {
        runtime: "/tmp/evil-runc".into(),
        ..Default::default()
    };
    let legacy = any("containerd.linux.runc.RuncOptions", &legacy);
    assert!(check_options(WHAT, "options", Some(&legacy), &none).is_err());
    let create = CreateOptions {
        no_pivot_root: true,
        ..Default::default()
    };
    let create = any("containerd.linux.runc.CreateOptions", &create);
    assert!(check_options(WHAT, "options", Some(&create), &rules).is_err());
    let other = Any {
        type_url: "runtimeoptions.v1.Options".into(),
        value: vec![0x12, 1, b'x'],
    };
    let e = check_options(WHAT, "options", Some(&other), &rules).unwrap_err();
    assert!(e.message.contains("cannot judge"), "{}", e.message);
    let garbage = Any {
        type_url: url.into(),
        value: vec![0xff, 0xff],
    };
    assert_eq!(
        check_options(WHAT, "options", Some(&garbage), &rules)
            .unwrap_err()
            .code,
        Code::InvalidArgument
    );
}

fn process(uid: u64, caps: &[&str], nnp: bool) -> Value {
    json!({
        "user": {"uid": uid, "gid": uid},
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": nnp,
    })
}

#[test]
fn an_exec_holds_no_more_than_its_container() {
    let container = process(1000, &["CAP_CHOWN", "CAP_KILL"], true);
    assert!(check_exec(WHAT, &container, &process(1000, &["CAP_KILL"], true)).is_ok());
    assert!(check_exec(WHAT, &container, &process(1001, &[], true)).is_ok());
    let cases = [
        (process(0, &["CAP_KILL"], true), "process.user.uid"),
        (
            process(1000, &["CAP_SYS_ADMIN"], true),
            "process.capabilities.bounding",
        ),
        (
            process(1000, &["CAP_KILL"], false),
            "process.noNewPrivileges",
        ),
    ];
    for (exec, field) in cases {
        let e = check_exec(WHAT, &container, &exec).unwrap_err();
        assert!(e.message.contains(field), "{field}: {}", e.message);
    }
    let mut ambient = process(1000, &[], true);
    ambient["capabilities"]["ambient"] = json!(["CAP_NET_ADMIN"]);
    assert!(check_exec(WHAT, &container, &ambient).is_err());
    let mut group0 = process(1000, &[], true);
    group0["user"]["additionalGids"] = json!([0]);
    assert!(check_exec(WHAT, &container, &group0)
        .unwrap_err()
        .message
        .contains("group 0"));
    let mut unconfined = process(1000, &[], true);
    unconfined["apparmorProfile"] = json!("unconfined");
    assert!(check_exec(WHAT, &container, &unconfined).is_err());
    let mut spc = process(1000, &[], true);
    spc["selinuxLabel"] = json!("system_u:system_r:spc_t:s0");
    assert!(check_exec(WHAT, &container, &spc).is_err());
    // A root container may exec as root; no capabilities in the spec means none at all.
    let root = process(0, &["CAP_CHOWN"], false);
    assert!(check_exec(WHAT, &root, &process(0, &["CAP_CHOWN"], false)).is_ok());
    let bare = json!({"user": {"uid": 0}});
    assert!(check_exec(WHAT, &bare, &process(0, &["CAP_CHOWN"], false)).is_err());
}

#[test]
fn restart_labels_are_judged_as_the_stdio_of_the_task_containerd_starts() {
    let none = TaskRules::default();
    let labels = |k: &str, v: &str| {
        [
            (
                "containerd.io/restart.status".to_owned(),
                "running".to_owned(),
            ),
            (k.to_owned(), v.to_owned()),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    assert!(check_restart_labels(WHAT, &labels("a", "b"), &none).is_ok());
    let e = check_restart_labels(
        WHAT,
        &labels("containerd.io/restart.loguri", "binary:///tmp/x"),
        &none,
    )
    .unwrap_err();
    assert!(e.message.contains("restart.loguri"), "{}", e.message);
    let e = check_restart_labels(
        WHAT,
        &labels("containerd.io/restart.logpath", "/etc/cron.d/x"),
        &none,
    )
    .unwrap_err();
    assert!(e.message.contains("restart.logpath"), "{}", e.message);
    let rules = TaskRules {
        stdio: vec!["file:///var/log/c.log".into()],
        ..Default::default()
    };
    let ok = labels("containerd.io/restart.logpath", "/var/log/c.log");
    assert!(check_restart_labels(WHAT, &ok, &rules).is_ok());
}
