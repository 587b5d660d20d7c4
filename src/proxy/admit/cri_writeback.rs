//! A policy's change to the Pod, written back into the CRI request that described it, for
//! the fields a kubelet request carries one to one: the runtime handler at
//! `RunPodSandbox` (`spec.runtimeClassName`), and the container's image, command, args,
//! env and working directory at `CreateContainer`. Any other change refuses the call,
//! naming the paths: the door never forwards a request that differs from what the
//! policies approved.
//!
//! The request is re-encoded with the v1 types; a v1alpha2 request comes out as the same
//! bytes v1alpha2 reads, since the unknown-field check let nothing be dropped on decoding.

use k8s_cri::v1 as api;
use prost::Message;
use serde_json::Value;

use super::{CriCall, PodCall};
use crate::convert::cri;

const SANDBOX_FIELDS: &[&str] = &["/spec/runtimeClassName"];
const CONTAINER_FIELDS: &[&str] = &[
    "/spec/containers/0/image",
    "/spec/containers/0/command",
    "/spec/containers/0/args",
    "/spec/containers/0/env",
    "/spec/containers/0/workingDir",
];

/// `message` with the changes from `before` to `after` written in, or why it cannot be.
pub(super) fn write_back(
    call: CriCall,
    message: &[u8],
    before: &Value,
    after: &Value,
) -> Result<Vec<u8>, String> {
    let changed: Vec<String> = json_patch::diff(before, after)
        .0
        .iter()
        .map(|op| op.path().to_string())
        .collect();
    let writable = match call {
        CriCall::Pod(PodCall::RunPodSandbox) => SANDBOX_FIELDS,
        CriCall::Pod(PodCall::CreateContainer) => CONTAINER_FIELDS,
        CriCall::Pod(PodCall::PullImage) | CriCall::Enter(_) | CriCall::Resize => &[],
    };
    let unwritable: Vec<&String> = changed
        .iter()
        .filter(|path| !writable.iter().any(|w| within(path, w)))
        .collect();
    if !unwritable.is_empty() {
        let paths: Vec<&str> = unwritable.iter().map(|p| p.as_str()).collect();
        return Err(format!(
            "policies changed {}, which the CRI door cannot write back into {call} \
             (it writes {}); make the change in the Pod spec, or set the policy to warn",
            paths.join(", "),
            if writable.is_empty() {
                "nothing".to_owned()
            } else {
                writable.join(", ")
            }
        ));
    }
    let decoded = |e: cri::CriError| e.to_string();
    match call {
        CriCall::Pod(PodCall::RunPodSandbox) => {
            let mut req: api::RunPodSandboxRequest = cri::decode(message).map_err(decoded)?;
            req.runtime_handler = text(&after["spec"]["runtimeClassName"], "runtimeClassName")?;
            Ok(req.encode_to_vec())
        }
        CriCall::Pod(PodCall::CreateContainer) => {
            let mut req: api::CreateContainerRequest = cri::decode(message).map_err(decoded)?;
            let config = req.config.get_or_insert_with(Default::default);
            let at = |pod: &Value| pod["spec"]["containers"][0].clone();
            container(config, &at(before), &at(after))?;
            Ok(req.encode_to_vec())
        }
        CriCall::Pod(PodCall::PullImage) | CriCall::Enter(_) | CriCall::Resize => {
            Err(format!("{call} carries no Pod to change"))
        }
    }
}

/// `path` is `field` or inside it.
fn within(path: &str, field: &str) -> bool {
    path == field || path.strip_prefix(field).is_some_and(|r| r.starts_with('/'))
}

