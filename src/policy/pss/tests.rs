//! Kubernetes' own Pod Security fixtures as the oracle, upstream's message unit tests,
//! and hostile input.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pod-security");

fn lv(s: &str) -> LevelVersion {
    s.parse().unwrap()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    files
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `LEVEL/VERSION/{pass,fail}/*.yaml`: pass Pods admitted, fail Pods refused.
#[test]
fn upstream_fixtures_all_agree() {
    let root = Path::new(FIXTURES);
    let (mut pass, mut fail) = (0, 0);
    let mut mismatches = Vec::new();
    for level_dir in subdirs(root) {
        let level: Level = level_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        for version_dir in subdirs(&level_dir) {
            let version: Version = version_dir
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let lv = LevelVersion { level, version };
            for (outcome, want_admit) in [("pass", true), ("fail", false)] {
                for file in yaml_files(&version_dir.join(outcome)) {
                    let failures = evaluate(&lv, &load(&file));
                    let admitted = matches!(&failures, Ok(f) if f.is_empty());
                    if want_admit {
                        pass += 1;
                    } else {
                        fail += 1;
                    }
                    let right_check = match &failures {
                        Ok(f) if !want_admit => names_the_check(&file, &lv, f),
                        _ => true,
                    };
                    if admitted != want_admit || !right_check {
                        mismatches.push(format!(
                            "{}: {lv}: {:?}",
                            file.strip_prefix(root).unwrap().display(),
                            failures.map(|f| message(&lv, &f))
                        ));
                    }
                }
            }
        }
    }
    let total = pass + fail;
    println!(
        "pod-security fixtures: {total} ({pass} pass, {fail} fail), {} agree, {} mismatches",
        total - mismatches.len(),
        mismatches.len()
    );
    assert!(
        total > 4000,
        "fixtures missing under {FIXTURES}: found {total}"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// A fail fixture (`capabilities_baseline1.yaml`) is refused by the check it is named
/// after, or by the restricted check that replaces that one at this version (as upstream's
/// fixture test looks for the check's message; other checks may fail too).
fn names_the_check(file: &Path, lv: &LevelVersion, failures: &[CheckResult]) -> bool {
    let stem = file.file_stem().unwrap().to_str().unwrap();
    let named = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let minor = lv.version.effective_minor();
    let replaces_named = |id: &str| {
        restricted::CHECKS.iter().any(|c| {
            c.id == id
                && c.versions
                    .iter()
                    .rev()
                    .find(|v| v.since <= minor)
                    .is_some_and(|v| v.overrides.iter().any(|o| o.eq_ignore_ascii_case(named)))
        })
    };
    failures
        .iter()
        .any(|f| f.id.eq_ignore_ascii_case(named) || replaces_named(f.id))
}

#[test]
fn registry_matches_upstream_rules() {
    for checks in [baseline::CHECKS, restricted::CHECKS] {
        let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "upstream reports checks sorted by ID");
        for c in checks {
            assert!(
                c.versions.windows(2).all(|w| w[0].since < w[1].since),
                "{}",
                c.id
            );
        }
    }
    let newest = baseline::CHECKS
        .iter()
        .chain(restricted::CHECKS)
        .flat_map(|c| c.versions.iter().map(|v| v.since))
        .max();
    assert_eq!(newest, Some(LATEST_MINOR));
}

#[test]
fn versions_parse_and_clamp() {
    assert_eq!(lv("restricted:latest").to_string(), "restricted:latest");
    assert_eq!(lv("baseline:v1.30").version, Version::V(30));
    assert_eq!(lv("baseline").version, Version::Latest);
    assert_eq!(lv("restricted:v1.0").version, Version::V(0));
    for bad in [
        "v1.01",
        "1.30",
        "v2.0",
        "v1.",
        "v1.-1",
        "Latest",
        "v1.99999999999",
    ] {
        assert!(bad.parse::<Version>().is_err(), "{bad}");
    }
    assert!("strict".parse::<Level>().is_err());
    assert_eq!(Version::V(99).effective_minor(), LATEST_MINOR);
    assert_eq!(Version::Latest.effective_minor(), LATEST_MINOR);

    // A version newer than any check is judged as the newest one.
    let pod = pod(
        json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat"}]},
        "containers": [{"name": "c"}]}),
    );
    assert!(evaluate(&lv("baseline:v1.99"), &pod).unwrap().is_empty());
    assert!(evaluate(&lv("baseline:latest"), &pod).unwrap().is_empty());
    assert_eq!(
        evaluate(&lv("baseline:v1.36"), &pod).unwrap()[0].id,
        "sysctls"
    );
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn only(lv_text: &str, pod: &Value) -> (String, String) {
    let failures = evaluate(&lv(lv_text), pod).unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    (failures[0].reason.clone(), failures[0].detail.clone())
}

#[test]
fn aggregate_message_reads_like_the_api_server() {
    let p = pod(json!({"hostNetwork": true, "containers": [
        {"name": "c", "securityContext": {"privileged": true}}]}));
    let lv = lv("baseline:latest");
    let failures = evaluate(&lv, &p).unwrap();
    assert_eq!(
        message(&lv, &failures),
        "violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), \
         privileged (container \"c\" must not set securityContext.privileged=true)"
    );
    assert!(evaluate(&"privileged".parse().unwrap(), &p)
        .unwrap()
        .is_empty());
}

#[test]
fn restricted_message_lists_baseline_then_restricted_checks() {
    let p = pod(
        json!({"hostPID": true, "hostIPC": true, "containers": [{"name": "a"}, {"name": "b"}]}),
    );
    let lv = lv("restricted:v1.30");
    let failures = evaluate(&lv, &p).unwrap();
    assert_eq!(
        message(&lv, &failures),
        "violates PodSecurity \"restricted:v1.30\": host namespaces (hostIPC=true, hostPID=true), \
         allowPrivilegeEscalation != false (containers \"a\", \"b\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (containers \"a\", \"b\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or containers \"a\", \"b\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or containers \"a\", \"b\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

#[test]
fn messages_of_single_checks() {
    let caps = pod(json!({"containers": [
        {"name": "a", "securityContext": {"capabilities": {"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]}}},
        {"name": "b", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}}]}));
    assert_eq!(
        only("baseline:latest", &caps),
        ("non-default capabilities".into(),
         "containers \"a\", \"b\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add".into())
    );

    let ports = pod(json!({"containers": [
        {"name": "a", "ports": [{"hostPort": 0}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
        {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]}]}));
    assert_eq!(
        only("baseline:latest", &ports),
        (
            "hostPort".into(),
            "containers \"b\", \"c\" use hostPorts 10, 20, 30".into()
        )
    );

    // hostNetwork defaults unset hostPorts to the containerPorts.
    let host_network = pod(json!({"hostNetwork": true, "containers": [
        {"name": "a", "ports": [{"containerPort": 8080}, {"containerPort": 443, "hostPort": 9443}]}]}));
    let failures = evaluate(&lv("baseline:latest"), &host_network).unwrap();
    assert_eq!(
        message(&lv("baseline:latest"), &failures),
        "violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), \
         hostPort (container \"a\" uses hostPorts 8080, 9443)"
    );

    let selinux = pod(
        json!({"securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
        "containers": [
            {"name": "d", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
            {"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}},
            {"name": "f", "securityContext": {"seLinuxOptions": {"user": "bar"}}}]}),
    );
    assert_eq!(
        only("baseline:v1.31", &selinux).1,
        "pod and containers \"e\", \"f\" set forbidden securityContext.seLinuxOptions: types \"bar\", \"foo\"; user may not be set; role may not be set"
    );
    // container_engine_t is allowed from 1.31 only.
    assert!(only("baseline:v1.30", &selinux)
        .1
        .contains("containers \"d\", \"e\", \"f\""));

    let apparmor = json!({"metadata": {"annotations": {
            "container.apparmor.security.beta.kubernetes.io/": "bogus",
            "container.apparmor.security.beta.kubernetes.io/a": "",
            "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
            "container.apparmor.security.beta.kubernetes.io/e": "unconfined"}},
        "spec": {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}, "containers": [{"name": "x"}]}});
    assert_eq!(
        only("baseline:latest", &apparmor),
        (
            "forbidden AppArmor profiles".into(),
            "pod and annotations must not set AppArmor profile type to \"Unconfined\", \
          \"container.apparmor.security.beta.kubernetes.io/=\"bogus\"\", \
          \"container.apparmor.security.beta.kubernetes.io/e=\"unconfined\"\""
                .into()
        )
    );

    let volumes = pod(json!({"containers": [{"name": "c"}], "volumes": [
        {"name": "ok", "emptyDir": {}}, {"name": "img", "image": {"reference": "x"}},
        {"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {}},
        {"name": "implicit-empty-dir"}, {"name": "future", "newKindOfVolume": {}}]}));
    let failures = evaluate(&lv("restricted:latest"), &volumes).unwrap();
    let v = failures
        .iter()
        .find(|f| f.id == "restrictedVolumes")
        .unwrap();
    assert_eq!(
        v.detail,
        "volumes \"h\", \"n\", \"future\" use restricted volume types \"hostPath\", \"nfs\", \"unknown\""
    );
    assert!(
        failures.iter().all(|f| f.id != "hostPathVolumes"),
        "overridden"
    );
    assert_eq!(
        only("baseline:latest", &volumes),
        ("hostPath volumes".into(), "volume \"h\"".into())
    );
}

#[test]
fn versions_change_verdicts_as_upstream() {
    // Seccomp: annotations before 1.19, fields from 1.19.
    let annotated = json!({"metadata": {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
        "spec": {"containers": [{"name": "c", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]}});
    assert_eq!(
        only("baseline:v1.18", &annotated).1,
        "forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\""
    );
    assert_eq!(
        only("baseline:v1.19", &annotated).1,
        "container \"c\" must not set securityContext.seccompProfile.type to \"Unconfined\""
    );

    // User namespaces relax procMount (baseline only), runAsNonRoot and runAsUser from 1.35.
    let userns = pod(
        json!({"hostUsers": false, "containers": [{"name": "c", "securityContext": {
        "procMount": "Unmasked", "runAsUser": 0, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}),
    );
    assert!(evaluate(&lv("baseline:v1.35"), &userns).unwrap().is_empty());
    assert_eq!(
        evaluate(&lv("baseline:v1.34"), &userns).unwrap()[0].id,
        "procMount"
    );
    let ids = |v: &str| -> Vec<&'static str> {
        evaluate(&lv(v), &userns)
            .unwrap()
            .iter()
            .map(|f| f.id)
            .collect()
    };
    assert_eq!(ids("restricted:v1.35"), ["procMount_restricted"]);
    assert_eq!(
        ids("restricted:v1.34"),
        ["procMount", "runAsNonRoot", "runAsUser"]
    );

    // Windows Pods skip the Linux-only restricted checks from 1.25.
    let windows = pod(
        json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "c"}]}),
    );
    assert!(evaluate(&lv("restricted:v1.25"), &windows)
        .unwrap()
        .is_empty());
    assert_eq!(
        evaluate(&lv("restricted:v1.24"), &windows).unwrap().len(),
        3
    );
}

#[test]
fn wrong_types_fail_closed() {
    let p = pod(json!({"containers": [{"name": "c", "securityContext": {"privileged": "true"}}]}));
    let err = evaluate(&lv("baseline:latest"), &p).unwrap_err();
    assert_eq!(
        err.0,
        ["spec.containers[0].securityContext.privileged: want a boolean, got a string"]
    );
    assert!(evaluate(&lv("baseline:latest"), &json!("pod")).is_err());
    // null is Go's nil, not a wrong type.
    let p = pod(
        json!({"hostNetwork": null, "containers": [null, {"name": null, "securityContext": null}]}),
    );
    assert!(evaluate(&lv("restricted:latest"), &p).unwrap().len() > 1);
}

/// Every node of some fixtures replaced by each odd value: no panic, at any level.
#[test]
fn odd_input_never_panics() {
    let odd = [
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5),
        json!("x"),
        json!([]),
        json!([null, 1, "ALL"]),
        json!({}),
    ];
    let levels = [
        "baseline:v1.0",
        "baseline:latest",
        "restricted:v1.18",
        "restricted:latest",
    ];
    let dir = Path::new(FIXTURES).join("restricted/v1.37");
    for file in yaml_files(&dir.join("fail"))
        .into_iter()
        .chain(yaml_files(&dir.join("pass")))
    {
        let original = load(&file);
        let mut paths = Vec::new();
        collect_paths(&original, &mut String::new(), &mut paths);
        for path in &paths {
            for value in &odd {
                let mut pod = original.clone();
                *pod.pointer_mut(path).unwrap() = value.clone();
                for l in levels {
                    let lv = lv(l);
                    if let Ok(failures) = evaluate(&lv, &pod) {
                        let _ = message(&lv, &failures);
                    }
                }
            }
        }
    }
}

fn collect_paths(value: &Value, prefix: &mut String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let len = prefix.len();
        prefix.push('/');
        prefix.push_str(&key);
        collect_paths(child, prefix, out);
        prefix.truncate(len);
    }
}
