//! Loading as a whole: the validation of every section from [`Config::from_raw`].

use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("portcullis.yaml"))
}

#[test]
fn a_reserved_fallback_runtime_is_refused_at_load_naming_the_field() {
    let err =
        parse("runtimeClass:\n  reservedRuntimes: [runc]\n  fallbackRuntime: runc\n").unwrap_err();
    let ConfigError::Invalid { field, message, .. } = &err else {
        panic!("expected Invalid, got {err}");
    };
    assert_eq!(field, "runtimeClass.fallbackRuntime");
    assert!(message.contains("itself reserved"), "{message}");
    assert!(err.to_string().contains("portcullis.yaml"), "{err}");
    let empty =
        parse("runtimeClass:\n  reservedRuntimes: [runc]\n  fallbackRuntime: \"\"\n").unwrap_err();
    assert!(
        empty.to_string().contains("runtimeClass.fallbackRuntime"),
        "{empty}"
    );
    let fine =
        parse("runtimeClass:\n  reservedRuntimes: [runc]\n  fallbackRuntime: kata\n").unwrap();
    assert_eq!(fine.runtime_class.fallback_runtime.as_deref(), Some("kata"));
}

#[test]
fn spec_escape_hatches_must_name_what_they_allow() {
    let parse = |text: &str| Config::parse(text, Path::new("c.yaml"));
    assert!(parse("spec: {allowedFields: [linux.netDevices, mounts.uidMappings], allowedHooks: [/usr/bin/hook]}").is_ok());
    for (text, field) in [
        (
            "spec: {allowedFields: ['mounts[3].uidMappings']}",
            "spec.allowedFields[0]",
        ),
        ("spec: {allowedFields: [linux.]}", "spec.allowedFields[0]"),
        ("spec: {allowedFields: ['']}", "spec.allowedFields[0]"),
        ("spec: {allowedHooks: [hook]}", "spec.allowedHooks[0]"),
        (
            "spec: {allowedHooks: [/usr/../tmp/x]}",
            "spec.allowedHooks[0]",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(field), "{text}: {e}");
    }
}

#[test]
fn the_empty_file_is_the_default_config() {
    let parsed = parse("").unwrap();
    let default = Config::default();
    assert_eq!(parsed.proxy, default.proxy);
    assert_eq!(parsed.serve, default.serve);
    assert_eq!(parsed.hook, default.hook);
    assert_eq!(parsed.proxy.listen_mode, ListenMode::default());
    assert!(parsed.policy_dir.is_none());
    let raw_default = RawProxyConfig::default().typed().unwrap();
    assert_eq!(raw_default, ProxyConfig::default());
}

#[test]
fn listen_modes_are_typed_at_load_or_refused_naming_the_field() {
    let c = parse("proxy: {listenMode: '0600:root:docker'}\nserve:\n  listeners:\n  - {socket: /run/p.sock, mode: '0640'}\n  - {socket: /run/q.sock}\n").unwrap();
    assert_eq!(
        c.proxy.listen_mode,
        ListenMode {
            mode: 0o600,
            user: Some("root".into()),
            group: Some("docker".into())
        }
    );
    assert_eq!(
        c.serve.listeners[0].mode.as_ref().map(|m| m.mode),
        Some(0o640)
    );
    assert_eq!(c.serve.listeners[1].mode, None);
    let e = parse("proxy: {listenMode: rw}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config file portcullis.yaml: proxy.listenMode: \"rw\" is not MODE[:USER:GROUP] with MODE in octal, e.g. \"0660:root:docker\""
    );
    for (text, message) in [
        (
            "serve: {listeners: [{socket: /s, mode: '0999'}]}",
            "mode: \"0999\" is not",
        ),
        (
            "serve: {listeners: [{address: '127.0.0.1:1', mode: '0660'}]}",
            "mode applies to socket listeners only",
        ),
        (
            "serve: {listeners: [{}]}",
            "set address (HOST:PORT) or socket (a path)",
        ),
        (
            "serve: {listeners: [{address: '127.0.0.1:1', socket: /s}]}",
            "set either address or socket, not both",
        ),
    ] {
        let ConfigError::Invalid {
            field, message: m, ..
        } = parse(text).unwrap_err()
        else {
            panic!("{text}: not Invalid");
        };
        assert_eq!(field, "serve.listeners[0]", "{text}");
        assert!(m.starts_with(message), "{text}: {m}");
    }
}

#[test]
fn the_policy_dir_is_read_at_load_and_a_bad_one_names_policy_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), "kind: X\n").unwrap();
    std::fs::write(dir.path().join("README"), "not a policy").unwrap();
    let c = parse(&format!("policyDir: {}\n", dir.path().display())).unwrap();
    let read = c.policy_dir.expect("policyDir");
    assert_eq!(read.path, dir.path());
    assert_eq!(
        read.documents,
        vec![(dir.path().join("p.yaml"), "kind: X\n".to_string())]
    );

    let missing = dir.path().join("missing");
    let e = parse(&format!("policyDir: {}\n", missing.display())).unwrap_err();
    let ConfigError::Invalid { field, message, .. } = &e else {
        panic!("expected Invalid, got {e}");
    };
    assert_eq!(field, "policyDir");
    assert!(
        message.starts_with(&format!("{}: ", missing.display())),
        "{message}"
    );

    // A policy file that cannot be read is named.
    let unreadable = dir.path().join("q.yaml");
    std::fs::create_dir(&unreadable).unwrap();
    let e = parse(&format!("policyDir: {}\n", dir.path().display())).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "config file portcullis.yaml: policyDir: {}: ",
            unreadable.display()
        )),
        "{e}"
    );
}

#[test]
fn webhook_names_must_be_unique() {
    let hook = "{name: a, clientConfig: {url: 'https://h'}}";
    let e = parse(&format!("webhooks: [{hook}, {hook}]\n")).unwrap_err();
    let ConfigError::Invalid { field, message, .. } = &e else {
        panic!("expected Invalid, got {e}");
    };
    assert_eq!(field, "webhooks[1].name");
    assert!(message.contains("duplicate webhook name"), "{message}");
    let e = parse("webhooks: [{name: a, clientConfig: {}}]\n").unwrap_err();
    assert!(e.to_string().contains("webhooks[0].clientConfig: "), "{e}");
}

#[test]
fn image_verification_is_checked_at_load_naming_the_field() {
    let err = parse("imageVerification: {timeoutSeconds: 0}\n").unwrap_err();
    let ConfigError::Invalid { field, message, .. } = &err else {
        panic!("expected Invalid, got {err}");
    };
    assert_eq!(field, "imageVerification.timeoutSeconds");
    assert!(message.contains("use 1 to 300"), "{message}");
    let err = parse("imageVerification: {caFiles: /x}\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `caFiles`"), "{err}");
    let fine = parse("imageVerification: {insecureRegistries: [localhost:5000]}\n").unwrap();
    assert_eq!(
        fine.image_verification.insecure_registries,
        ["localhost:5000"]
    );
    assert_eq!(parse("").unwrap().image_verification.timeout.as_secs(), 10);
}
