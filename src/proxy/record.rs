//! containerd's `Container` message ↔ [`ContainerRecord`], and the runc options that say
//! which runc binary a task will use.

use std::collections::BTreeMap;

use containerd_client::services::v1::Container;
use prost::Message;
use prost_types::Any;
use serde_json::Value;

use super::grpc::{Code, Status};
use crate::convert::pod::ConvertError;
use crate::convert::strict::{self, Shape};
use crate::convert::ContainerRecord;

/// `typeurl` name containerd registers for `specs.Spec` (JSON-encoded).
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// `typeurl` name for `specs.Process`, the spec of `Tasks/Exec`.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// `containerd.runc.v1.Options` (core/runtime/v2/runc/options/oci.proto), every field.
#[derive(Clone, PartialEq, Message)]
pub struct RuncOptions {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    #[prost(string, tag = "6")]
    pub binary_name: String,
    #[prost(string, tag = "7")]
    pub root: String,
    #[prost(string, tag = "8")]
    pub criu_path: String,
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
    #[prost(string, tag = "10")]
    pub criu_image_path: String,
    #[prost(string, tag = "11")]
    pub criu_work_path: String,
    #[prost(string, tag = "12")]
    pub task_api_address: String,
    #[prost(string, tag = "13")]
    pub task_api_version: String,
}

/// `containerd.linux.runc.RuncOptions` (the v1 linux runtime's container options).
#[derive(Clone, PartialEq, Message)]
pub struct LegacyRuncOptions {
    #[prost(string, tag = "1")]
    pub runtime: String,
    #[prost(string, tag = "2")]
    pub runtime_root: String,
    #[prost(string, tag = "3")]
    pub criu_path: String,
    #[prost(bool, tag = "4")]
    pub systemd_cgroup: bool,
}

/// `containerd.linux.runc.CreateOptions` (task options of runc shims).
#[derive(Clone, PartialEq, Message)]
pub struct CreateOptions {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(bool, tag = "2")]
    pub open_tcp: bool,
    #[prost(bool, tag = "3")]
    pub external_unix_sockets: bool,
    #[prost(bool, tag = "4")]
    pub terminal: bool,
    #[prost(bool, tag = "5")]
    pub file_locks: bool,
    #[prost(string, repeated, tag = "6")]
    pub empty_namespaces: Vec<String>,
    #[prost(string, tag = "7")]
    pub cgroups_mode: String,
    #[prost(bool, tag = "8")]
    pub no_new_keyring: bool,
    #[prost(string, tag = "9")]
    pub shim_cgroup: String,
    #[prost(uint32, tag = "10")]
    pub io_uid: u32,
    #[prost(uint32, tag = "11")]
    pub io_gid: u32,
    #[prost(string, tag = "12")]
    pub criu_work_path: String,
    #[prost(string, tag = "13")]
    pub criu_image_path: String,
}

/// The runc binary named by runtime options, if they are runc's and name one.
pub fn runc_binary(options: Option<&Any>) -> Result<Option<String>, Status> {
    let Some(any) = options else { return Ok(None) };
    let invalid = |e: prost::DecodeError| {
        Status::new(
            Code::InvalidArgument,
            format!(
                "portcullis: runtime options of type {:?} do not decode: {e}",
                any.type_url
            ),
        )
    };
    let name = match any.type_url.trim_start_matches('/') {
        "containerd.runc.v1.Options" | "io.containerd.runc.v1.Options" => {
            RuncOptions::decode(any.value.as_slice())
                .map_err(invalid)?
                .binary_name
        }
        "containerd.linux.runc.RuncOptions" => {
            LegacyRuncOptions::decode(any.value.as_slice())
                .map_err(invalid)?
                .runtime
        }
        _ => return Ok(None),
    };
    Ok(Some(name).filter(|n| !n.is_empty()))
}

/// Decodes the OCI spec carried in an `Any`.
pub fn decode_spec(spec: Option<&Any>, what: &str) -> Result<Value, Status> {
    let any = spec.ok_or_else(|| {
        Status::new(
            Code::InvalidArgument,
            format!("portcullis: {what} carries no OCI spec"),
        )
    })?;
    if any.type_url != SPEC_TYPE_URL {
        return Err(Status::new(
            Code::InvalidArgument,
            format!("portcullis: {what} spec has type {:?}; only {SPEC_TYPE_URL:?} (JSON) can be admitted", any.type_url),
        ));
    }
    parse_json_object(&any.value, what, Shape::Spec)
}

