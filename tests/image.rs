//! The image door's ground (issue #13): a real registry (`tests/common/registry.rs`:
//! Debian's docker-registry on loopback, plain HTTP or TLS with a test CA) that images are
//! pushed to with skopeo and pulled from by the real `ctr` through the proxy. These tests
//! prove the harness itself — what the signature tests will stand on: a pull over each
//! transport lands in the private containerd and runs, the digest the harness returns is
//! the one containerd records, and the raw registry API (manifests, blobs, tags, deletes)
//! round-trips the bytes a signature is made of.

mod common;
#[path = "image/lineage.rs"]
mod lineage;
#[path = "image/notation.rs"]
mod notation;
#[path = "image/signatures.rs"]
mod signatures;
#[path = "image/verify_image.rs"]
mod verify_image;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &[
    "root",
    "containerd",
    "ctr",
    "runc",
    "busybox",
    "docker-registry",
    "skopeo",
    "openssl",
    "python3-bcrypt",
];

use common::registry::{sha256_digest, Registry, Transport};
use common::{ok, text, unique, World, IMAGE, IMAGE_LATEST};

/// The proxy's policy in these tests: the default one (no `:latest`).
const CONFIG: &str = "images: {disallowLatest: true}\n";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The digest containerd records for `reference` (`ctr images ls`: REF TYPE DIGEST ...).
fn recorded_digest(w: &World, reference: &str) -> String {
    let list = ok(w.ctr_direct(&["images", "ls"]));
    list.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&reference))
        .and_then(|cols| cols.get(2).map(|d| (*d).to_owned()))
        .unwrap_or_else(|| panic!("{reference} not in `ctr images ls`:\n{list}"))
}

/// `ctr images pull` of `reference` through the proxy with the registry's flags.
fn pull(w: &World, registry: &Registry, reference: &str) -> std::process::Output {
    let flags = registry.ctr_pull_flags();
    let mut args = vec!["images", "pull"];
    args.extend(flags.iter().map(String::as_str));
    args.push(reference);
    w.ctr(&args)
}

/// Pushes busybox to a `transport` registry, empties containerd of the imported copy (so
/// every blob must come from the registry), pulls and runs it through the proxy.
fn push_pull_run(transport: Transport) -> (Registry, World) {
    let registry = Registry::start(transport);
    let digest = registry.push_busybox("test/busybox:1");
    let w = World::new(CONFIG);
    // skopeo kept the digests: the registry holds the very image the harness imports.
    assert_eq!(digest, recorded_digest(&w, IMAGE));
    ok(w.ctr(&["images", "rm", "--sync", IMAGE, IMAGE_LATEST]));
    let content = ok(w.ctr_direct(&["content", "ls", "-q"]));
    assert!(content.trim().is_empty(), "content left: {content}");

    let reference = registry.reference("test/busybox:1");
    let out = pull(&w, &registry, &reference);
    assert!(
        out.status.success(),
        "pull {reference}: {}\n--- registry log ---\n{}\n{}",
        text(&out),
        registry.log(),
        w.logs()
    );
    assert_eq!(recorded_digest(&w, &reference), digest);
    // The blobs came from the registry: its access log has ctr's GETs (skopeo only HEADs
    // them and uploads elsewhere).
    let (manifest, _) = registry.manifest("test/busybox", &digest);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let get = format!("\"GET /v2/test/busybox/blobs/{layer} HTTP/1.1\" 200 ");
    assert!(
        registry.log().contains(&get),
        "the layer was not fetched from the registry:\n{}",
        registry.log()
    );

    let id = unique("from-registry");
    let out = w.ctr(&[
        "run",
        "--rm",
        &reference,
        &id,
        "echo",
        "hello-from-the-registry",
    ]);
    assert!(
        text(&out).contains("hello-from-the-registry"),
        "run {reference}: {}\n{}",
        text(&out),
        w.logs()
    );
    (registry, w)
}

/// (a) An insecure (plain HTTP) registry: `ctr images pull --plain-http` through the
/// proxy fetches every blob from it, containerd records the pushed digest, the image runs.
#[test]
fn a_plain_http_registry_serves_an_image_pulled_and_run_through_the_proxy() {
    push_pull_run(Transport::Http);
}

