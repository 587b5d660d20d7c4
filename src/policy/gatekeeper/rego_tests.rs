//! Unit tests of the Rego engine: the gatekeeper-library's templates (tests/fixtures) and
//! small templates for each of Gatekeeper's rules at load and at evaluation.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::rego::{RegoInput, RegoProgram, RegoViolation};

const LIMIT: Duration = Duration::from_secs(5);

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gatekeeper-library")
}

fn yaml(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// A library template's Rego: (name, rego, libs, v1), from `targets[0].rego` + `libs` or
/// the `code[]` entry with `engine: Rego`.
fn template_rego(template: &Json) -> (String, String, Vec<String>, bool) {
    let name = template["metadata"]["name"].as_str().unwrap().to_string();
    let target = &template["spec"]["targets"][0];
    let strings = |v: &Json| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    if let Some(rego) = target["rego"].as_str() {
        return (name, rego.to_string(), strings(&target["libs"]), false);
    }
    let code = target["code"].as_array().unwrap();
    let source = &code.iter().find(|c| c["engine"] == "Rego").unwrap()["source"];
    let v1 = source["version"] == "v1";
    let rego = source["rego"].as_str().unwrap().to_string();
    (name, rego, strings(&source["libs"]), v1)
}

fn library_program(dir: &str) -> RegoProgram {
    let path = library().join(dir).join("template.yaml");
    let (name, rego, libs, v1) = template_rego(&yaml(&path));
    RegoProgram::compile(&name, &path, None, &rego, &libs, v1, &json!({})).unwrap()
}

fn compile(rego: &str) -> Result<RegoProgram, String> {
    compile_with(rego, &[], false)
}

fn compile_with(rego: &str, libs: &[&str], v1: bool) -> Result<RegoProgram, String> {
    let libs: Vec<String> = libs.iter().map(|s| s.to_string()).collect();
    let file = Path::new("/etc/portcullis/policies/t.yaml");
    RegoProgram::compile("t", file, Some(10), rego, &libs, v1, &json!({}))
}

fn review(object: Json) -> RegoInput {
    RegoInput::new(&json!({"operation": "CREATE", "kind": {"kind": "Pod"}, "object": object}))
        .unwrap()
}

fn msgs(violations: &[RegoViolation]) -> Vec<&str> {
    violations.iter().map(|v| v.msg.as_str()).collect()
}

#[test]
fn program_and_input_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<RegoProgram>();
    shared::<RegoInput>();
}

#[test]
fn host_namespaces_v0_code_form_with_lib() {
    let program = library_program("host-namespaces");
    let dir = library().join("host-namespaces/samples/psp-host-namespace");
    let pod = yaml(&dir.join("example_disallowed.yaml"));
    let out = program
        .violations(&review(pod.clone()), &Json::Null, LIMIT)
        .unwrap();
    assert_eq!(
        out,
        vec![RegoViolation {
            msg: "Sharing the host namespace is not allowed: nginx-host-namespace-disallowed"
                .into(),
            details: json!({}),
        }]
    );
    let allowed = yaml(&dir.join("example_allowed.yaml"));
    assert!(program
        .violations(&review(allowed), &Json::Null, LIMIT)
        .unwrap()
        .is_empty());
    // The lib's is_update exempts updates (hostPID is immutable).
    let update = RegoInput::new(&json!({"operation": "UPDATE", "object": pod})).unwrap();
    assert!(program
        .violations(&update, &Json::Null, LIMIT)
        .unwrap()
        .is_empty());
}

#[test]
fn allowedrepos_rego_form_with_parameters() {
    let program = library_program("allowedrepos");
    let pod = json!({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "a", "image": "docker.io/nginx"}, {"name": "b", "image": "gcr.io/x"}],
        "initContainers": [{"name": "i", "image": "quay.io/y"}]}});
    let params = json!({"repos": ["gcr.io/"]});
    let out = program.violations(&review(pod), &params, LIMIT).unwrap();
    assert_eq!(
        msgs(&out),
        vec![
            "container <a> has an invalid image repo <docker.io/nginx>, allowed repos are [\"gcr.io/\"]",
            "initContainer <i> has an invalid image repo <quay.io/y>, allowed repos are [\"gcr.io/\"]",
        ]
    );
}

