//! The CRI door's write-back, as bytes: decode the request the Pod was read from, write the
//! policies' change into it (`convert::cri::write_sandbox` / `write_container`, where the
//! mapping and its refusals live) and encode it again. A call with no Pod to write into
//! (`PullImage`, the calls that enter a pod) refuses any change, naming the paths.
//!
//! The request is re-encoded with the v1 types; a v1alpha2 request comes out as the same
//! bytes v1alpha2 reads, since the unknown-field check let nothing be dropped on decoding.

use k8s_cri::v1 as api;
use prost::Message;
use serde_json::Value;

use super::{CriCall, PodCall};
use crate::convert::cri;

/// `message` with the changes from `before` to `after` written in, or why it cannot be.
pub(super) fn write_back(
    call: CriCall,
    message: &[u8],
    before: &Value,
    after: &Value,
) -> Result<Vec<u8>, String> {
    let decoded = |e: cri::CriError| e.to_string();
    let refused = |e: cri::WriteBackError| e.to_string();
    match call {
        CriCall::Pod(PodCall::RunPodSandbox) => {
            let mut req: api::RunPodSandboxRequest = cri::decode(message).map_err(decoded)?;
            cri::write_sandbox(&mut req, before, after).map_err(refused)?;
            Ok(req.encode_to_vec())
        }
        CriCall::Pod(PodCall::CreateContainer) => {
            let mut req: api::CreateContainerRequest = cri::decode(message).map_err(decoded)?;
            cri::write_container(&mut req, before, after).map_err(refused)?;
            Ok(req.encode_to_vec())
        }
        CriCall::Pod(PodCall::PullImage) | CriCall::Enter(_) | CriCall::Resize => {
            let paths: Vec<String> = json_patch::diff(before, after)
                .0
                .iter()
                .map(|op| format!("`{}`", op.path()))
                .collect();
            Err(format!(
                "policies changed {}, which the CRI door cannot write back into {call}: it \
                 carries no Pod; make the change in the Pod spec, or set the policy to warn",
                paths.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_request_is_decoded_written_and_encoded() {
        let req = api::RunPodSandboxRequest {
            config: Some(api::PodSandboxConfig::default()),
            runtime_handler: "legacy".into(),
        }
        .encode_to_vec();
        let before = json!({"spec": {"runtimeClassName": "legacy"}});
        let after = json!({"spec": {"runtimeClassName": "runc"}});
        let bytes =
            write_back(CriCall::Pod(PodCall::RunPodSandbox), &req, &before, &after).unwrap();
        let req = api::RunPodSandboxRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(req.runtime_handler, "runc");
        let e = write_back(CriCall::Pod(PodCall::PullImage), &[], &before, &after).unwrap_err();
        assert!(
            e.contains("`/spec/runtimeClassName`") && e.contains("PullImage"),
            "{e}"
        );
        let e = write_back(
            CriCall::Pod(PodCall::CreateContainer),
            &[0xff],
            &before,
            &after,
        )
        .unwrap_err();
        assert!(e.contains("not a valid CreateContainerRequest"), "{e}");
    }
}
