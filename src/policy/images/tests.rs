use serde_json::{json, Value};

use super::{check, deny_candidates, message, ImageRules, NotAPod, Rule, Violation};
use crate::policy::reference::ImageRef;

const D: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({ "name": format!("c{i}"), "image": image }))
        .collect();
    json!({ "apiVersion": "v1", "kind": "Pod", "spec": { "containers": containers } })
}

fn rules(yaml: &str) -> ImageRules {
    let rules: ImageRules = serde_saphyr::from_str(yaml).expect("valid images settings");
    rules.validate().expect("settings pass validation");
    rules
}

fn run(rules: &ImageRules, images: &[&str]) -> Vec<Violation> {
    check(rules, &pod(images)).expect("a pod")
}

/// The rules each image breaks, one image at a time.
fn broken(rules: &ImageRules, image: &str) -> Vec<Rule> {
    run(rules, &[image]).into_iter().map(|v| v.rule).collect()
}

#[test]
fn settings_parse_from_yaml() {
    let r = rules(
        "disallowLatest: true\nallowedRegistries: [docker.io, registry.example.com]\n\
         requireDigest: false\ndeny: [\"*/xmrig*\"]\n",
    );
    assert!(r.disallow_latest && !r.require_digest);
    assert_eq!(r.allowed_registries, ["docker.io", "registry.example.com"]);
    assert_eq!(r.deny, ["*/xmrig*"]);
    assert_eq!(rules("{}"), ImageRules::default());
    assert!(!ImageRules::default().is_active());
    let err = serde_saphyr::from_str::<ImageRules>("disallowLatests: true\n").unwrap_err();
    assert!(err.to_string().contains("disallowLatests"), "{err}");
}

#[test]
fn validation_names_the_bad_entry() {
    let bad = |yaml: &str| {
        let r: ImageRules = serde_saphyr::from_str(yaml).unwrap();
        r.validate().unwrap_err().to_string()
    };
    assert!(
        bad("allowedRegistries: [docker.io, \"\"]").starts_with("images.allowedRegistries[1]: ")
    );
    assert!(bad("allowedRegistries: [\"https://gcr.io\"]").contains("host[:port]"));
    assert!(bad("allowedRegistries: [\"gcr.io/\"]").contains("empty component"));
    assert!(bad("allowedRegistries: [\"gcr.io/Team\"]").contains("lowercase"));
    assert!(bad("allowedRegistries: [\"gcr.io:port\"]").contains("host[:port]"));
    assert!(bad("deny: [\"\"]").starts_with("images.deny[0]: "));
    assert!(bad("deny: [ok, \"a b\"]").starts_with("images.deny[1]: "));
    rules("allowedRegistries: [docker.io/library, \"localhost:5000\", \"[::1]:5000/team/x\", index.docker.io]");
}

#[test]
fn inactive_rules_allow_anything() {
    let r = ImageRules::default();
    assert_eq!(check(&r, &pod(&["Not A Reference", ""])), Ok(vec![]));
    assert_eq!(check(&r, &json!("not even an object")), Ok(vec![]));
}

#[test]
fn disallow_latest() {
    let r = rules("disallowLatest: true");
    for image in [
        "nginx",
        "nginx:latest",
        "docker.io/library/nginx",
        "user/app",
        "example.com/app:latest",
    ] {
        assert_eq!(broken(&r, image), [Rule::DisallowLatest], "{image}");
    }
    for image in [
        "nginx:1.27",
        "nginx:latest-alpine",
        "nginx:Latest", // tags are case-sensitive: not the `latest` tag
        &format!("busybox@{D}"),
        &format!("busybox:latest@{D}"), // the digest pins it; the tag is ignored when pulling
    ] {
        assert_eq!(broken(&r, image), [], "{image}");
    }
    let v = &run(&r, &["nginx"])[0];
    assert_eq!(
        v.to_string(),
        "images.disallowLatest: container \"c0\" (spec.containers[0]): image \"nginx\" \
         (docker.io/library/nginx:latest) has no tag, so it means :latest (pin a version tag \
         such as nginx:<version>, or a digest)"
    );
    assert_eq!(v.image, "nginx");
    assert_eq!(v.container.name, "c0");
    let v = &run(&r, &["docker.io/library/busybox:latest"])[0];
    assert_eq!(
        v.message,
        "container \"c0\" (spec.containers[0]): image \"docker.io/library/busybox:latest\" uses \
         the tag latest (pin a version tag such as busybox:<version>, or a digest)"
    );
}

