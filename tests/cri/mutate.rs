//! A MutatingAdmissionPolicy hardens what the kubelet sends, and the CRI door writes every
//! change back: the namespace enforces Pod Security `restricted`, the kubelet's pod runs
//! as root with the default capabilities and no seccomp profile, and the policy makes it
//! run as 1000:1000 with no capabilities, no privilege escalation and the runtime's
//! seccomp profile, labelled, under runtime class `runc`. Restricted admits the hardened
//! Pod, and the running container shows each change.

use std::time::Duration;

use crate::common::cri::{pod_config, uid, CriApi, CriWorld, Via, CONTAINER_EXITED};
use crate::common::IMAGE;

const HARDEN: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: harden}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{
          metadata: Object.metadata{labels: {"hardened": "yes"}},
          spec: Object.spec{
            runtimeClassName: "runc",
            containers: object.spec.containers.map(c, Object.spec.containers{name: c.name,
              securityContext: Object.spec.containers.securityContext{
                runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                seccompProfile: Object.spec.containers.securityContext.seccompProfile{type: "RuntimeDefault"}}})}}
  # capabilities.drop is an atomic list, which an apply configuration may not change
  # (as upstream): a JSON patch replaces it.
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        object.spec.containers.map(c, JSONPatch{op: "add",
          path: "/spec/containers/" + string(object.spec.containers.indexOf(c)) + "/securityContext/capabilities",
          value: Object.spec.containers.securityContext.capabilities{drop: ["ALL"]}})
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: harden}
spec: {policyName: harden}
"#;

const RESTRICTED: &str = "proxy:
  cri: admit
  kubelet: {rootDir: '{dir}/kubelet', podLogsDir: '{dir}/pods'}
namespaces:
  \"*\": {labels: {pod-security.kubernetes.io/enforce: restricted}}
";

#[test]
fn a_mutating_policy_hardens_the_kubelets_pod_and_every_change_lands() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("harden.yaml"), HARDEN).unwrap();
    let w = CriWorld::new(&format!(
        "{RESTRICTED}policyDir: {}\n",
        policies.path().display()
    ));
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} through the admitting proxy");
        let name = format!("hardened-{api:?}").to_lowercase();
        let pod = pod_config(w.dir.path(), &name, "default", &uid());
        let sandbox = w.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));

        // Written into RunPodSandbox: the label and the runtime handler.
        let direct = w.client(Via::Containerd, CriApi::V1);
        let status = w.expect(
            &format!("PodSandboxStatus {at}"),
            direct.pod_status(&sandbox),
        );
        assert_eq!(
            status.labels.get("hardened").map(String::as_str),
            Some("yes"),
            "{at}: {status:?}"
        );
        assert_eq!(status.runtime_handler, "runc", "{at}: {status:?}");

        let command = [
            "sh",
            "-c",
            "echo ids=$(id -u):$(id -g); grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
        ];
        let config = c.container_config(&pod, "main", IMAGE, &command);
        let config = w.expect(&format!("the container's config {at}"), config);
        let log = std::path::Path::new(&pod.log_directory).join(&config.log_path);
        let id = w.expect(
            &format!("CreateContainer {at}"),
            c.create_container(&sandbox, &pod, config),
        );
        w.expect(&format!("StartContainer {at}"), c.start(&id));
        let done = c.wait_state(&id, CONTAINER_EXITED, Duration::from_secs(30));
        w.expect(&format!("ContainerStatus {at}"), done);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for want in [
            "ids=1000:1000",
            "CapEff:\t0000000000000000",
            "NoNewPrivs:\t1",
            "Seccomp:\t2",
        ] {
            assert!(
                text.contains(want),
                "{at}: no {want:?} in {text:?}\n{}",
                w.logs()
            );
        }
        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );
    }
}
