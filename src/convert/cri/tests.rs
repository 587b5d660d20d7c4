use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;
use prost::Message;
use serde_json::{json, Value};

use super::*;
use crate::policy::pss::{evaluate, LevelVersion};

/// The conversions with the kubelet's default directories.
fn sandbox_pod(c: &PodSandboxConfig, handler: &str) -> Result<Value, CriError> {
    super::sandbox_pod(c, handler, &KubeletDirs::default())
}

fn container_pod(
    s: &PodSandboxConfig,
    c: &ContainerConfig,
    handler: &str,
) -> Result<Value, CriError> {
    super::container_pod(s, c, handler, &KubeletDirs::default())
}

/// A sandbox as the kubelet sends it for `default/web` (no host namespaces, userns NODE).
fn sandbox() -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web".into(),
            uid: "u1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: "/var/log/pods/default_web_u1".into(),
        dns_config: Some(DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        port_mappings: vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: 80,
            host_port: 0,
            host_ip: String::new(),
        }],
        labels: [("io.kubernetes.pod.name".to_owned(), "web".to_owned())].into(),
        annotations: [("kubernetes.io/config.source".to_owned(), "api".to_owned())].into(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(NamespaceMode::Pod, NamespaceMode::Container)),
                seccomp: Some(profile(ProfileType::RuntimeDefault)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        windows: None,
    }
}

fn namespaces(net: NamespaceMode, pid: NamespaceMode) -> NamespaceOption {
    NamespaceOption {
        network: net as i32,
        pid: pid as i32,
        ipc: NamespaceMode::Pod as i32,
        target_id: String::new(),
        userns_options: Some(UserNamespace {
            mode: NamespaceMode::Node as i32,
            ..Default::default()
        }),
    }
}

fn profile(t: ProfileType) -> SecurityProfile {
    SecurityProfile {
        profile_type: t as i32,
        localhost_ref: String::new(),
    }
}

/// busybox as the kubelet sends it.
fn busybox() -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: "docker.io/library/busybox:1.36".into(),
            ..Default::default()
        }),
        command: vec!["sleep".into()],
        args: vec!["3600".into()],
        envs: vec![KeyValue {
            key: "A".into(),
            value: "1".into(),
        }],
        mounts: vec![
            Mount {
                container_path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
                host_path:
                    "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~projected/kube-api-access-x"
                        .into(),
                readonly: true,
                ..Default::default()
            },
            Mount {
                container_path: "/etc/hosts".into(),
                host_path: "/var/lib/kubelet/pods/u1/etc-hosts".into(),
                ..Default::default()
            },
        ],
        log_path: "app/0.log".into(),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 256,
                memory_limit_in_bytes: 67_108_864,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces(NamespaceMode::Pod, NamespaceMode::Container)),
                run_as_user: Some(Int64Value { value: 1000 }),
                no_new_privs: true,
                masked_paths: vec!["/proc/kcore".into()],
                readonly_paths: vec!["/proc/sys".into()],
                capabilities: Some(Capability {
                    drop_capabilities: vec!["ALL".into()],
                    ..Default::default()
                }),
                seccomp: Some(profile(ProfileType::RuntimeDefault)),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn baseline(pod: &Value) -> Vec<&'static str> {
    let lv: LevelVersion = "baseline:latest".parse().unwrap();
    evaluate(&lv, pod)
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect()
}