#[test]
fn allowed_registries() {
    let r = rules("allowedRegistries: [docker.io, registry.example.com, \"localhost:5000\"]");
    for image in [
        "nginx",
        "user/app:1",
        "index.docker.io/library/nginx:1",
        "registry.example.com/team/app:1",
        "REGISTRY.example.com/team/app:1", // hosts are case-insensitive
        "localhost:5000/app",
    ] {
        assert_eq!(broken(&r, image), [], "{image}");
    }
    for image in [
        "quay.io/app:1",
        "registry.example.com:443/app:1", // a port makes a different registry
        "localhost/app",
        "localhost:5001/app",
        "registry.example.com.evil.io/app",
        "docker.io.evil.io/app",
    ] {
        assert_eq!(broken(&r, image), [Rule::AllowedRegistries], "{image}");
    }
    assert_eq!(
        run(&r, &["quay.io/app:1"])[0].to_string(),
        "images.allowedRegistries: container \"c0\" (spec.containers[0]): image \"quay.io/app:1\" \
         comes from registry quay.io, which is not allowed (allowed registries are: docker.io, \
         registry.example.com, localhost:5000)"
    );
}

#[test]
fn allowed_registry_path_prefixes() {
    let r = rules("allowedRegistries: [registry.example.com/team, docker.io/library]");
    for image in [
        "registry.example.com/team/app:1",
        "registry.example.com/team:1",
        "registry.example.com/team/a/b",
        "nginx:1",
        "docker.io/library/nginx",
    ] {
        assert_eq!(broken(&r, image), [], "{image}");
    }
    // Prefixes match on a '/' boundary only.
    for image in [
        "registry.example.com/teamx/app",
        "registry.example.com/other/team",
        "user/app",
        "library2/app",
    ] {
        assert_eq!(broken(&r, image), [Rule::AllowedRegistries], "{image}");
    }
}

#[test]
fn require_digest() {
    let r = rules("requireDigest: true");
    assert_eq!(broken(&r, &format!("busybox@{D}")), []);
    assert_eq!(broken(&r, &format!("busybox:1.36@{D}")), []);
    assert_eq!(broken(&r, "busybox:1.36"), [Rule::RequireDigest]);
    assert_eq!(
        run(&r, &["busybox:1.36"])[0].message,
        "container \"c0\" (spec.containers[0]): image \"busybox:1.36\" \
         (docker.io/library/busybox:1.36) is not pinned by digest (use \
         busybox:1.36@sha256:<digest>, with the digest the registry reports)"
    );
    assert!(run(&r, &["busybox"])[0]
        .message
        .contains("(use busybox@sha256:<digest>"));
}

#[test]
fn deny_patterns() {
    let r = rules("deny: [\"*/xmrig*\", \"evil.example.com/*\", \"nginx:1.1?\", \"*:latest\"]");
    for image in [
        "xmrig",               // docker.io/library/xmrig
        "xmrig/xmrig:6.21",    // as written
        "someone/xmrig-miner", // docker.io/someone/xmrig-miner
        "quay.io/a/b/xmrig@sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa",
        "EVIL.example.com/anything:1", // case-insensitive
        "evil.example.com/x",
        "nginx:1.13",
        "docker.io/library/nginx:1.15", // familiar form with tag
        "redis",                        // implied :latest
    ] {
        assert_eq!(broken(&r, image), [Rule::Deny], "{image}");
    }
    for image in [
        "nginx:1.1",
        "nginx:1.100",
        "notxmrig:1",
        "evil.example.comx/app:1",
        &format!("busybox@{D}"),
    ] {
        assert_eq!(broken(&r, image), [], "{image}");
    }
    assert_eq!(
        run(&r, &["xmrig"])[0].to_string(),
        "images.deny: container \"c0\" (spec.containers[0]): image \"xmrig\" \
         (docker.io/library/xmrig:latest) matches the denied pattern \"*/xmrig*\""
    );
    // Exact patterns over each spelling.
    let exact = |pattern: &str, image: &str| {
        let r = ImageRules {
            deny: vec![pattern.into()],
            ..Default::default()
        };
        broken(&r, image) == [Rule::Deny]
    };
    let pinned = format!("busybox:1.36@{D}");
    for pattern in [
        "busybox",
        "busybox:1.36",
        &format!("busybox@{D}"),
        &pinned,
        "docker.io/library/busybox",
        "docker.io/library/busybox:1.36",
        &format!("docker.io/library/busybox@{D}"),
        &format!("docker.io/library/busybox:1.36@{D}"),
    ] {
        assert!(exact(pattern, &pinned), "{pattern}");
    }
    assert!(
        !exact("library/busybox", &pinned),
        "a half-normalised name is not a candidate"
    );
    assert!(
        exact("library/busybox:1", "library/busybox:1"),
        "as written"
    );
}