/// A spec or exec process as runc will read it (`strict`: no key twice under Go's fold).
pub fn parse_json_object(bytes: &[u8], what: &str, shape: Shape) -> Result<Value, Status> {
    match strict::parse(bytes, shape) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Status::new(
            Code::InvalidArgument,
            format!("portcullis: {what} spec is JSON but not an object"),
        )),
        Err(ConvertError::NotJson(e)) => Err(Status::new(
            Code::InvalidArgument,
            format!("portcullis: {what} spec is not valid JSON: {e}"),
        )),
        Err(e) => Err(Status::new(
            Code::InvalidArgument,
            format!("portcullis: {what}: {e}"),
        )),
    }
}

/// The record of a container message in `namespace`.
pub fn to_record(namespace: &str, c: &Container) -> Result<ContainerRecord, Status> {
    let what = format!("container {:?}", c.id);
    let spec = decode_spec(c.spec.as_ref(), &what)?;
    Ok(ContainerRecord {
        namespace: namespace.to_owned(),
        id: c.id.clone(),
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        image: c.image.clone(),
        runtime: c
            .runtime
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        spec,
        task: None,
        // Resolved by the door (`Proxy::record`, convert::nsresolve::resolve): I/O stays at
        // the edge; a path left unresolved is refused by the view.
        ns_paths: BTreeMap::new(),
        hook_exes: BTreeMap::new(),
    })
}

/// Writes what a record can change back into the message. The image is written only when
/// it differs from the one the message came with, so an image that was only *resolved*
/// for policies (dockerd sends none) is not stored.
pub fn apply_record(
    c: &mut Container,
    before: &ContainerRecord,
    after: &ContainerRecord,
) -> Result<(), Status> {
    if before.labels != after.labels {
        c.labels = after
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    if before.image != after.image {
        c.image = after.image.clone();
    }
    if before.runtime != after.runtime {
        let runtime = c.runtime.get_or_insert_with(Default::default);
        runtime.name = after.runtime.clone();
        // Options belong to the old runtime's shim; a different shim must not get them.
        runtime.options = None;
    }
    if before.spec != after.spec {
        let value = serde_json::to_vec(&after.spec).map_err(|e| {
            Status::new(
                Code::Internal,
                format!("portcullis: re-encoding the mutated spec: {e}"),
            )
        })?;
        c.spec = Some(Any {
            type_url: SPEC_TYPE_URL.to_owned(),
            value,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_runc_binary_from_both_option_types() {
        let opts = RuncOptions {
            binary_name: "/usr/local/bin/portcullis-runc".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: opts.encode_to_vec(),
        };
        assert_eq!(
            runc_binary(Some(&any)).unwrap().as_deref(),
            Some("/usr/local/bin/portcullis-runc")
        );
        let legacy = Any {
            type_url: "containerd.linux.runc.RuncOptions".into(),
            value: LegacyRuncOptions {
                runtime: "crun".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        };
        assert_eq!(runc_binary(Some(&legacy)).unwrap().as_deref(), Some("crun"));
        let garbage = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![0xff, 0xff],
        };
        assert!(runc_binary(Some(&garbage)).is_err());
        assert_eq!(runc_binary(None).unwrap(), None);
    }

    #[test]
    fn rejects_foreign_and_broken_specs() {
        let any = |t: &str, v: &[u8]| Any {
            type_url: t.into(),
            value: v.to_vec(),
        };
        assert!(decode_spec(None, "c").is_err());
        assert!(decode_spec(Some(&any("types.example/Other", b"{}")), "c").is_err());
        assert!(decode_spec(Some(&any(SPEC_TYPE_URL, b"{not json")), "c").is_err());
        assert!(decode_spec(Some(&any(SPEC_TYPE_URL, b"[1]")), "c").is_err());
        assert!(decode_spec(
            Some(&any(SPEC_TYPE_URL, b"{\"ociVersion\":\"1.0.2\"}")),
            "c"
        )
        .is_ok());
    }
}
