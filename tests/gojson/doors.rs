//! Each door that reads spec bytes uses `convert::strict`: the proxy (containerd
//! `Containers/Create`, `Tasks/Exec`), the bundle reader of the OCI hook and the runc wrapper,
//! and, through the real binary, `check`, `hook` and `runc`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use portcullis::convert::strict::Shape;
use serde_json::json;

use super::spec_with;

/// containerd `Containers/Create` and `Tasks/Exec`: the proxy parses with the strict parser.
#[test]
fn the_proxy_refuses_duplicated_keys() {
    use portcullis::proxy::grpc::Code;
    use portcullis::proxy::record::{self, SPEC_TYPE_URL};
    let any = prost_types::Any {
        type_url: SPEC_TYPE_URL.into(),
        value: spec_with(r#","PROCESS":{"user":{"uid":0}}"#).into_bytes(),
    };
    let e = record::decode_spec(Some(&any), "container \"c\"").unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.message.contains("`process` twice (`process`, `PROCESS`)"),
        "{}",
        e.message
    );
    let e =
        record::parse_json_object(br#"{"user":{},"USER":{}}"#, "exec", Shape::Process).unwrap_err();
    assert!(e.message.contains("`process.user` twice"), "{}", e.message);
    let e = record::decode_spec(
        Some(&prost_types::Any {
            type_url: SPEC_TYPE_URL.into(),
            value: b"{not json".to_vec(),
        }),
        "c",
    )
    .unwrap_err();
    assert!(
        e.message.contains("spec is not valid JSON"),
        "{}",
        e.message
    );
}

/// The OCI hook and `portcullis runc` read `<bundle>/config.json` with the strict parser.
#[test]
fn the_bundle_reader_refuses_duplicated_keys() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gojson-bundle.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        spec_with(r#","mounts":[],"Mounts":[]"#),
    )
    .unwrap();
    let e = portcullis::hook::request::read_spec(&dir)
        .unwrap_err()
        .to_string();
    std::fs::write(dir.join("config.json"), spec_with("")).unwrap();
    let ok = portcullis::hook::request::read_spec(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        e.contains("config.json: OCI runtime spec has the key `mounts`"),
        "{e}"
    );
    assert!(ok.is_ok(), "{ok:?}");
}

/// The real binary: `portcullis check`, the OCI hook and the runc wrapper refuse a bundle
/// whose `config.json` repeats a key under Go's fold, naming it.
#[test]
fn the_binary_refuses_duplicated_keys_at_every_bundle_door() {
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gojson-doors.{}", std::process::id()));
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "").unwrap();
    let spec = bundle.join("config.json");
    std::fs::write(
        &spec,
        spec_with(",\"proce\u{17F}s\":{\"user\":{\"uid\":0}}"),
    )
    .unwrap();
    let named = "has the key `process` twice (`process`, `proce\u{17F}s`)";

    let out = Command::new(bin)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .arg(&spec)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "check: {stderr}");
    assert!(stderr.contains(named), "check: {stderr}");

    let state = json!({"ociVersion": "1.0.2", "id": "x", "status": "creating",
        "pid": std::process::id(), "bundle": bundle});
    let mut child = Command::new(bin)
        .arg("hook")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(state.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "hook: {stderr}");
    assert!(stderr.contains(named), "hook: {stderr}");

    // `--runc /bin/true`: were the call let through, it would succeed.
    let out = Command::new(bin)
        .arg("runc")
        .arg("--config")
        .arg(&config)
        .arg("--runc")
        .arg("/bin/true")
        .arg("--")
        .arg("create")
        .arg("--bundle")
        .arg(&bundle)
        .arg("x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "runc: {stderr}");
    assert!(stderr.contains(named), "runc: {stderr}");

    // The same bundle without the second spelling is admitted by each.
    std::fs::write(&spec, spec_with("")).unwrap();
    let out = Command::new(bin)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin)
        .arg("runc")
        .arg("--config")
        .arg(&config)
        .arg("--runc")
        .arg("/bin/true")
        .arg("--")
        .arg("create")
        .arg("--bundle")
        .arg(&bundle)
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
