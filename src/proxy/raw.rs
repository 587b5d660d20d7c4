//! `conversion: raw`: the containerd request itself as the admission object, in proto3
//! JSON field names, with the OCI spec decoded to a JSON object rather than base64. Other
//! `Any` fields are `{"typeUrl": ..., "value": <base64>}`. A mutated raw object is decoded
//! back into the message.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use containerd_client::services::v1::{container::Runtime, Container};
use prost_types::{Any, Timestamp};
use serde_json::{json, Map, Value};

use super::grpc::{Code, Status};
use super::record::{self, SPEC_TYPE_URL};

pub fn any_to_json(any: &Any) -> Value {
    json!({"typeUrl": any.type_url, "value": B64.encode(&any.value)})
}

/// A container message as JSON; the spec is decoded (it was validated by the caller).
pub fn container_to_json(c: &Container, spec: &Value) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(c.id));
    let labels: Map<String, Value> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    out.insert("labels".into(), Value::Object(labels));
    out.insert("image".into(), json!(c.image));
    if let Some(r) = &c.runtime {
        let mut runtime = Map::new();
        runtime.insert("name".into(), json!(r.name));
        if let Some(o) = &r.options {
            runtime.insert("options".into(), any_to_json(o));
        }
        out.insert("runtime".into(), Value::Object(runtime));
    }
    out.insert("spec".into(), spec.clone());
    out.insert("snapshotter".into(), json!(c.snapshotter));
    out.insert("snapshotKey".into(), json!(c.snapshot_key));
    if let Some(t) = &c.created_at {
        out.insert("createdAt".into(), json!(t.to_string()));
    }
    if let Some(t) = &c.updated_at {
        out.insert("updatedAt".into(), json!(t.to_string()));
    }
    if !c.extensions.is_empty() {
        let ext: Map<String, Value> = c
            .extensions
            .iter()
            .map(|(k, v)| (k.clone(), any_to_json(v)))
            .collect();
        out.insert("extensions".into(), Value::Object(ext));
    }
    if !c.sandbox.is_empty() {
        out.insert("sandbox".into(), json!(c.sandbox));
    }
    Value::Object(out)
}

fn bad(field: &str, why: &str) -> Status {
    Status::new(
        Code::PermissionDenied,
        format!("portcullis: the mutated raw object's {field} {why}; the request is refused"),
    )
}

fn string(v: &Value, field: &str) -> Result<String, Status> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(field, "is not a string")),
    }
}

fn any_from_json(v: &Value, field: &str) -> Result<Any, Status> {
    let type_url =
        string(v, "typeUrl").map_err(|_| bad(field, "has a typeUrl that is not a string"))?;
    let value = B64
        .decode(string(v, "value").map_err(|_| bad(field, "has a value that is not a string"))?)
        .map_err(|_| bad(field, "has a value that is not base64"))?;
    Ok(Any { type_url, value })
}

fn timestamp(v: &Value, field: &str) -> Result<Option<Timestamp>, Status> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(field, "is not an RFC 3339 time")),
        Some(_) => Err(bad(field, "is not a string")),
    }
}

/// Decodes a (mutated) container object back into a message.
pub fn container_from_json(v: &Value) -> Result<Container, Status> {
    if !v.is_object() {
        return Err(bad("container", "is not an object"));
    }
    let labels = match v.get("labels") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| bad(&format!("container.labels.{k}"), "is not a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("container.labels", "is not an object")),
    };
    let runtime = match v.get("runtime") {
        None | Some(Value::Null) => None,
        Some(r) => Some(Runtime {
            name: string(r, "name")?,
            options: r
                .get("options")
                .filter(|o| !o.is_null())
                .map(|o| any_from_json(o, "container.runtime.options"))
                .transpose()?,
        }),
    };
    let spec = match v.get("spec") {
        Some(s @ Value::Object(_)) => Some(Any {
            type_url: SPEC_TYPE_URL.to_owned(),
            value: serde_json::to_vec(s).map_err(|e| bad("container.spec", &e.to_string()))?,
        }),
        _ => return Err(bad("container.spec", "is missing or not an object")),
    };
    let extensions = match v.get("extensions") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, e)| {
                any_from_json(e, &format!("container.extensions.{k}")).map(|a| (k.clone(), a))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("container.extensions", "is not an object")),
    };
    Ok(Container {
        id: string(v, "id")?,
        labels,
        image: string(v, "image")?,
        runtime,
        spec,
        snapshotter: string(v, "snapshotter")?,
        snapshot_key: string(v, "snapshotKey")?,
        created_at: timestamp(v, "createdAt")?,
        updated_at: timestamp(v, "updatedAt")?,
        extensions,
        sandbox: string(v, "sandbox")?,
    })
}

/// The raw object of a container message: `{"container": ...}` as in `CreateContainerRequest`.
pub fn container_object(c: &Container) -> Result<Value, Status> {
    let spec = record::decode_spec(c.spec.as_ref(), &format!("container {:?}", c.id))?;
    Ok(json!({ "container": container_to_json(c, &spec) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_json_round_trips() {
        let c = Container {
            id: "c1".into(),
            labels: [("a".to_string(), "b".to_string())].into(),
            image: "docker.io/library/busybox:1.36".into(),
            runtime: Some(Runtime {
                name: "io.containerd.runc.v2".into(),
                options: Some(Any {
                    type_url: "containerd.runc.v1.Options".into(),
                    value: vec![0x32, 1, b'x'],
                }),
            }),
            spec: Some(Any {
                type_url: SPEC_TYPE_URL.into(),
                value: br#"{"ociVersion":"1.0.2","process":{"args":["sh"]}}"#.to_vec(),
            }),
            snapshotter: "overlayfs".into(),
            snapshot_key: "c1".into(),
            created_at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            updated_at: None,
            extensions: [(
                "ext".to_string(),
                Any {
                    type_url: "t".into(),
                    value: vec![1, 2],
                },
            )]
            .into(),
            sandbox: String::new(),
        };
        let v = container_object(&c).unwrap();
        assert_eq!(v["container"]["spec"]["process"]["args"][0], "sh");
        let back = container_from_json(&v["container"]).unwrap();
        let spec: Value = serde_json::from_slice(&back.spec.as_ref().unwrap().value).unwrap();
        assert_eq!(spec["process"]["args"][0], "sh");
        assert_eq!(
            Container {
                spec: c.spec.clone(),
                ..back
            },
            c
        );
    }

    #[test]
    fn malformed_objects_are_refused_with_the_field() {
        for (obj, field) in [
            (json!({"id": 1, "spec": {}}), "id"),
            (json!({"id": "x", "spec": "no"}), "container.spec"),
            (
                json!({"id": "x", "spec": {}, "labels": {"k": 1}}),
                "container.labels.k",
            ),
            (
                json!({"id": "x", "spec": {}, "runtime": {"name": "r", "options": {"typeUrl": "t", "value": "%%"}}}),
                "container.runtime.options",
            ),
            (
                json!({"id": "x", "spec": {}, "createdAt": "yesterday"}),
                "createdAt",
            ),
        ] {
            let err = container_from_json(&obj).unwrap_err();
            assert!(err.message.contains(field), "{obj}: {}", err.message);
        }
    }
}
