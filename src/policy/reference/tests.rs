//! Cases mostly from distribution/reference normalize_test.go and reference_test.go.

use super::{ImageRef, ReferenceError};

const D: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

fn p(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn full(s: &str) -> String {
    p(s).to_string()
}

#[test]
fn hub_short_names() {
    let r = p("nginx");
    assert_eq!(r.registry, "docker.io");
    assert_eq!(r.repository, "library/nginx");
    assert_eq!(r.tag.as_deref(), Some("latest"));
    assert!(r.tag_is_implied());
    assert_eq!(r.digest, None);
    assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
    assert_eq!(r.name(), "docker.io/library/nginx");
    assert_eq!(r.familiar(), "nginx");
    assert_eq!(r.familiar_name(), "nginx");

    assert_eq!(full("user/app"), "docker.io/user/app:latest");
    assert_eq!(p("user/app").repository, "user/app");
    assert_eq!(full("nginx:1.27"), "docker.io/library/nginx:1.27");
    assert!(!p("nginx:latest").tag_is_implied());
    assert_eq!(p("nginx:latest").familiar(), "nginx:latest");
}

#[test]
fn hub_spellings_normalise_alike() {
    for s in [
        "ubuntu",
        "library/ubuntu",
        "docker.io/ubuntu",
        "docker.io/library/ubuntu",
        "index.docker.io/ubuntu",
        "index.docker.io/library/ubuntu",
        "ubuntu:latest",
    ] {
        assert_eq!(full(s), "docker.io/library/ubuntu:latest", "{s}");
        assert_eq!(p(s).familiar_name(), "ubuntu", "{s}");
    }
    // Nested paths under library/ are not "official": no familiar shortening.
    assert_eq!(p("library/foo/bar").familiar_name(), "library/foo/bar");
    assert_eq!(
        p("docker.io/other/library").familiar_name(),
        "other/library"
    );
}

#[test]
fn registries() {
    let r = p("localhost:5000/app:v1");
    assert_eq!(
        (r.registry.as_str(), r.repository.as_str()),
        ("localhost:5000", "app")
    );
    assert_eq!(r.tag.as_deref(), Some("v1"));
    assert_eq!(r.familiar(), "localhost:5000/app:v1");

    assert_eq!(p("localhost/app").registry, "localhost");
    assert_eq!(p("example.com/private/moonbase").registry, "example.com");
    assert_eq!(p("example.com/privatebase").repository, "privatebase");
    assert_eq!(
        p("example.com:8000/private/moonbase").registry,
        "example.com:8000"
    );
    assert_eq!(
        p("127.0.0.1:5000/library/debian").registry,
        "127.0.0.1:5000"
    );
    assert_eq!(p("192.168.0.1:8/debian").repository, "debian");
    assert_eq!(p("test-com:8080/foo").registry, "test-com:8080");
    assert_eq!(p("xn--n3h.com:18080/foo").registry, "xn--n3h.com:18080");
    assert_eq!(p("[fc00::1]:5000/docker/docker").registry, "[fc00::1]:5000");
    assert_eq!(
        p("[fc00:1:2:3:4:5:6:7]:5000/library/debian").repository,
        "library/debian"
    );
    assert_eq!(p("[::1]/app").registry, "[::1]");
    // A first component without '.' or ':' is a Hub namespace, not a host.
    assert_eq!(p("test_com/foo").registry, "docker.io");
    assert_eq!(p("docker/migrator").repository, "docker/migrator");
    assert_eq!(p("myregistry/app").name(), "docker.io/myregistry/app");
    // An uppercase first component can only be a host.
    let r = p("Foo/bar");
    assert_eq!((r.registry.as_str(), r.repository.as_str()), ("Foo", "bar"));
    // Single components are Hub names even when they look like hosts.
    assert_eq!(full("localhost"), "docker.io/library/localhost:latest");
    assert_eq!(full("localhost:5000"), "docker.io/library/localhost:5000");
    assert_eq!(full("192.168.0.1"), "docker.io/library/192.168.0.1:latest");
    assert_eq!(full("192.168.0.1:80"), "docker.io/library/192.168.0.1:80");
    // Only docker.io gets library/.
    assert_eq!(p("example.com/app").repository, "app");
    assert_eq!(p("localhost/app").repository, "app");
}

#[test]
fn digests() {
    let r = p(&format!("busybox@{D}"));
    assert_eq!(r.tag, None, "a digest without tag has no tag, not latest");
    assert!(!r.tag_is_implied());
    assert_eq!(r.digest.as_deref(), Some(D));
    assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
    assert_eq!(r.familiar(), format!("busybox@{D}"));

    let r = p(&format!("docker.io/library/busybox:1.36@{D}"));
    assert_eq!(r.tag.as_deref(), Some("1.36"));
    assert_eq!(r.to_string(), format!("docker.io/library/busybox:1.36@{D}"));
    assert_eq!(r.familiar(), format!("busybox:1.36@{D}"));

    let r = p(&format!("localhost:5000/a/b:latest@{D}"));
    assert_eq!(
        (r.registry.as_str(), r.repository.as_str()),
        ("localhost:5000", "a/b")
    );

    let sha512 = format!("sha512:{}", "ab".repeat(64));
    assert_eq!(p(&format!("app@{sha512}")).digest, Some(sha512));
}

#[test]
fn tags() {
    assert_eq!(p("app:V1_x-2.3").tag.as_deref(), Some("V1_x-2.3"));
    assert_eq!(p("app:_x").tag.as_deref(), Some("_x"));
    let longest = "t".repeat(128);
    assert_eq!(p(&format!("app:{longest}")).tag, Some(longest.clone()));
    assert!(matches!(
        ImageRef::parse(&format!("app:{longest}x")),
        Err(ReferenceError::InvalidTag(_))
    ));
    for bad in [
        "app:",
        "app:-x",
        "app:.x",
        "docker.io/app:a/b",
        "app:a:b",
        "app:é",
        "app:a b",
    ] {
        assert!(
            matches!(ImageRef::parse(bad), Err(ReferenceError::InvalidTag(_))),
            "{bad}: {:?}",
            ImageRef::parse(bad)
        );
    }
}

#[test]
fn path_components() {
    for ok in [
        "docker-rules/docker",
        "docker---rules/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    ] {
        p(ok);
    }
    // Upstream's own cases: a '.' makes the first component a registry, and not a valid one.
    for bad in ["dock..er/docker", "dock_.er/docker", "dock-.er/docker"] {
        assert!(
            matches!(
                ImageRef::parse(bad),
                Err(ReferenceError::InvalidRegistry(_))
            ),
            "{bad}"
        );
    }
    // Upstream reads this as a registry-less name; we refuse it (see the module docs).
    assert!(matches!(
        ImageRef::parse("a.b_c/d"),
        Err(ReferenceError::InvalidRegistry(_))
    ));
    for bad in [
        "docker///docker",
        "-docker",
        "-docker/docker",
        "docker-/docker",
        "-docker-/docker",
        "____/____",
        "_docker/_docker",
        "docker.io/dock..er/docker",
        "docker.io/dock_.er/docker",
        "docker.io/dock-.er/docker",
        "docker.io/docker/dock..er",
        "example.com/a-/b",
        "dock___er/docker",
        "docker/",
        "/docker",
        "example.com/",
        "example.com//app",
    ] {
        assert!(
            matches!(
                ImageRef::parse(bad),
                Err(ReferenceError::InvalidPath { .. })
            ),
            "{bad}: {:?}",
            ImageRef::parse(bad)
        );
    }
}

#[test]
fn rejected_references() {
    use ReferenceError::*;
    type Expect = fn(&ReferenceError) -> bool;
    let cases: &[(&str, Expect)] = &[
        ("", |e| *e == Empty),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            |e| *e == ImageId,
        ),
        ("Nginx", |e| matches!(e, Uppercase(_))),
        ("docker/Docker", |e| matches!(e, Uppercase(_))),
        ("docker.io/docker/Docker", |e| matches!(e, Uppercase(_))),
        ("example.com/App:v1", |e| matches!(e, Uppercase(_))),
        ("https://github.com/docker/docker", |e| {
            matches!(e, InvalidRegistry(_))
        }),
        ("-docker.io/docker/docker", |e| {
            matches!(e, InvalidRegistry(_))
        }),
        ("[fc00::1]", |e| matches!(e, InvalidPath { .. })),
        ("[fc00::1]:5000", |e| matches!(e, InvalidPath { .. })),
        ("fc00::1:5000/debian", |e| matches!(e, InvalidRegistry(_))),
        ("[fe80::1%eth0]:5000/debian", |e| {
            matches!(e, InvalidRegistry(_))
        }),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", |e| {
            matches!(e, InvalidRegistry(_))
        }),
        ("example.com:/app", |e| matches!(e, InvalidRegistry(_))),
        ("example.com:http/app", |e| matches!(e, InvalidRegistry(_))),
        ("[::1]x/app", |e| matches!(e, InvalidRegistry(_))),
        ("app@", |e| matches!(e, InvalidDigest(_))),
        ("app@sha256", |e| matches!(e, InvalidDigest(_))),
        ("app@sha256:abc", |e| matches!(e, InvalidDigest(_))),
        ("app@sha256:", |e| matches!(e, InvalidDigest(_))),
        ("app@@sha256:x", |e| matches!(e, InvalidDigest(_))),
        ("app@md5:d41d8cd98f00b204e9800998ecf8427e", |e| {
            matches!(e, UnsupportedDigest { .. })
        }),
        (
            "app@SHA256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa",
            |e| matches!(e, UnsupportedDigest { .. }),
        ),
        (
            "app@sha256:7CC4B5AEFD1D0CADF8D97D4350462BA51C694EBCA145B08D7D41B41ACC8DB5AA",
            |e| matches!(e, UnsupportedDigest { .. }),
        ),
        ("app@sha256:7cc4b5aefd1d0cadf8d97d4350462ba5", |e| {
            matches!(e, UnsupportedDigest { .. })
        }),
    ];
    for (input, expected) in cases {
        match ImageRef::parse(input) {
            Ok(r) => panic!("{input:?} should be rejected, parsed as {r}"),
            Err(e) => assert!(expected(&e), "{input:?}: unexpected error {e:?}"),
        }
    }
}