/// (b) A TLS registry whose certificate chains to a test CA: pulled with `--tlscacert`
/// (and the hosts dir that makes ctr 1.6 use HTTPS on loopback); without the CA, the pull
/// fails on the unknown authority (the TLS is real).
#[test]
fn a_tls_registry_is_pulled_from_with_the_test_ca_and_refused_without_it() {
    let (registry, w) = push_pull_run(Transport::Tls);
    assert!(registry.base_url().starts_with("https://"));
    let reference = registry.reference("test/busybox:1");
    ok(w.ctr(&["images", "rm", "--sync", &reference]));
    let hosts = registry.hosts_dir().unwrap();
    let hosts = hosts.to_str().unwrap();
    let out = w.ctr(&["images", "pull", "--hosts-dir", hosts, &reference]);
    assert!(
        !out.status.success(),
        "pulled without the CA: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("certificate signed by unknown authority"),
        "{}",
        text(&out)
    );
}

/// (c) The digest the harness returns is the one containerd records, for an image the
/// machine has never seen (a variant with its own config, so its own digest), and the
/// variant's `Cmd` is what runs.
#[test]
fn the_pushed_digest_is_the_one_containerd_records() {
    let registry = Registry::start(Transport::Http);
    let digest = registry.push_busybox_variant("test/variant:v1", "hello-from-a-variant");
    let w = World::new(CONFIG);
    assert_ne!(digest, recorded_digest(&w, IMAGE));
    let reference = registry.reference("test/variant:v1");
    ok(pull(&w, &registry, &reference));
    assert_eq!(recorded_digest(&w, &reference), digest);
    let (manifest, _) = registry.manifest("test/variant", "v1");
    assert_eq!(sha256_digest(&manifest), digest);

    let out = w.ctr(&["run", "--rm", &reference, &unique("variant")]);
    assert!(
        text(&out).contains("hello-from-a-variant"),
        "{}\n{}",
        text(&out),
        w.logs()
    );
}

/// The raw API a signature test needs, over both transports: manifests by tag and digest
/// byte for byte, blobs and a cosign-shaped signature manifest pushed under the
/// `sha256-<hex>.sig` tag, tags listed, and deletes (the config enables them).
#[test]
fn the_raw_registry_api_round_trips_manifests_blobs_and_tags() {
    for transport in [Transport::Http, Transport::Tls] {
        let registry = Registry::start(transport);
        let digest = registry.push_busybox("raw/busybox:1");
        let (by_tag, media_type) = registry.manifest("raw/busybox", "1");
        assert_eq!(media_type, OCI_MANIFEST, "{transport:?}");
        assert_eq!(sha256_digest(&by_tag), digest, "{transport:?}");
        assert_eq!(registry.manifest("raw/busybox", &digest).0, by_tag);
        assert_eq!(registry.tags("raw/busybox"), ["1"]);
        assert!(registry.tags("raw/nothing-here").is_empty());

        let sig_tag = format!("{}.sig", digest.replace(':', "-"));
        let sig = signature_manifest(&registry, "raw/busybox", &digest);
        let sig_digest = registry.put_manifest("raw/busybox", &sig_tag, &sig, OCI_MANIFEST);
        let mut tags = registry.tags("raw/busybox");
        tags.sort();
        assert_eq!(tags, ["1".to_owned(), sig_tag.clone()], "{transport:?}");
        assert_eq!(
            registry.manifest("raw/busybox", &sig_tag),
            (sig, OCI_MANIFEST.to_owned())
        );

        let path = format!("/v2/raw/busybox/manifests/{sig_digest}");
        let deleted = registry.request("DELETE", &path, &[], &[]);
        assert_eq!(deleted.status, 202, "{transport:?}: {deleted:?}");
        assert_eq!(registry.tags("raw/busybox"), ["1"], "{transport:?}");
    }
}

/// A manifest shaped like cosign's signature for `digest` in `repo` (a simple-signing
/// payload layer with a placeholder signature annotation); its blobs are pushed first.
fn signature_manifest(registry: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": registry.reference(repo)},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string();
    let config =
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let payload_digest = registry.put_blob(repo, payload.as_bytes());
    let config_digest = registry.put_blob(repo, config);
    assert_eq!(payload_digest, sha256_digest(payload.as_bytes()));
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": config_digest
        },
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "size": payload.len(),
            "digest": payload_digest,
            "annotations": {"dev.cosignproject.cosign/signature": "placeholder"}
        }]
    }))
    .unwrap()
}