#[test]
fn plain_pod() {
    let pod = container_pod(&sandbox(), &busybox(), "").unwrap();
    let want = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1",
            "labels": {"io.kubernetes.pod.name": "web"},
            "annotations": {"kubernetes.io/config.source": "api"}},
        "spec": {
            "hostname": "web",
            "dnsConfig": {"nameservers": ["10.96.0.10"], "searches": ["default.svc.cluster.local"],
                "options": [{"name": "ndots", "value": "5"}]},
            "securityContext": {"supplementalGroupsPolicy": "Merge",
                "seccompProfile": {"type": "RuntimeDefault"}},
            "hostNetwork": false, "hostPID": false, "hostIPC": false, "hostUsers": true,
            "containers": [{
                "name": "app", "image": "docker.io/library/busybox:1.36",
                "command": ["sleep"], "args": ["3600"], "env": [{"name": "A", "value": "1"}],
                "tty": false, "stdin": false, "stdinOnce": false,
                "volumeMounts": [{"name": "kube-api-access-x",
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                "resources": {"limits": {"cpu": "500m", "memory": "67108864"},
                    "requests": {"cpu": "250m"}},
                "securityContext": {"privileged": false, "capabilities": {"drop": ["ALL"]},
                    "runAsUser": 1000, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": false, "procMount": "Default",
                    "seccompProfile": {"type": "RuntimeDefault"}}
            }],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": []}}]
        }
    });
    assert_eq!(pod, want, "{pod:#}");
    assert!(baseline(&pod).is_empty());
    let lv: LevelVersion = "restricted:latest".parse().unwrap();
    assert_eq!(evaluate(&lv, &pod).unwrap(), vec![]);
    let sb = sandbox_pod(&sandbox(), "kata").unwrap();
    assert_eq!(sb["spec"]["containers"], json!([]));
    assert_eq!(sb["spec"]["runtimeClassName"], "kata");
    assert!(baseline(&sb).is_empty());
}

fn with_sc(f: impl FnOnce(&mut LinuxContainerSecurityContext)) -> ContainerConfig {
    let mut c = busybox();
    f(c.linux.as_mut().unwrap().security_context.as_mut().unwrap());
    c
}

#[test]
fn host_power_is_where_pod_security_looks() {
    let mut host_sb = sandbox();
    let ns = host_sb
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap();
    ns.namespace_options = Some(NamespaceOption {
        ipc: NamespaceMode::Node as i32,
        ..namespaces(NamespaceMode::Node, NamespaceMode::Node)
    });
    let pod = sandbox_pod(&host_sb, "").unwrap();
    assert_eq!(
        (
            &pod["spec"]["hostNetwork"],
            &pod["spec"]["hostPID"],
            &pod["spec"]["hostIPC"]
        ),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(baseline(&pod), ["hostNamespaces"]);

    let pod = container_pod(&sandbox(), &with_sc(|s| s.privileged = true), "").unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["privileged"],
        true
    );
    assert!(baseline(&pod).contains(&"privileged"));

    let c = with_sc(|s| {
        s.capabilities = Some(Capability {
            add_capabilities: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        })
    });
    let pod = container_pod(&sandbox(), &c, "").unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"],
        json!(["SYS_ADMIN"])
    );
    assert_eq!(baseline(&pod), ["capabilities_baseline"]);

    let mut c = busybox();
    c.mounts.push(Mount {
        container_path: "/host".into(),
        host_path: "/".into(),
        ..Default::default()
    });
    let pod = container_pod(&sandbox(), &c, "").unwrap();
    assert!(pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "cri-mount-2", "hostPath": {"path": "/"}})));
    assert_eq!(baseline(&pod), ["hostPathVolumes"]);

    let mut sb = sandbox();
    sb.port_mappings[0].host_port = 8080;
    sb.port_mappings[0].host_ip = "0.0.0.0".into();
    let port =
        json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "0.0.0.0", "protocol": "TCP"}]);
    let pod = sandbox_pod(&sb, "").unwrap();
    assert_eq!(pod["spec"]["containers"][0]["name"], "sandbox");
    assert_eq!(pod["spec"]["containers"][0]["ports"], port);
    assert_eq!(baseline(&pod), ["hostPorts"]);
    let pod = container_pod(&sb, &busybox(), "").unwrap();
    assert_eq!(pod["spec"]["containers"][0]["ports"], port);
    assert_eq!(baseline(&pod), ["hostPorts"]);

    let mut sb = sandbox();
    sb.linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .privileged = true;
    let pod = sandbox_pod(&sb, "").unwrap();
    assert_eq!(baseline(&pod), ["privileged"]);
}

