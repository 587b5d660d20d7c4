//! [`ContainerRecord`]s from files: a `ctr containers info` view of a containerd container,
//! or an OCI bundle's `config.json` (what an OCI hook or `portcullis check` reads).

use std::collections::BTreeMap;

use serde_json::Value;

use super::ContainerRecord;

/// Spec annotations runtimes use for the image a container runs.
const IMAGE_ANNOTATIONS: [&str; 3] = [
    "io.kubernetes.cri.image-name",
    "io.kubernetes.cri-o.ImageName",
    "org.opencontainers.image.ref.name",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("{0} is missing or not a string")]
    Missing(&'static str),
    #[error("{0} is not a JSON object")]
    NotObject(&'static str),
}

fn string_map(v: &Value, field: &'static str) -> Result<BTreeMap<String, String>, RecordError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => Ok(m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect()),
        _ => Err(RecordError::NotObject(field)),
    }
}

/// A container as `ctr containers info` prints it (`ID`, `Labels`, `Image`,
/// `Runtime.Name`, `Spec`).
pub fn from_container_info(namespace: &str, info: &Value) -> Result<ContainerRecord, RecordError> {
    let id = info["ID"].as_str().ok_or(RecordError::Missing("ID"))?;
    if !info["Spec"].is_object() {
        return Err(RecordError::NotObject("Spec"));
    }
    Ok(ContainerRecord {
        namespace: namespace.to_owned(),
        id: id.to_owned(),
        labels: string_map(&info["Labels"], "Labels")?,
        image: info["Image"].as_str().unwrap_or_default().to_owned(),
        runtime: info["Runtime"]["Name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        spec: info["Spec"].clone(),
        ..Default::default()
    })
}

/// An OCI bundle's `config.json`; the image comes from the spec annotations runtimes set.
pub fn from_oci_config(
    namespace: &str,
    id: &str,
    spec: &Value,
) -> Result<ContainerRecord, RecordError> {
    if !spec.is_object() {
        return Err(RecordError::NotObject("config.json"));
    }
    let image = IMAGE_ANNOTATIONS
        .iter()
        .find_map(|k| spec["annotations"][k].as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(ContainerRecord {
        namespace: namespace.to_owned(),
        id: id.to_owned(),
        image,
        spec: spec.clone(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_container_info_and_oci_config() {
        let info = json!({"ID": "c1", "Labels": {"a": "b"}, "Image": "busybox:1.36",
            "Runtime": {"Name": "io.containerd.runc.v2"}, "Spec": {"ociVersion": "1.0.2"}});
        let r = from_container_info("default", &info).unwrap();
        assert_eq!(
            (r.id.as_str(), r.image.as_str(), r.runtime.as_str()),
            ("c1", "busybox:1.36", "io.containerd.runc.v2")
        );
        assert_eq!(r.labels["a"], "b");
        assert_eq!(
            from_container_info("d", &json!({"Spec": {}})),
            Err(RecordError::Missing("ID"))
        );
        assert_eq!(
            from_container_info("d", &json!({"ID": "x", "Spec": 1})),
            Err(RecordError::NotObject("Spec"))
        );

        let config = json!({"ociVersion": "1.0.2", "annotations": {"io.kubernetes.cri-o.ImageName": "quay.io/x:1"}});
        assert_eq!(
            from_oci_config("podman", "p", &config).unwrap().image,
            "quay.io/x:1"
        );
        assert!(from_oci_config("podman", "p", &json!([])).is_err());
    }
}