#[test]
fn deny_candidate_list() {
    let r = ImageRef::parse("nginx").unwrap();
    assert_eq!(
        deny_candidates("nginx", &r),
        [
            "nginx",
            "docker.io/library/nginx:latest",
            "docker.io/library/nginx",
            "nginx:latest",
            "nginx"
        ]
    );
}

#[test]
fn invalid_and_unknown_images() {
    let all = rules(
        "disallowLatest: true\nallowedRegistries: [docker.io]\nrequireDigest: true\ndeny: [\"*\"]",
    );
    let v = run(&all, &["Nginx:1"]);
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].to_string(),
        "images.reference: container \"c0\" (spec.containers[0]): image \"Nginx:1\" is not a valid \
         reference: repository name \"Nginx\" must be lowercase"
    );

    let v = run(&all, &[""]);
    let rules_broken: Vec<Rule> = v.iter().map(|v| v.rule).collect();
    assert_eq!(
        rules_broken,
        [
            Rule::DisallowLatest,
            Rule::AllowedRegistries,
            Rule::RequireDigest
        ]
    );
    assert_eq!(
        v[1].to_string(),
        "images.allowedRegistries: the image of container \"c0\" (spec.containers[0]) is unknown \
         (the runtime did not report it), so its registry cannot be checked"
    );
    // `deny` alone lets an unknown image through: it only refuses what it recognises.
    let deny_only = rules("deny: [\"*\"]");
    assert_eq!(broken(&deny_only, ""), []);
    // A missing or non-string image is unknown too.
    let p = json!({ "kind": "Pod", "spec": { "containers": [{ "name": "a" }, { "name": "b", "image": 7 }] } });
    assert_eq!(check(&rules("requireDigest: true"), &p).unwrap().len(), 2);
}

#[test]
fn every_container_list_is_checked() {
    let r = rules("disallowLatest: true");
    let p = json!({
        "kind": "Pod",
        "spec": {
            "containers": [{ "name": "app", "image": "app:1" }, { "name": "side", "image": "side" }],
            "initContainers": [{ "name": "init", "image": "init:latest" }],
            "ephemeralContainers": [{ "name": "debug", "image": "busybox" }],
        }
    });
    let v = check(&r, &p).unwrap();
    let places: Vec<String> = v.iter().map(|v| v.container.to_string()).collect();
    assert_eq!(
        places,
        [
            "container \"side\" (spec.containers[1])",
            "container \"init\" (spec.initContainers[0])",
            "container \"debug\" (spec.ephemeralContainers[0])",
        ]
    );
    let m = message(&v);
    assert_eq!(m.matches("; ").count(), 2, "{m}");
    assert!(m.starts_with("images.disallowLatest: container \"side\""));
    assert_eq!(message(&[]), "");
}

#[test]
fn several_rules_at_once() {
    let r = rules("disallowLatest: true\nallowedRegistries: [registry.example.com]\nrequireDigest: true\ndeny: [\"*/xmrig*\"]");
    assert_eq!(
        broken(&r, "xmrig"),
        [
            Rule::DisallowLatest,
            Rule::AllowedRegistries,
            Rule::RequireDigest,
            Rule::Deny
        ]
    );
    assert_eq!(broken(&r, &format!("registry.example.com/app:1@{D}")), []);
}