#[test]
fn every_library_template_compiles() {
    let mut dirs: Vec<_> = std::fs::read_dir(library())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("template.yaml").is_file())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    for dir in &dirs {
        let path = dir.join("template.yaml");
        let (name, rego, libs, v1) = template_rego(&yaml(&path));
        match RegoProgram::compile(&name, &path, None, &rego, &libs, v1, &json!({})) {
            Ok(p) if !p.on_vm() => failures.push(format!("{name}: not on the bytecode VM")),
            Ok(_) => {}
            Err(e) => failures.push(e),
        }
    }
    assert_eq!(dirs.len(), 33);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn v1_syntax() {
    let rego = "package k\n\nviolation contains {\"msg\": msg} if {\n  some c in input.review.object.spec.containers\n  msg := sprintf(\"no %v\", [c.name])\n}\n";
    let program = compile_with(rego, &[], true).unwrap();
    let pod = json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}]}});
    let out = program.violations(&review(pod), &json!({}), LIMIT).unwrap();
    assert_eq!(msgs(&out), vec!["no a", "no b"]);
    // The same text is not Rego v0 (`contains`/`if` need future.keywords there).
    let err = compile(rego).unwrap_err();
    assert!(err.contains("invalid Rego v0"), "{err}");
}

#[test]
fn libs_by_import_and_by_data_path() {
    let lib = "package lib.names\n\nbad(n) {\n  startswith(n, \"x\")\n}\n";
    let rego = "package k\nimport data.lib.names\n\nviolation[{\"msg\": \"imported\"}] {\n  names.bad(input.review.object.metadata.name)\n}\nviolation[{\"msg\": \"direct\"}] {\n  data.lib.names.bad(input.review.object.metadata.name)\n}\n";
    let program = compile_with(rego, &[lib], false).unwrap();
    let out = program
        .violations(
            &review(json!({"metadata": {"name": "xy"}})),
            &json!({}),
            LIMIT,
        )
        .unwrap();
    assert_eq!(msgs(&out), vec!["direct", "imported"]);
}

#[test]
fn missing_violation_rule() {
    let err = compile("package k\n\ndeny[msg] {\n  msg := \"x\"\n}\n").unwrap_err();
    assert!(err.contains("\"t\""), "{err}");
    assert!(err.contains("missing required rules: [violation]"), "{err}");
    assert!(err.contains("/etc/portcullis/policies/t.yaml"), "{err}");
}

#[test]
fn lib_package_must_be_under_lib() {
    let rego = "package k\nviolation[{\"msg\": \"m\"}] { true }\n";
    for lib in ["package helpers\nf(x) { x }\n", "package lib\nf(x) { x }\n"] {
        let err = compile_with(rego, &[lib], false).unwrap_err();
        assert!(err.contains("invalid lib prefix"), "{err}");
        assert!(err.contains("libs[0]"), "{err}");
    }
}

#[test]
fn main_package_may_equal_a_lib_package() {
    // Gatekeeper renames the main package to `template`: no clash with a lib's.
    let lib = "package lib.k\nname := \"lib\"\n";
    let rego = "package lib.k\nviolation[{\"msg\": data.lib.k.name}] { true }\n";
    let program = compile_with(rego, &[lib], false).unwrap();
    let out = program
        .violations(&review(json!({})), &json!({}), LIMIT)
        .unwrap();
    assert_eq!(msgs(&out), vec!["lib"]);
}

#[test]
fn data_references_and_imports_are_restricted() {
    let cases = [
        (
            "violation[{\"msg\": \"m\"}] { data.other.x }",
            "disallowed ref data.other.x",
        ),
        (
            "violation[{\"msg\": \"m\"}] { data.k.x }",
            "disallowed ref data.k.x",
        ),
        (
            "violation[{\"msg\": \"m\"}] { x := data; x }",
            "disallowed ref data",
        ),
        (
            "violation[{\"msg\": \"m\"}] { k := \"inventory\"; data[k] }",
            "disallowed ref data[k]",
        ),
    ];
    for (body, want) in cases {
        let err = compile(&format!("package k\n{body}\n")).unwrap_err();
        assert!(err.contains(want), "{body}: {err}");
        assert!(err.contains("t.yaml:11"), "{body}: {err}");
    }
    let err = compile("package k\nimport input.review\nviolation[{\"msg\": \"m\"}] { review }\n")
        .unwrap_err();
    assert!(err.contains("cannot import input"), "{err}");
    let err = compile("package k\nimport data.inventory\nviolation[{\"msg\": \"m\"}] { true }\n")
        .unwrap_err();
    assert!(err.contains("bad import"), "{err}");
    compile("package k\nimport future.keywords.in\nviolation[{\"msg\": \"m\"}] { 1 in [1] }\n")
        .unwrap();
}