/// Writes the fields that changed from `was` to `c`; the others stay as the kubelet sent
/// them (the image, for one, as its ID where the Pod shows a name).
fn container(config: &mut api::ContainerConfig, was: &Value, c: &Value) -> Result<(), String> {
    let changed = |field: &str| was[field] != c[field];
    if changed("image") {
        let image = config.image.get_or_insert_with(Default::default);
        image.image = text(&c["image"], "image")?;
        // The name the Pod now asks for is the policy's.
        image.user_specified_image = image.image.clone();
    }
    if changed("command") {
        config.command = texts(&c["command"], "command")?;
    }
    if changed("args") {
        config.args = texts(&c["args"], "args")?;
    }
    if changed("workingDir") {
        config.working_dir = text(&c["workingDir"], "workingDir")?;
    }
    if changed("env") {
        config.envs = envs(&c["env"])?;
    }
    Ok(())
}

fn envs(env: &Value) -> Result<Vec<api::KeyValue>, String> {
    Ok(match env {
        Value::Null => Vec::new(),
        Value::Array(env) => env
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if !e["valueFrom"].is_null() {
                    return Err(format!(
                        "env[{i}].valueFrom: the kubelet resolves references; a policy must set a value"
                    ));
                }
                Ok(api::KeyValue {
                    key: text(&e["name"], &format!("env[{i}].name"))?,
                    value: text(&e["value"], &format!("env[{i}].value"))?,
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("env is not a list".into()),
    })
}

/// A string field; absent is empty.
fn text(v: &Value, field: &str) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!("{field} is not a string")),
    }
}

fn texts(v: &Value, field: &str) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, s)| text(s, &format!("{field}[{i}]")))
            .collect(),
        _ => Err(format!("{field} is not a list")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn create(env: &[(&str, &str)]) -> Vec<u8> {
        api::CreateContainerRequest {
            pod_sandbox_id: "sb".into(),
            config: Some(api::ContainerConfig {
                image: Some(api::ImageSpec {
                    image: "sha256:abc".into(),
                    ..Default::default()
                }),
                command: vec!["sh".into()],
                envs: env
                    .iter()
                    .map(|(k, v)| api::KeyValue {
                        key: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                ..Default::default()
            }),
            sandbox_config: None,
        }
        .encode_to_vec()
    }

    fn pod(container: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [container]}})
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
        let bytes = write_back(
            CriCall::Pod(PodCall::CreateContainer),
            &create(&[("A", "1")]),
            &before,
            &after,
        )
        .unwrap();
        let req = api::CreateContainerRequest::decode(bytes.as_slice()).unwrap();
        let config = req.config.unwrap();
        assert_eq!(config.command, ["sh", "-c"]);
        assert_eq!(config.args, ["env"]);
        let env: Vec<(String, String)> =
            config.envs.into_iter().map(|e| (e.key, e.value)).collect();
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
        after["spec"]["containers"][0]["securityContext"] = json!({"privileged": false});
        after["metadata"]["labels"] = json!({"a": "b"});
        let e = write_back(
            CriCall::Pod(PodCall::CreateContainer),
            &create(&[]),
            &before,
            &after,
        )
        .unwrap_err();
        assert!(
            e.contains("/spec/containers/0/securityContext") && e.contains("/metadata/labels"),
            "{e}"
        );
        let mut from = pod(json!({"image": "x"}));
        from["spec"]["runtimeClassName"] = json!("kata");
        let e = write_back(
            CriCall::Pod(PodCall::RunPodSandbox),
            &[],
            &pod(json!({"image": "x"})),
            &pod(json!({"image": "y"})),
        )
        .unwrap_err();
        assert!(e.contains("/spec/containers/0/image"), "{e}");
        let mut with_ref = before.clone();
        with_ref["spec"]["containers"][0]["env"] =
            json!([{"name": "T", "valueFrom": {"secretKeyRef": {}}}]);
        let e = write_back(
            CriCall::Pod(PodCall::CreateContainer),
            &create(&[]),
            &before,
            &with_ref,
        )
        .unwrap_err();
        assert!(e.contains("valueFrom"), "{e}");
        assert!(within("/spec/containers/0/env/1", "/spec/containers/0/env"));
        assert!(!within(
            "/spec/containers/0/envFrom",
            "/spec/containers/0/env"
        ));
    }

    #[test]
    fn a_runtime_class_becomes_the_runtime_handler() {
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
    }
}
