//! Image signatures at the CRI door, with containerd's real CRI plugin pulling from a real
//! registry (plain HTTP through the plugin's `certs.d` hosts file): a policy requiring a
//! cosign key in namespaces labelled `tier: prod`. The kubelet's `PullImage` of the unsigned
//! image is refused for a prod pod and done for a pod elsewhere; its `CreateContainer` is
//! refused in prod (judged by the digest containerd recorded at the pull) and runs
//! elsewhere; the signed image is pulled and runs in prod.

use std::time::Duration;

use tonic::Code;

use crate::common::cosign::{amend_policy, policy_config, Key, PROD_ONLY};
use crate::common::cri::{pod_config, uid, CriApi, CriWorld, Via, CONTAINER_EXITED};
use crate::common::registry::{Registry, Transport};
use crate::ADMIT_BASELINE;

#[test]
fn the_kubelets_pulls_and_containers_are_verified_in_the_pods_namespace() {
    let registry = Registry::start(Transport::Http);
    let key = Key::new(1);
    let signed = registry.push_busybox_variant("apps/web:1", "cri-signed");
    registry.push_busybox_variant("apps/web:2", "cri-unsigned");
    key.sign(&registry, "apps/web", &signed);
    let policies = tempfile::tempdir().unwrap();
    let trust = policy_config(policies.path(), &registry.host(), &key, "Fail");
    amend_policy(policies.path(), PROD_ONLY);
    let w = CriWorld::new(&format!(
        "{ADMIT_BASELINE}  prod: {{labels: {{tier: prod, pod-security.kubernetes.io/enforce: baseline}}}}\n{trust}"
    ));
    // containerd's CRI plugin speaks plain HTTP to this registry.
    let hosts = w.dir.path().join("certs.d").join(registry.host());
    std::fs::create_dir_all(&hosts).unwrap();
    std::fs::write(
        hosts.join("hosts.toml"),
        format!(
            "server = \"http://{h}\"\n[host.\"http://{h}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            h = registry.host()
        ),
    )
    .unwrap();

    let c = w.client(Via::Proxy, CriApi::V1);
    let prod = pod_config(w.dir.path(), "web", "prod", &uid());
    let team = pod_config(w.dir.path(), "web", "team", &uid());
    let unsigned = registry.reference("apps/web:2");
    let signed_ref = registry.reference("apps/web:1");

    w.refused(
        "PullImage of the unsigned image for a prod pod",
        c.pull_image(&unsigned, Some(&prod)),
        Code::PermissionDenied,
        &["image-signatures", "signed-apps", "is not signed"],
    );
    w.expect(
        "PullImage of the unsigned image for a team pod",
        c.pull_image(&unsigned, Some(&team)),
    );
    w.expect(
        "PullImage of the signed image for a prod pod",
        c.pull_image(&signed_ref, Some(&prod)),
    );

    // Now on the node: the unsigned image cannot start in prod, whoever pulled it.
    let run = |pod: &k8s_cri::v1::PodSandboxConfig, image: &str| {
        let sandbox = w.expect("RunPodSandbox", c.run_pod(pod));
        let config = w.expect(
            "the container's config",
            c.container_config(pod, "main", image, &["true"]),
        );
        let created = c.create_container(&sandbox, pod, config);
        (sandbox, created)
    };
    let (sandbox, created) = run(&prod, &unsigned);
    w.refused(
        "CreateContainer of the unsigned image in prod",
        created,
        Code::PermissionDenied,
        &["signed-apps", "is not signed"],
    );
    w.expect("Stop/RemovePodSandbox", c.stop_and_remove_pod(&sandbox));
    for (pod, image) in [(&team, &unsigned), (&prod, &signed_ref)] {
        let (sandbox, created) = run(pod, image);
        let id = w.expect(&format!("CreateContainer of {image}"), created);
        w.expect("StartContainer", c.start(&id));
        let done = c.wait_state(&id, CONTAINER_EXITED, Duration::from_secs(30));
        w.expect("ContainerStatus", done);
        w.expect("Stop/RemovePodSandbox", c.stop_and_remove_pod(&sandbox));
    }
}
