//! Unit tests of `write_sandbox` / `write_container`, field by field, on small requests.

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;
use serde_json::{json, Value};

use super::writeback_fixtures::{
    container_with, containers, profile, remove, sandbox_with, sandboxes, set, view_container,
    view_sandbox, C0, SC,
};
use super::{write_container, write_sandbox, WriteBackError};

fn create(env: &[(&str, &str)]) -> CreateContainerRequest {
    CreateContainerRequest {
        pod_sandbox_id: "sb".into(),
        config: Some(ContainerConfig {
            image: Some(ImageSpec {
                image: "sha256:abc".into(),
                ..Default::default()
            }),
            command: vec!["sh".into()],
            envs: env
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            ..Default::default()
        }),
        sandbox_config: None,
    }
}

fn pod(container: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": [container]}})
}

fn paths(e: &WriteBackError) -> Vec<&str> {
    e.refused.iter().map(|r| r.field.as_str()).collect()
}

/// The busybox request, its view, and `change` applied to a copy of the view.
fn busybox(change: impl FnOnce(&mut Value)) -> (CreateContainerRequest, Value, Value) {
    let req = containers().remove(0).1;
    let before = view_container(&req);
    let mut after = before.clone();
    change(&mut after);
    (req, before, after)
}

#[test]
fn env_and_command_changes_are_written_into_the_request() {
    let before = pod(
        json!({"image": "busybox:1.36", "command": ["sh"], "env": [{"name": "A", "value": "1"}]}),
    );
    let after = pod(
        json!({"image": "busybox:1.36", "command": ["sh", "-c"], "args": ["env"],
        "env": [{"name": "A", "value": "1"}, {"name": "GREETING", "value": "hi"}]}),
    );
    let mut req = create(&[("A", "1")]);
    write_container(&mut req, &before, &after).unwrap();
    let config = req.config.unwrap();
    assert_eq!(config.command, ["sh", "-c"]);
    assert_eq!(config.args, ["env"]);
    let env: Vec<(String, String)> = config.envs.into_iter().map(|e| (e.key, e.value)).collect();
    assert_eq!(
        env,
        [("A".into(), "1".into()), ("GREETING".into(), "hi".into())]
    );
    // The image did not change: the ID the kubelet sent stays.
    assert_eq!(config.image.unwrap().image, "sha256:abc");
    assert_eq!(req.pod_sandbox_id, "sb");
}

#[test]
fn other_changes_refuse_the_call_naming_them() {
    let before = pod(json!({"image": "busybox:1.36"}));
    let mut after = before.clone();
    after["spec"]["containers"][0]["securityContext"] = json!({"procMount": "Unmasked"});
    after["spec"]["hostNetwork"] = json!(true);
    let e = write_container(&mut create(&[]), &before, &after)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/spec/containers/0/securityContext/procMount")
            && e.contains("/spec/hostNetwork"),
        "{e}"
    );
    let e = write_sandbox(
        &mut RunPodSandboxRequest::default(),
        &pod(json!({"image": "x"})),
        &pod(json!({"image": "y"})),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/spec/containers/0/image"), "{e}");
    let mut with_ref = before.clone();
    with_ref["spec"]["containers"][0]["env"] =
        json!([{"name": "T", "valueFrom": {"secretKeyRef": {}}}]);
    let e = write_container(&mut create(&[]), &before, &with_ref)
        .unwrap_err()
        .to_string();
    assert!(e.contains("valueFrom"), "{e}");
}

#[test]
fn a_runtime_class_becomes_the_runtime_handler() {
    let mut req = RunPodSandboxRequest {
        config: Some(PodSandboxConfig::default()),
        runtime_handler: "legacy".into(),
    };
    let before = json!({"spec": {"runtimeClassName": "legacy"}});
    let after = json!({"spec": {"runtimeClassName": "runc"}});
    write_sandbox(&mut req, &before, &after).unwrap();
    assert_eq!(req.runtime_handler, "runc");
}