#[test]
fn external_data_is_refused() {
    let rego = "package k\n\nviolation[{\"msg\": \"m\"}] {\n  r := external_data({\"provider\": \"p\", \"keys\": [\"a\"]})\n  r.errors != []\n}\n";
    let err = compile(rego).unwrap_err();
    assert!(err.contains("external_data"), "{err}");
    assert!(err.contains("not available on a host"), "{err}");
    assert!(err.contains("t.yaml:13"), "{err}");
}

#[test]
fn unknown_function_is_refused_at_load() {
    let rego = "package k\n\nviolation[{\"msg\": \"m\"}] {\n  no_such_builtin(1)\n}\n";
    let err = compile(rego).unwrap_err();
    assert!(err.contains("no_such_builtin"), "{err}");
    assert!(err.contains("t.yaml:13"), "{err}");
}

#[test]
fn syntax_error_names_the_file_line() {
    // rego line 4 is the file's line 13 (the rego text starts on line 10).
    let rego = "package k\n\nviolation[{\"msg\": msg}] {\n  msg := = 1\n}\n";
    let err = compile(rego).unwrap_err();
    assert!(
        err.starts_with(
            "ConstraintTemplate \"t\" (/etc/portcullis/policies/t.yaml:13 (rego line 4"
        ),
        "{err}"
    );
    let err = compile_with(
        "package k\nviolation[{\"msg\": \"m\"}] { true }\n",
        &["package lib.x\n\nf(x) { x = = 1 }\ng := 1\n"],
        false,
    )
    .unwrap_err();
    assert!(err.contains("libs[0] line 3"), "{err}");
}

#[test]
fn compile_error_names_the_rule() {
    let rego = "package k\n\nviolation[{\"msg\": msg}] {\n  x > 1\n}\n";
    let err = compile(rego).unwrap_err();
    assert!(err.contains("t.yaml:1"), "{err}");
    assert!(err.contains("violation"), "{err}");
}

#[test]
fn parameters_default_to_an_empty_object() {
    let rego = "package k\nviolation[{\"msg\": sprintf(\"%v\", [input.parameters])}] { true }\n";
    let program = compile(rego).unwrap();
    let input = review(json!({}));
    let out = program.violations(&input, &Json::Null, LIMIT).unwrap();
    assert_eq!(msgs(&out), vec!["{}"]);
    let out = program.violations(&input, &json!({"n": 3}), LIMIT).unwrap();
    assert_eq!(msgs(&out), vec!["{\"n\": 3}"]);
}

#[test]
fn inventory_is_data_inventory() {
    let rego = "package k\nviolation[{\"msg\": \"taken\"}] {\n  data.inventory.namespace[\"prod\"][\"v1\"][\"Service\"][input.review.object.metadata.name]\n}\n";
    let inventory =
        json!({"namespace": {"prod": {"v1": {"Service": {"web": {"kind": "Service"}}}}}});
    let file = Path::new("t.yaml");
    let program = RegoProgram::compile("t", file, None, rego, &[], false, &inventory).unwrap();
    let out = |name: &str| {
        let input = review(json!({"metadata": {"name": name}}));
        program.violations(&input, &json!({}), LIMIT).unwrap()
    };
    assert_eq!(msgs(&out("web")), vec!["taken"]);
    assert!(out("db").is_empty());
    let err = RegoProgram::compile("t", file, None, rego, &[], false, &json!([])).unwrap_err();
    assert!(
        err.contains("data.inventory must be a JSON object"),
        "{err}"
    );
}

