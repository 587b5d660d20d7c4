//! `UpdateContainerResources` through the CRI door: an UPDATE of `pods/resize` with the
//! Pod the container was created for as `oldObject`, judged by a ValidatingAdmissionPolicy
//! on `pods/resize`; the new limit is checked where it lands, in the container's memory
//! cgroup.

use std::path::PathBuf;

use k8s_cri::v1 as cri;
use tonic::Code;

use crate::common::cri::{CriApi, CriWorld, Via};
use crate::ADMIT_BASELINE;

const MIB: i64 = 1 << 20;

/// At most 1Gi and at most twice the limit in force, and only as a resize of the pod the
/// container belongs to: `oldObject` is that Pod as it runs, and the request names it.
const BOUNDED: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: resize-bound}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [pods/resize]}]
  validations:
  - expression: "request.subResource == 'resize' && request.namespace == 'team' && oldObject.metadata.name == request.name && object.spec.containers[0].name == 'sleeper'"
    message: not a resize of team's pod
  - expression: "quantity(object.spec.containers[0].resources.limits.memory).compareTo(quantity('1Gi')) <= 0"
    message: at most 1Gi
  - expression: "!has(oldObject.spec.containers[0].resources) || quantity(object.spec.containers[0].resources.limits.memory).asInteger() <= 2 * quantity(oldObject.spec.containers[0].resources.limits.memory).asInteger()"
    message: at most twice the limit in force
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: resize-bound}
spec: {policyName: resize-bound, validationActions: [Deny]}
"#;

fn memory(bytes: i64) -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_shares: 2,
        memory_limit_in_bytes: bytes,
        ..Default::default()
    }
}

/// The memory limit the kernel holds for container `id` (cgroup v1 or v2, cgroupfs
/// driver: containerd's CRI plugin puts it at `/k8s.io/<id>`).
fn kernel_limit(id: &str) -> String {
    let v1 = PathBuf::from(format!(
        "/sys/fs/cgroup/memory/k8s.io/{id}/memory.limit_in_bytes"
    ));
    let v2 = PathBuf::from(format!("/sys/fs/cgroup/k8s.io/{id}/memory.max"));
    let file = if v1.exists() { v1 } else { v2 };
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_owned()
}

#[test]
fn the_cri_door_admits_resizes_as_updates_of_pods_resize() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("resize.yaml"), BOUNDED).unwrap();
    let w = CriWorld::new(&format!(
        "{ADMIT_BASELINE}policyDir: {}\n",
        policies.path().display()
    ));
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} through the admitting proxy");
        let (sandbox, id) = w.running_container(&c, "resized", "team", &at);

        let resize = |mib: i64| c.update_resources(&id, memory(mib * MIB));
        w.expect(&format!("resize to 128Mi {at}"), resize(128));
        assert_eq!(kernel_limit(&id), (128 * MIB).to_string(), "{at}");
        w.refused(
            &format!("resize from 128Mi to 512Mi {at}"),
            resize(512),
            Code::PermissionDenied,
            &[
                "at most twice the limit in force",
                "ValidatingAdmissionPolicy 'resize-bound'",
            ],
        );
        assert_eq!(
            kernel_limit(&id),
            (128 * MIB).to_string(),
            "{at}: unchanged"
        );
        w.expect(&format!("resize from 128Mi to 256Mi {at}"), resize(256));
        w.expect(&format!("resize from 256Mi to 512Mi {at}"), resize(512));
        w.refused(
            &format!("resize from 512Mi to 2Gi {at}"),
            resize(2048),
            Code::PermissionDenied,
            &["at most 1Gi"],
        );
        assert_eq!(kernel_limit(&id), (512 * MIB).to_string(), "{at}");

        // A container containerd does not know: its answer, passed on.
        w.refused(
            &format!("UpdateContainerResources of no container {at}"),
            c.update_resources("no-such-container", memory(128 * MIB)),
            Code::NotFound,
            &[],
        );
        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );
    }
}