#[test]
fn devices_and_cdi_are_privileged() {
    let mut c = busybox();
    c.devices.push(Device {
        container_path: "/dev/sda".into(),
        host_path: "/dev/sda".into(),
        permissions: "rwm".into(),
    });
    let pod = container_pod(&sandbox(), &c, "").unwrap();
    assert_eq!(baseline(&pod), ["privileged"]);
    assert_eq!(
        pod["metadata"]["annotations"]["portcullis.dev/devices"],
        "/dev/sda"
    );
    let mut c = busybox();
    c.devices.push(Device {
        container_path: "/dev/null".into(),
        host_path: "/dev/null".into(),
        permissions: "rw".into(),
    });
    assert!(baseline(&container_pod(&sandbox(), &c, "").unwrap()).is_empty());
    let mut c = busybox();
    c.cdi_devices.push(CdiDevice {
        name: "vendor.com/gpu=0".into(),
    });
    assert_eq!(
        baseline(&container_pod(&sandbox(), &c, "").unwrap()),
        ["privileged"]
    );
    let mut c = busybox();
    c.annotations
        .insert("cdi.k8s.io/x".into(), "vendor.com/gpu=0".into());
    assert_eq!(
        baseline(&container_pod(&sandbox(), &c, "").unwrap()),
        ["privileged"]
    );
    let mut c = busybox();
    c.log_path = "../../../etc/cron.d/x".into();
    assert_eq!(
        baseline(&container_pod(&sandbox(), &c, "").unwrap()),
        ["privileged"]
    );
}

#[test]
fn every_enum_value_is_handled() {
    for m in [
        NamespaceMode::Pod,
        NamespaceMode::Container,
        NamespaceMode::Node,
        NamespaceMode::Target,
    ] {
        let c = with_sc(|s| {
            s.namespace_options = Some(NamespaceOption {
                target_id: "c0".into(),
                ..namespaces(NamespaceMode::Pod, m)
            })
        });
        let pod = container_pod(&sandbox(), &c, "").unwrap();
        let spec = &pod["spec"];
        assert_eq!(spec["hostPID"], m == NamespaceMode::Node, "{m:?}");
        let shared = matches!(m, NamespaceMode::Pod | NamespaceMode::Target);
        assert_eq!(spec["shareProcessNamespace"] == true, shared, "{m:?}");
        let net = with_sc(|s| s.namespace_options = Some(namespaces(m, NamespaceMode::Container)));
        match container_pod(&sandbox(), &net, "") {
            Ok(p) => assert_eq!(p["spec"]["hostNetwork"], m == NamespaceMode::Node),
            Err(e) => {
                assert_eq!(m, NamespaceMode::Target);
                assert!(e.to_string().contains("namespace_options.network"), "{e}");
            }
        }
        let mut sb = sandbox();
        let sc = sb
            .linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap();
        sc.namespace_options.as_mut().unwrap().userns_options = Some(UserNamespace {
            mode: m as i32,
            uids: vec![IdMapping {
                host_id: 65536,
                container_id: 0,
                length: 65536,
            }],
            gids: vec![IdMapping {
                host_id: 65536,
                container_id: 0,
                length: 65536,
            }],
        });
        match sandbox_pod(&sb, "") {
            Ok(p) => assert_eq!(p["spec"]["hostUsers"], m == NamespaceMode::Node, "{m:?}"),
            Err(e) => assert!(e.to_string().contains("userns_options.mode"), "{e}"),
        }
    }
    let e = container_pod(
        &sandbox(),
        &with_sc(|s| s.namespace_options.as_mut().unwrap().pid = 9),
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("namespace_options.pid"), "{e}");

    for (p, want) in [
        (MountPropagation::PropagationPrivate, None),
        (
            MountPropagation::PropagationHostToContainer,
            Some("HostToContainer"),
        ),
        (
            MountPropagation::PropagationBidirectional,
            Some("Bidirectional"),
        ),
    ] {
        let mut c = busybox();
        c.mounts = vec![Mount {
            container_path: "/data".into(),
            host_path: "/srv".into(),
            propagation: p as i32,
            ..Default::default()
        }];
        let pod = container_pod(&sandbox(), &c, "").unwrap();
        let vm = &pod["spec"]["containers"][0]["volumeMounts"][0];
        assert_eq!(vm["mountPropagation"].as_str(), want);
        let privileged = &pod["spec"]["containers"][0]["securityContext"]["privileged"];
        assert_eq!(
            privileged,
            &json!(p == MountPropagation::PropagationBidirectional)
        );
    }

    for (t, want) in [
        (
            ProfileType::RuntimeDefault,
            json!({"type": "RuntimeDefault"}),
        ),
        (ProfileType::Unconfined, json!({"type": "Unconfined"})),
        (
            ProfileType::Localhost,
            json!({"type": "Localhost", "localhostProfile": "/p.json"}),
        ),
    ] {
        let sp = SecurityProfile {
            profile_type: t as i32,
            localhost_ref: "/p.json".into(),
        };
        let sp = if t == ProfileType::Localhost {
            sp
        } else {
            profile(t)
        };
        let c = with_sc(|s| {
            s.seccomp = Some(sp.clone());
            s.apparmor = Some(sp.clone());
        });
        let pod = container_pod(&sandbox(), &c, "").unwrap();
        let sc = &pod["spec"]["containers"][0]["securityContext"];
        // Unconfined seccomp is the Pod without a profile (security::seccomp); AppArmor's
        // Unconfined is shown as it is.
        let seccomp = if t == ProfileType::Unconfined {
            Value::Null
        } else {
            want.clone()
        };
        assert_eq!(sc["seccompProfile"], seccomp);
        let mut aa = want.clone();
        if t == ProfileType::Localhost {
            aa["localhostProfile"] = "/p.json".into();
        }
        assert_eq!(sc["appArmorProfile"], aa);
    }
    let c = with_sc(|s| {
        s.seccomp = Some(SecurityProfile {
            profile_type: 7,
            localhost_ref: String::new(),
        })
    });
    let e = container_pod(&sandbox(), &c, "").unwrap_err();
    assert!(e.to_string().contains("seccomp.profile_type"), "{e}");
}