#[test]
fn time_limit_cuts_a_long_evaluation() {
    let rego = "package k\nviolation[{\"msg\": sprintf(\"%v\", [n])}] {\n  n := count([x | a := numbers.range(1, 4000)[_]; b := numbers.range(1, 4000)[_]; x := a * b])\n}\n";
    let program = compile(rego).unwrap();
    let start = Instant::now();
    let err = program
        .violations(&review(json!({})), &json!({}), Duration::from_millis(50))
        .unwrap_err();
    let took = start.elapsed();
    assert!(err.contains("exceeded the time limit of 50ms"), "{err}");
    assert!(err.contains("\"t\""), "{err}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[test]
fn violation_must_have_a_string_msg() {
    for (head, want) in [
        ("violation[{\"msg\": 3}]", "its msg is a number"),
        ("violation[{\"message\": \"x\"}]", "it has no msg"),
        ("violation[\"just a string\"]", "it has no msg"),
    ] {
        let program = compile(&format!("package k\n{head} {{ true }}\n")).unwrap();
        let err = program
            .violations(&review(json!({})), &json!({}), LIMIT)
            .unwrap_err();
        assert!(err.contains("ConstraintTemplate \"t\""), "{err}");
        assert!(err.contains(want), "{head}: {err}");
    }
}

#[test]
fn details_default_and_numbers_round_trip() {
    let rego = "package k\nviolation[{\"msg\": \"a\", \"details\": {\"n\": input.parameters.n, \"f\": 1.5}}] { true }\nviolation[{\"msg\": \"b\"}] { true }\nviolation[{\"msg\": \"b\", \"other\": 1}] { true }\n";
    let program = compile(rego).unwrap();
    let out = program
        .violations(
            &review(json!({})),
            &json!({"n": 9007199254740993u64}),
            LIMIT,
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            RegoViolation {
                msg: "b".into(),
                details: json!({})
            },
            RegoViolation {
                msg: "a".into(),
                details: json!({"n": 9007199254740993u64, "f": 1.5})
            },
        ]
    );
    assert!(out[1].details["n"].is_u64());
}

#[test]
fn builtin_errors_are_undefined_as_in_opa() {
    // OPA (and so Gatekeeper) is not strict: a failing builtin makes its expression undefined.
    let rego = "package k\nviolation[{\"msg\": \"bad\"}] { to_number(\"x\") > 1 }\nviolation[{\"msg\": \"div\"}] { 1 / 0 }\nviolation[{\"msg\": \"ok\"}] { true }\n";
    let program = compile(rego).unwrap();
    let out = program
        .violations(&review(json!({})), &json!({}), LIMIT)
        .unwrap();
    assert_eq!(msgs(&out), vec!["ok"]);
}

#[test]
fn evaluation_error_names_the_template_and_line() {
    let rego = "package k\nviolation[{\"msg\": \"m\"}] { x := 1; x := 2 }\n";
    match compile(rego) {
        Err(e) => assert!(e.contains("\"t\""), "{e}"),
        Ok(program) => {
            let err = program
                .violations(&review(json!({})), &json!({}), LIMIT)
                .unwrap_err();
            assert!(err.contains("ConstraintTemplate \"t\""), "{err}");
        }
    }
}

#[test]
fn print_is_allowed_and_silent() {
    let rego =
        "package k\nviolation[{\"msg\": \"m\"}] { print(\"debug\", input.review.operation) }\n";
    let program = compile(rego).unwrap();
    let out = program
        .violations(&review(json!({})), &json!({}), LIMIT)
        .unwrap();
    assert_eq!(msgs(&out), vec!["m"]);
}

#[test]
fn library_templates_run_on_the_bytecode_vm_and_print_falls_back_to_the_interpreter() {
    let with_print =
        "package k\nviolation[{\"msg\": \"m\"}] {\n  print(\"x\")\n  input.review.object.bad\n}\n";
    let program = compile(with_print).unwrap();
    assert!(
        !program.on_vm(),
        "print() is not in the VM: the interpreter runs it"
    );
    let v = program
        .violations(
            &review(json!({"bad": true})),
            &json!({}),
            Duration::from_secs(1),
        )
        .unwrap();
    assert_eq!(v.len(), 1);
    let simple = "package k\nviolation[{\"msg\": \"m\"}] {\n  input.review.object.bad\n}\n";
    assert!(compile(simple).unwrap().on_vm());
}