#[test]
fn length_limits() {
    let host = format!("{}b", "a.".repeat(124)); // 249 characters
    assert_eq!(p(&format!("{host}:5000/app")).registry.len(), 254);
    assert_eq!(p(&format!("{host}:50000/app")).registry.len(), 255);
    assert!(matches!(
        ImageRef::parse(&format!("{host}:500000/app")),
        Err(ReferenceError::InvalidRegistry(_))
    ));
    // 255 bytes of path after normalisation, library/ included.
    let name = "a".repeat(255 - "library/".len());
    assert_eq!(p(&name).repository.len(), 255);
    assert_eq!(
        ImageRef::parse(&format!("{name}a")),
        Err(ReferenceError::PathTooLong(256))
    );
    let long = format!(
        "this_is_not_a_valid_namespace_because_its_length_is_greater_than_255_{}/docker",
        "x".repeat(200)
    );
    assert!(matches!(
        ImageRef::parse(&long),
        Err(ReferenceError::PathTooLong(_))
    ));
}

#[test]
fn messages_are_actionable() {
    let msg = |s: &str| ImageRef::parse(s).unwrap_err().to_string();
    assert_eq!(msg(""), "the reference is empty");
    assert_eq!(
        msg("Nginx:1"),
        "repository name \"Nginx\" must be lowercase"
    );
    assert_eq!(
        msg("registry_x.com/app"),
        "registry \"registry_x.com\" is not a valid host[:port] (at most 255 characters)"
    );
    assert_eq!(
        msg("nginx:1.2!"),
        "tag \"1.2!\" is invalid: a tag is 1 to 128 of A-Z a-z 0-9 _ . - and cannot start with . or -"
    );
    assert!(
        msg("a//b").starts_with("repository name \"a//b\" is invalid: it has an empty component")
    );
    assert!(msg("app@md5:d41d8cd98f00b204e9800998ecf8427e").contains("sha256, sha384 or sha512"));
    // Hostile input is quoted, escaped and shortened.
    let m = msg(&format!("app:{}\n", "x".repeat(10_000)));
    assert!(m.len() < 400 && m.contains('…'), "{m}");
}