#[test]
fn objects_that_are_not_pods() {
    let r = rules("disallowLatest: true");
    let err = |v: Value| check(&r, &v).unwrap_err();
    assert_eq!(
        err(json!({ "kind": "Deployment", "spec": {} })).to_string(),
        "the image rules need a v1 Pod: the object is of kind \"Deployment\""
    );
    assert_eq!(err(json!({})), NotAPod("the object has no spec".into()));
    assert_eq!(err(json!(null)), NotAPod("the object has no spec".into()));
    assert_eq!(
        err(json!({ "spec": { "containers": {} } })),
        NotAPod("spec.containers is missing or not a list".into())
    );
    assert_eq!(
        err(json!({ "spec": { "containers": [], "initContainers": "x" } })),
        NotAPod("spec.initContainers is not a list".into())
    );
    // No kind is fine (some doors send only the object body); odd entries are unknown images.
    let v = check(
        &r,
        &json!({ "spec": { "containers": [null, 3, "x", []], "initContainers": null } }),
    )
    .unwrap();
    assert_eq!(v.len(), 4);
    assert!(v
        .iter()
        .all(|v| v.rule == Rule::DisallowLatest && v.image.is_empty()));
}

#[test]
fn odd_images_never_panic() {
    let r = rules("disallowLatest: true\nallowedRegistries: [docker.io/library]\nrequireDigest: true\ndeny: [\"*a*b*c*\", \"?\"]");
    let long = "a".repeat(100_000);
    let long_host = format!("{}/app", "h.".repeat(50_000));
    let odd = [
        "",
        ":",
        "@",
        "/",
        "a@b",
        "a:b@c",
        "é",
        "ñginx:1",
        "日本/語",
        "\0",
        "\n",
        " nginx",
        "[::1]:5000/app",
        "[",
        &long,
        &long_host,
        "localhost:5000",
    ];
    let v = run(&r, &odd);
    assert!(v.len() >= odd.len());
    // Long values are shortened in messages.
    assert!(message(&v).len() < 20_000, "{}", message(&v).len());
    for (i, image) in odd.iter().enumerate() {
        assert!(
            v.iter().any(|v| v.container.index == i),
            "{image:?} produced no violation"
        );
    }
    // Valid references are bounded (registry 255, path 255, tag 128), so a pattern is
    // only ever matched against short strings; longer ones are invalid references.
    let r = ImageRules {
        deny: vec!["*a*a*a*a*a*a*a*a*b".into()],
        ..Default::default()
    };
    assert_eq!(
        broken(&r, &format!("{}b/app", "a.".repeat(20_000))),
        [Rule::Reference]
    );
    assert_eq!(broken(&r, &format!("{}a/app:1", "a.".repeat(120))), []);
}

#[test]
fn violations_serialise_for_audit_logs() {
    let v = &run(&rules("disallowLatest: true"), &["nginx"])[0];
    let j = serde_json::to_value(v).unwrap();
    assert_eq!(j["rule"], "images.disallowLatest");
    assert_eq!(
        j["container"],
        json!({ "name": "c0", "field": "spec.containers", "index": 0 })
    );
    assert_eq!(j["image"], "nginx");
}

#[test]
fn documented_messages_are_the_real_ones() {
    let doc = include_str!("../../../docs/policies.md");
    let all = rules(
        "disallowLatest: true\nallowedRegistries: [docker.io, registry.example.com, \"localhost:5000\"]\n\
         requireDigest: true\ndeny: [\"*/xmrig*\"]",
    );
    let mut produced: Vec<String> = Vec::new();
    for image in [
        "nginx",
        "docker.io/library/busybox:latest",
        "quay.io/app:1",
        "busybox:1.36",
        "xmrig",
        "Nginx:1",
        "",
    ] {
        produced.extend(run(&all, &[image]).iter().map(Violation::to_string));
    }
    let block = doc
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a text block of messages in docs/policies.md");
    for line in block.lines() {
        assert!(
            produced.iter().any(|p| p == line),
            "documented but not produced: {line}"
        );
    }
}
