//! cosign signatures made by independent code (RustCrypto) checked by `check_layer`: the
//! right key verifies; a wrong key, a wrong digest, a tampered payload or a broken layer
//! is refused, saying which.

use super::*;
use crate::signature::testing::{self, Signer, DIGEST, OTHER_DIGEST};

fn authority(signer: &Signer) -> KeyAuthority {
    KeyAuthority {
        key: PublicKey::from_pem(signer.public_pem().as_bytes()).unwrap(),
        rekor: None,
    }
}

fn signed(signer: &Signer, digest: &str) -> (Layer, Vec<u8>) {
    let payload = testing::payload(digest);
    let signature = signer.sign(&payload);
    (testing::layer(&payload, &signature, None), payload)
}

fn signers() -> [(&'static str, Signer, Signer); 3] {
    [
        ("ECDSA P-256", Signer::p256(1), Signer::p256(2)),
        ("RSA", Signer::rsa(0), Signer::rsa(1)),
        ("Ed25519", Signer::ed25519(1), Signer::ed25519(2)),
    ]
}

#[test]
fn the_right_key_verifies_for_every_key_type() {
    for (what, signer, _) in signers() {
        let (layer, payload) = signed(&signer, DIGEST);
        let verified = check_layer(&layer, &payload, DIGEST, &authority(&signer))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(verified.layer, layer.digest, "{what}");
        assert_eq!(verified.key_id, authority(&signer).key.id(), "{what}");
        assert_eq!(verified.rekor, None);
    }
}

#[test]
fn a_wrong_key_is_refused_for_every_key_type() {
    for (what, signer, other) in signers() {
        let (layer, payload) = signed(&signer, DIGEST);
        let e = check_layer(&layer, &payload, DIGEST, &authority(&other)).unwrap_err();
        assert_eq!(e, NOT_BY_KEY, "{what}");
    }
    // A key of another type altogether.
    let (layer, payload) = signed(&Signer::p256(1), DIGEST);
    let e = check_layer(&layer, &payload, DIGEST, &authority(&Signer::ed25519(1))).unwrap_err();
    assert_eq!(e, NOT_BY_KEY);
}

#[test]
fn a_signature_of_another_digest_is_refused_naming_both() {
    for (what, signer, _) in signers() {
        let (layer, payload) = signed(&signer, OTHER_DIGEST);
        let e = check_layer(&layer, &payload, DIGEST, &authority(&signer)).unwrap_err();
        assert_eq!(
            e,
            format!("verifies with the key but signs \"{OTHER_DIGEST}\", not {DIGEST}"),
            "{what}"
        );
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    for (what, signer, _) in signers() {
        let payload = testing::payload(OTHER_DIGEST);
        let signature = signer.sign(&payload);
        // The attacker swaps the digest in the payload and fixes up the layer digest.
        let tampered = testing::payload(DIGEST);
        let layer = testing::layer(&tampered, &signature, None);
        let e = check_layer(&layer, &tampered, DIGEST, &authority(&signer)).unwrap_err();
        assert_eq!(e, NOT_BY_KEY, "{what}");
        // Content that does not match the descriptor's digest is refused before the key.
        let (layer, _) = signed(&signer, DIGEST);
        let e = check_layer(&layer, &tampered[1..], DIGEST, &authority(&signer)).unwrap_err();
        assert_eq!(e, "its content does not have the layer's digest", "{what}");
    }
}

#[test]
fn the_payload_must_be_a_cosign_image_signature() {
    let signer = Signer::p256(3);
    let payload = r#"{"critical":{"image":{"docker-manifest-digest":"D"},"type":"atomic container signature"}}"#
        .replace("D", DIGEST);
    let layer = testing::layer(payload.as_bytes(), &signer.sign(payload.as_bytes()), None);
    let e = check_layer(&layer, payload.as_bytes(), DIGEST, &authority(&signer)).unwrap_err();
    assert!(
        e.contains(
            "signs a \"atomic container signature\", not a \"cosign container image signature\""
        ),
        "{e}"
    );
    let payload = b"not json".to_vec();
    let layer = testing::layer(&payload, &signer.sign(&payload), None);
    let e = check_layer(&layer, &payload, DIGEST, &authority(&signer)).unwrap_err();
    assert!(e.contains("not a simple-signing document"), "{e}");
}

#[test]
fn broken_layers_say_what_is_wrong() {
    let signer = Signer::p256(4);
    let (layer, payload) = signed(&signer, DIGEST);
    let a = authority(&signer);
    let mut other_type = layer.clone();
    other_type.media_type = "application/vnd.oci.image.layer.v1.tar".into();
    assert!(check_layer(&other_type, &payload, DIGEST, &a)
        .unwrap_err()
        .contains("not a cosign simple-signing payload"));
    let mut unsigned = layer.clone();
    unsigned.annotations.remove(SIGNATURE_ANNOTATION);
    assert_eq!(
        check_layer(&unsigned, &payload, DIGEST, &a).unwrap_err(),
        "has no dev.cosignproject.cosign/signature annotation"
    );
    let mut garbled = layer;
    garbled
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), "%%%".into());
    assert!(check_layer(&garbled, &payload, DIGEST, &a)
        .unwrap_err()
        .contains("is not base64"));
}