#[test]
fn decode_refuses_unknown_fields() {
    let mut req = RunPodSandboxRequest {
        config: Some(sandbox()),
        runtime_handler: "runc".into(),
    };
    req.config
        .as_mut()
        .unwrap()
        .labels
        .insert("a".into(), "b".into());
    let bytes = req.encode_to_vec();
    let back: RunPodSandboxRequest = decode(&bytes).unwrap();
    assert_eq!(back, req);
    // Field 99, varint 1: a field this build does not know.
    let mut extra = bytes.clone();
    extra.extend_from_slice(&[0x98, 0x06, 0x01]);
    let e = decode::<RunPodSandboxRequest>(&extra).unwrap_err();
    assert!(matches!(e, CriError::UnknownFields { .. }), "{e}");
    // An unknown field nested in the sandbox config.
    let mut cfg = sandbox().encode_to_vec();
    cfg.extend_from_slice(&[0xa0, 0x06, 0x01]);
    let mut nested = Vec::new();
    prost::encoding::bytes::encode(1, &cfg, &mut nested);
    assert!(decode::<RunPodSandboxRequest>(&nested).is_err());
    for junk in [
        &[][..],
        &[0xff],
        &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0x08, 0x80],
        &[0x12, 0x02, 0x0a],
        b"garbage bytes that are not protobuf",
    ] {
        let _ = decode::<RunPodSandboxRequest>(junk);
        let _ = decode::<CreateContainerRequest>(junk);
    }
}

#[test]
fn missing_names_and_odd_values_are_refused() {
    let mut sb = sandbox();
    sb.metadata = None;
    let e = sandbox_pod(&sb, "").unwrap_err();
    assert!(e.to_string().contains("config.metadata.name"), "{e}");
    let mut sb = sandbox();
    sb.port_mappings[0].host_port = -1;
    assert!(sandbox_pod(&sb, "").is_err());
    let mut c = busybox();
    c.metadata = None;
    assert!(container_pod(&sandbox(), &c, "").is_err());
    let c = ContainerConfig {
        metadata: busybox().metadata,
        ..Default::default()
    };
    let pod = container_pod(&sandbox(), &c, "").unwrap();
    assert_eq!(pod["spec"]["hostUsers"], true, "no user namespace options");
    let _ = sandbox_pod(&PodSandboxConfig::default(), "");
}