#[test]
fn display_round_trips() {
    for s in [
        "nginx",
        "user/app:1",
        "localhost:5000/app:v1",
        "[::1]:5000/a/b",
        &format!("busybox@{D}"),
        &format!("docker.io/library/busybox:1.36@{D}"),
    ] {
        let r = p(s);
        assert_eq!(p(&r.to_string()).to_string(), r.to_string(), "{s}");
        assert_eq!(p(&r.familiar()).to_string(), r.to_string(), "{s}");
        assert_eq!(s.parse::<ImageRef>().as_ref(), Ok(&r));
    }
}

#[test]
fn odd_input_never_panics() {
    let mut inputs: Vec<String> = [
        "",
        ":",
        "@",
        "/",
        "//",
        ":/",
        "/:",
        "@/",
        "a@b",
        "a:b@c",
        ":@",
        "@:",
        "a:",
        "a@",
        "[",
        "]",
        "[]",
        "[]/a",
        "[:]/a",
        "[::1",
        "[::1]:",
        "[::1]:/a",
        "a/[::1]",
        "é",
        "ñginx",
        "ńginx/app",
        "example.com/ñ",
        "Ä/b",
        "app:ä",
        "app@sha256:é",
        "日本/語",
        "\0",
        "a\0b",
        " nginx",
        "nginx ",
        "\u{feff}nginx",
        "a/b/c/d/e/f/g",
        "...",
        "---",
        "a:b:c",
        "a@b@c",
        "a/@",
        "a/:",
        "localhost:",
        "localhost:/a",
        ":5000/a",
        "a.b:99999999999999999999999/c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.push("a".repeat(100_000));
    inputs.push(format!("{}/app", "h.".repeat(50_000)));
    inputs.push(format!("app:{}", "x".repeat(100_000)));
    inputs.push(format!("app@sha256:{}", "f".repeat(100_000)));
    inputs.push("/".repeat(10_000));
    inputs.push("é".repeat(10_000));
    for s in &inputs {
        if let Ok(r) = ImageRef::parse(s) {
            // Whatever parses must print and re-parse to itself.
            let _ = (r.familiar(), r.familiar_name(), r.name());
            assert_eq!(ImageRef::parse(&r.to_string()).as_ref(), Ok(&r), "{s:?}");
        } else {
            let _ = ImageRef::parse(s).unwrap_err().to_string();
        }
    }
    // Exhaustively: every string of up to 3 characters over a nasty alphabet.
    let alphabet = ['a', 'A', '.', ':', '/', '@', '_', '-', '[', ']', '1', 'é'];
    let mut strings = vec![String::new()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for s in &strings {
            for c in alphabet {
                let t = format!("{s}{c}");
                let _ = ImageRef::parse(&t).map(|r| r.to_string());
                next.push(t);
            }
        }
        strings = next;
    }
}