#[test]
fn one_error_names_every_refused_field_and_the_call() {
    let (mut req, before, after) = busybox(|p| {
        set(p, "/spec/hostIPC", json!(true));
        set(p, &format!("{C0}/resources/limits/memory"), json!("-1"));
        set(p, &format!("{C0}/resources/limits/cpu"), json!("lots"));
    });
    let e = write_container(&mut req, &before, &after).unwrap_err();
    assert_eq!(e.call, "CreateContainer");
    assert_eq!(
        paths(&e),
        [
            "/spec/hostIPC",
            "/spec/containers/0/resources/limits/cpu",
            "/spec/containers/0/resources/limits/memory"
        ]
    );
    let message = e.to_string();
    assert!(message.contains("`-1` is negative"), "{message}");
    assert!(
        message.contains("`lots` is not a Kubernetes quantity"),
        "{message}"
    );
}

#[test]
fn quantities_are_written_with_the_kubelets_formulas() {
    let mut req = containers().remove(0).1;
    let linux = req.config.as_mut().unwrap().linux.as_mut().unwrap();
    linux.resources.as_mut().unwrap().cpu_period = 50_000;
    let before = view_container(&req);
    let mut after = before.clone();
    set(
        &mut after,
        &format!("{C0}/resources/limits/memory"),
        json!("128Mi"),
    );
    set(
        &mut after,
        &format!("{C0}/resources/limits/cpu"),
        json!("0.25"),
    );
    set(
        &mut after,
        &format!("{C0}/resources/requests/cpu"),
        json!(1),
    );
    write_container(&mut req, &before, &after).unwrap();
    let r = req
        .config
        .clone()
        .unwrap()
        .linux
        .unwrap()
        .resources
        .unwrap();
    assert_eq!(r.memory_limit_in_bytes, 128 << 20);
    // The request's period stays: 250m of 50 ms is 12.5 ms.
    assert_eq!((r.cpu_quota, r.cpu_period), (12_500, 50_000));
    assert_eq!(r.cpu_shares, 1024);
    // Read back in the view's form.
    let resources = &view_container(&req)["spec"]["containers"][0]["resources"];
    assert_eq!(
        *resources,
        json!({"limits": {"cpu": "250m", "memory": "134217728"}, "requests": {"cpu": "1"}})
    );
}

#[test]
fn cpu_limits_and_requests_read_back_or_are_refused() {
    for (limit, ok) in [("10m", true), ("9m", false), ("1", true), ("256", true)] {
        let (mut req, before, after) =
            busybox(|p| set(p, &format!("{C0}/resources/limits/cpu"), json!(limit)));
        let result = write_container(&mut req, &before, &after);
        assert_eq!(result.is_ok(), ok, "{limit}: {result:?}");
        if let Err(e) = result {
            assert!(e.to_string().contains("1000 µs"), "{e}");
        }
    }
    for (request, ok) in [("3m", true), ("2m", false), ("256", true), ("257", false)] {
        let (mut req, before, after) =
            busybox(|p| set(p, &format!("{C0}/resources/requests/cpu"), json!(request)));
        let result = write_container(&mut req, &before, &after);
        assert_eq!(result.is_ok(), ok, "{request}: {result:?}");
    }
    let (mut req, before, after) =
        busybox(|p| set(p, &format!("{C0}/resources/limits/memory"), json!("0")));
    let e = write_container(&mut req, &before, &after).unwrap_err();
    assert!(e.to_string().contains("remove the field instead"), "{e}");
}

#[test]
fn a_swap_limit_equal_to_the_memory_limit_follows_it() {
    let (mut req, before, after) =
        busybox(|p| set(p, &format!("{C0}/resources/limits/memory"), json!("128Mi")));
    let resources = |req: &mut CreateContainerRequest| {
        let linux = req.config.as_mut().unwrap().linux.as_mut().unwrap();
        linux.resources.as_mut().unwrap().clone()
    };
    let mut no_swap = req.clone();
    let linux = no_swap.config.as_mut().unwrap().linux.as_mut().unwrap();
    linux.resources.as_mut().unwrap().memory_swap_limit_in_bytes = 64 << 20;
    write_container(&mut no_swap, &before, &after).unwrap();
    assert_eq!(
        resources(&mut no_swap).memory_swap_limit_in_bytes,
        128 << 20
    );
    write_container(&mut req, &before, &after).unwrap();
    assert_eq!(resources(&mut req).memory_swap_limit_in_bytes, 0);
}

