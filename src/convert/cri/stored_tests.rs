use serde_json::json;

use super::*;
use crate::config::KubeletDirs;

const CONTAINER: &str = include_str!("../../../tests/fixtures/cri/container-status-verbose.json");
const SANDBOX: &str = include_str!("../../../tests/fixtures/cri/pod-sandbox-status-verbose.json");

#[test]
fn containerds_verbose_status_gives_back_the_configs_the_kubelet_sent() {
    let c = container(CONTAINER).unwrap();
    assert_eq!(
        c.sandbox_id,
        "6d0e3743f6529f754df64c1c15489a56a4c81e44a9d4be8ee2fe5b26643373d9"
    );
    let config = &c.config;
    assert_eq!(config.metadata.as_ref().unwrap().name, "main");
    assert_eq!(config.command, ["sleep", "60"]);
    assert_eq!(config.mounts.len(), 2);
    assert!(config.mounts[0].selinux_relabel);
    let linux = config.linux.as_ref().unwrap();
    assert_eq!(linux.resources.as_ref().unwrap().cpu_period, 100_000);
    let sc = linux.security_context.as_ref().unwrap();
    assert_eq!(sc.namespace_options.as_ref().unwrap().pid, 1);
    assert_eq!(sc.seccomp.as_ref().unwrap().profile_type, 1);
    assert_eq!(sc.readonly_paths.len(), 5);

    let s = sandbox(SANDBOX).unwrap();
    assert_eq!(s.runtime_handler, "");
    let meta = s.config.metadata.as_ref().unwrap();
    assert_eq!(
        (meta.name.as_str(), meta.namespace.as_str()),
        ("v", "default")
    );

    // The Pod is the one CreateContainer described.
    let pod = super::super::container_pod(&s.config, config, "", &KubeletDirs::default()).unwrap();
    assert_eq!(pod["metadata"]["namespace"], "default");
    assert_eq!(pod["spec"]["containers"][0]["name"], "main");
    assert_eq!(
        pod["spec"]["containers"][0]["command"],
        json!(["sleep", "60"])
    );
}

#[test]
fn a_field_this_build_does_not_know_refuses_naming_it() {
    let mut info: Value = serde_json::from_str(CONTAINER).unwrap();
    info["config"]["linux"]["security_context"]["new_power"] = json!(true);
    let e = container(&info.to_string()).unwrap_err().to_string();
    assert!(e.contains("new_power") && e.contains("info.config"), "{e}");

    let mut info: Value = serde_json::from_str(SANDBOX).unwrap();
    info["config"]["windows"] = json!({"security_context": {"host_process": true}});
    let e = sandbox(&info.to_string()).unwrap_err().to_string();
    assert!(e.contains("security_context"), "{e}");
}

#[test]
fn a_status_without_a_config_cannot_be_judged() {
    let e = container(r#"{"sandboxID": "x", "pid": 1}"#).unwrap_err();
    assert!(matches!(e, CriError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("ContainerStatus info.config"), "{e}");
    for bad in ["", "[]", "{\"config\": 3}"] {
        assert!(container(bad).is_err(), "{bad}");
        assert!(sandbox(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_resources_in_force_are_the_oci_specs() {
    // containerd keeps CreateContainer's config; an update changes the OCI spec only.
    let mut info: Value = serde_json::from_str(CONTAINER).unwrap();
    info["runtimeSpec"]["linux"]["resources"] = json!({
        "memory": {"limit": 134217728},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "devices": [{"allow": false, "access": "rwm"}],
    });
    let c = container(&info.to_string()).unwrap();
    let linux = c.config.linux.unwrap();
    let r = linux.resources.unwrap();
    assert_eq!(
        (
            r.memory_limit_in_bytes,
            r.cpu_shares,
            r.cpu_quota,
            r.cpu_period
        ),
        (134_217_728, 512, 50_000, 100_000)
    );
    assert_eq!(r.hugepage_limits[0].page_size, "2MB");
    // What the spec does not say of the process stays the config's.
    assert_eq!(r.oom_score_adj, 1000);

    info["runtimeSpec"]["linux"]["resources"]["memory"] = json!({"limit": "lots"});
    let e = container(&info.to_string()).unwrap_err().to_string();
    assert!(e.contains("runtimeSpec.linux.resources"), "{e}");
}