#[test]
fn rekor_bundles_are_required_and_checked_when_the_authority_names_a_log() {
    let signer = Signer::p256(5);
    let log = Signer::p256(99);
    let payload = testing::payload(DIGEST);
    let signature = signer.sign(&payload);
    let pem = signer.public_pem();
    let with_log = |log_key: &Signer| KeyAuthority {
        key: PublicKey::from_pem(pem.as_bytes()).unwrap(),
        rekor: Some(PublicKey::from_pem(log_key.public_pem().as_bytes()).unwrap()),
    };
    let bundle = testing::rekor_bundle(&log, &pem, &signature, &payload, 42);
    let layer = testing::layer(&payload, &signature, Some(bundle.clone()));
    let v = check_layer(&layer, &payload, DIGEST, &with_log(&log)).unwrap();
    assert_eq!(v.rekor.map(|r| r.log_index), Some(42));

    // No bundle at all.
    let bare = testing::layer(&payload, &signature, None);
    let e = check_layer(&bare, &payload, DIGEST, &with_log(&log)).unwrap_err();
    assert!(e.contains("has no Rekor bundle"), "{e}");
    // A bundle of another log.
    let e = check_layer(&layer, &payload, DIGEST, &with_log(&Signer::p256(98))).unwrap_err();
    assert!(e.contains("not from the configured Rekor key's log"), "{e}");
    // A genuine SET over an entry about another signature.
    let other_sig = signer.sign(b"something else");
    let bundle = testing::rekor_bundle(&log, &pem, &other_sig, &payload, 7);
    let layer = testing::layer(&payload, &signature, Some(bundle));
    let e = check_layer(&layer, &payload, DIGEST, &with_log(&log)).unwrap_err();
    assert!(e.contains("records a different signature"), "{e}");
    // ... about another payload, or another key.
    let bundle = testing::rekor_bundle(&log, &pem, &signature, b"other payload", 7);
    let layer = testing::layer(&payload, &signature, Some(bundle));
    let e = check_layer(&layer, &payload, DIGEST, &with_log(&log)).unwrap_err();
    assert!(e.contains("hash of a different payload"), "{e}");
    let bundle =
        testing::rekor_bundle(&log, &Signer::p256(6).public_pem(), &signature, &payload, 7);
    let layer = testing::layer(&payload, &signature, Some(bundle));
    let e = check_layer(&layer, &payload, DIGEST, &with_log(&log)).unwrap_err();
    assert!(e.contains("different public key"), "{e}");
    // A SET tampered after signing.
    let tampered = testing::rekor_bundle(&log, &pem, &signature, &payload, 42)
        .replace("\"logIndex\":42", "\"logIndex\":43");
    let layer = testing::layer(&payload, &signature, Some(tampered));
    let e = check_layer(&layer, &payload, DIGEST, &with_log(&log)).unwrap_err();
    assert!(e.contains("SignedEntryTimestamp does not verify"), "{e}");
}

#[test]
fn signature_tags_and_manifests() {
    assert_eq!(
        signature_tag(DIGEST).unwrap(),
        format!("sha256-{}.sig", &DIGEST[7..])
    );
    assert!(signature_tag("latest")
        .unwrap_err()
        .contains("not a digest"));
    assert!(signature_tag("sha256:xyz").is_err());
    let signer = Signer::ed25519(9);
    let (layer, _) = signed(&signer, DIGEST);
    let bytes = testing::manifest(std::slice::from_ref(&layer));
    assert_eq!(manifest_layers(&bytes).unwrap(), vec![layer]);
    let index = br#"{"schemaVersion":2,"manifests":[]}"#;
    assert_eq!(manifest_layers(index).unwrap(), vec![]);
    assert!(manifest_layers(b"{\"schemaVersion\":1}")
        .unwrap_err()
        .contains("schemaVersion 1"));
    assert!(manifest_layers(b"<html>")
        .unwrap_err()
        .contains("not an image manifest"));
}