#[test]
#[allow(deprecated)]
fn new_profiles_clear_the_deprecated_strings() {
    let mut req = containers().remove(2).1; // privileged: "unconfined" strings
    let before = view_container(&req);
    let mut after = before.clone();
    set(
        &mut after,
        &format!("{SC}/seccompProfile"),
        json!({"type": "RuntimeDefault"}),
    );
    set(
        &mut after,
        &format!("{SC}/appArmorProfile"),
        json!({"type": "RuntimeDefault"}),
    );
    write_container(&mut req, &before, &after).unwrap();
    let sc = req.config.unwrap().linux.unwrap().security_context.unwrap();
    assert_eq!(sc.seccomp, profile(ProfileType::RuntimeDefault, ""));
    assert_eq!(sc.apparmor, profile(ProfileType::RuntimeDefault, ""));
    assert!(sc.seccomp_profile_path.is_empty() && sc.apparmor_profile.is_empty());

    let mut req = sandboxes().remove(2).1; // "runtime/default" string
    let before = view_sandbox(&req);
    let mut after = before.clone();
    remove(&mut after, "/spec/securityContext/seccompProfile");
    write_sandbox(&mut req, &before, &after).unwrap();
    let sc = req.config.unwrap().linux.unwrap().security_context.unwrap();
    assert_eq!(sc.seccomp, profile(ProfileType::Unconfined, ""));
    assert!(sc.seccomp_profile_path.is_empty());
}

#[test]
fn privilege_follows_the_view_or_is_refused() {
    // Host power with no Pod field makes the view privileged: it cannot be turned off.
    let mut config = container_with(LinuxContainerSecurityContext::default());
    config.devices.push(Device {
        host_path: "/dev/sda".into(),
        container_path: "/dev/sda".into(),
        permissions: "rwm".into(),
    });
    let mut req = containers().remove(0).1;
    req.config = Some(config);
    let before = view_container(&req);
    let mut after = before.clone();
    set(&mut after, &format!("{SC}/privileged"), json!(false));
    let e = write_container(&mut req.clone(), &before, &after).unwrap_err();
    assert!(e.to_string().contains("privileged-reasons"), "{e}");

    // Off with a Bidirectional mount: Kubernetes allows those only privileged.
    let mut req = containers().remove(2).1;
    req.config.as_mut().unwrap().mounts[0].propagation =
        MountPropagation::PropagationBidirectional as i32;
    let before = view_container(&req);
    let mut after = before.clone();
    set(&mut after, &format!("{SC}/privileged"), json!(false));
    let e = write_container(&mut req, &before, &after).unwrap_err();
    assert!(e.to_string().contains("Bidirectional"), "{e}");

    // Off with no masked paths: the kubelet's, so /proc reads back as procMount Default.
    let mut req = containers().remove(2).1;
    let sc = security_context(&mut req);
    (sc.masked_paths, sc.readonly_paths) = (Vec::new(), Vec::new());
    let before = view_container(&req);
    let mut after = before.clone();
    set(&mut after, &format!("{SC}/privileged"), json!(false));
    write_container(&mut req, &before, &after).unwrap();
    assert!(security_context(&mut req)
        .masked_paths
        .contains(&"/proc/kcore".to_owned()));
    assert_eq!(view_container(&req), after);

    // On where the view shows procMount Unmasked: it would read back as Default.
    let mut req = containers().remove(0).1;
    let sc = security_context(&mut req);
    (sc.masked_paths, sc.readonly_paths) = (Vec::new(), Vec::new());
    let before = view_container(&req);
    let mut after = before.clone();
    set(&mut after, &format!("{SC}/privileged"), json!(true));
    let e = write_container(&mut req, &before, &after).unwrap_err();
    assert_eq!(paths(&e), [format!("{SC}/procMount")]);
}

fn security_context(req: &mut CreateContainerRequest) -> &mut LinuxContainerSecurityContext {
    let linux = req.config.as_mut().unwrap().linux.as_mut().unwrap();
    linux.security_context.as_mut().unwrap()
}

#[test]
fn ambient_capabilities_stay_only_while_added() {
    let mut req = containers().remove(2).1; // adds SYS_ADMIN, ambient too
    let before = view_container(&req);
    let mut after = before.clone();
    set(
        &mut after,
        &format!("{SC}/capabilities/add"),
        json!(["NET_ADMIN"]),
    );
    write_container(&mut req, &before, &after).unwrap();
    let caps = security_context(&mut req).capabilities.clone().unwrap();
    assert_eq!(caps.add_capabilities, ["NET_ADMIN"]);
    assert!(caps.add_ambient_capabilities.is_empty());
}

#[test]
fn a_uid_replaces_a_user_name() {
    let mut req = containers().remove(2).1; // run_as_username "nobody"
    let before = view_container(&req);
    let mut after = before.clone();
    set(&mut after, &format!("{SC}/runAsUser"), json!(1000));
    // runAsNonRoot must read as the view derives it.
    let e = write_container(&mut req.clone(), &before, &after).unwrap_err();
    assert_eq!(paths(&e), [format!("{SC}/runAsNonRoot")]);
    assert!(e.to_string().contains("set runAsNonRoot: true"), "{e}");
    set(&mut after, &format!("{SC}/runAsNonRoot"), json!(true));
    write_container(&mut req, &before, &after).unwrap();
    let sc = security_context(&mut req);
    assert_eq!(sc.run_as_user, Some(Int64Value { value: 1000 }));
    assert!(sc.run_as_username.is_empty());
}

#[test]
fn pod_fields_go_into_the_sandbox_config_at_create_container() {
    let (mut req, before, after) = busybox(|p| {
        set(p, "/metadata/labels/team", json!("a"));
        set(p, "/spec/securityContext/supplementalGroups", json!([7]));
    });
    write_container(&mut req, &before, &after).unwrap();
    let sandbox = req.sandbox_config.clone().unwrap();
    assert_eq!(sandbox.labels["team"], "a");
    // The request's own `portcullis.dev/` annotation stays; none of the view's is written.
    assert_eq!(
        sandbox.annotations["portcullis.dev/note"],
        "the request's own"
    );
    assert_eq!(sandbox.annotations.len(), 2);
    let sandbox_sc = sandbox.linux.unwrap().security_context.unwrap();
    assert_eq!(sandbox_sc.supplemental_groups, [7]);
    assert_eq!(security_context(&mut req).supplemental_groups, [7]);
}

#[test]
fn a_request_without_linux_fields_gets_them() {
    let mut req = CreateContainerRequest {
        config: Some(ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            ..Default::default()
        }),
        sandbox_config: Some(sandbox_with(LinuxSandboxSecurityContext::default())),
        ..Default::default()
    };
    req.sandbox_config.as_mut().unwrap().linux = None;
    let before = view_container(&req);
    let mut after = before.clone();
    set(
        &mut after,
        &format!("{SC}/readOnlyRootFilesystem"),
        json!(true),
    );
    set(
        &mut after,
        &format!("{C0}/resources/limits/memory"),
        json!("1Gi"),
    );
    set(
        &mut after,
        "/spec/securityContext/sysctls",
        json!([{"name": "kernel.shm_rmid_forced", "value": "1"}]),
    );
    write_container(&mut req, &before, &after).unwrap();
    let mut expected = after.clone();
    set(
        &mut expected,
        &format!("{C0}/resources/limits/memory"),
        json!("1073741824"),
    );
    assert_eq!(view_container(&req), expected);
}

#[test]
fn env_without_a_value_is_empty_and_a_name_is_required() {
    let (mut req, before, mut after) = busybox(|_| {});
    set(&mut after, &format!("{C0}/env"), json!([{"name": "BARE"}]));
    write_container(&mut req, &before, &after).unwrap();
    let env = &req.config.as_ref().unwrap().envs;
    assert_eq!((env[0].key.as_str(), env[0].value.as_str()), ("BARE", ""));
    set(&mut after, &format!("{C0}/env"), json!([{"value": "x"}]));
    let e = write_container(&mut req, &before, &after).unwrap_err();
    assert_eq!(paths(&e), [format!("{C0}/env/0/name")]);
}

#[test]
fn an_image_change_is_what_the_pod_asks_for() {
    let (mut req, before, after) =
        busybox(|p| set(p, &format!("{C0}/image"), json!("registry.example/app:2")));
    write_container(&mut req, &before, &after).unwrap();
    let image = req.config.unwrap().image.unwrap();
    assert_eq!(image.image, "registry.example/app:2");
    assert_eq!(image.user_specified_image, "registry.example/app:2");
}
