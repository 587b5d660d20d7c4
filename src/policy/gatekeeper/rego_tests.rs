//! Unit tests of the Rego engine: the gatekeeper-library's templates (tests/fixtures) and
//! small templates for each of Gatekeeper's rules at load and at evaluation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::rego::negation::{rewrite, Refusal};
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
        if let Err(e) = RegoProgram::compile(&name, &path, None, &rego, &libs, v1, &json!({})) {
            failures.push(e);
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

/// OPA evaluates the references and calls among a negated call's arguments before the `not`
/// (rewriteDynamicTerms, rewriteExprTerms): undefined there makes the whole body undefined.
/// A reference alone, or one side of `==`, stays under the `not`.
#[test]
fn negated_calls_evaluate_their_arguments_first_as_in_opa() {
    let rego = r#"package k
f(_) = true
g(x) { x == 1 }
r { false }
violation[{"msg": "call"}] { not f(input.parameters.missing) }
violation[{"msg": "user"}] { not g(input.parameters.missing) }
violation[{"msg": "builtin"}] { not startswith(input.parameters.missing, "a") }
violation[{"msg": "count"}] { not count(input.parameters.missing) > 0 }
violation[{"msg": "neq"}] { not input.parameters.missing != 1 }
violation[{"msg": "index"}] { not input.parameters.a[input.parameters.missing] }
violation[{"msg": "array"}] { not f([input.parameters.missing]) }
violation[{"msg": "rule arg"}] { not f(r) }
violation[{"msg": "with"}] { not f(input.parameters.missing) with input.x as 1 }
violation[{"msg": "plain"}] { f(input.parameters.missing) }
violation[{"msg": "ref"}] { not input.parameters.missing }
violation[{"msg": "eq"}] { not input.parameters.missing == 1 }
violation[{"msg": "rule"}] { not r }
violation[{"msg": "defined"}] { not g(input.parameters.n) }
"#;
    let program = compile(rego).unwrap();
    let params = json!({"n": 2, "a": {}});
    let out = program
        .violations(&review(json!({})), &params, LIMIT)
        .unwrap();
    assert_eq!(msgs(&out), vec!["defined", "eq", "ref", "rule"]);
}

#[test]
fn negated_calls_in_v1_comprehension_and_every_bodies() {
    let rego = r#"package k
f(_) := true
violation contains {"msg": "v1"} if not f(input.parameters.missing)
violation contains {"msg": "compr"} if {
  xs := [x | some x in [1]; not f(input.parameters.missing)]
  count(xs) == 0
}
violation contains {"msg": "every"} if {
  every x in [1] { not f(input.parameters.missing) }
}
violation contains {"msg": "else"} if g(1)
g(x) := false if x == 2 else := true if not f(input.parameters.missing)
"#;
    let program = compile_with(rego, &[], true).unwrap();
    let out = program
        .violations(&review(json!({})), &json!({}), LIMIT)
        .unwrap();
    assert_eq!(msgs(&out), vec!["compr"]);
}

/// A negation that cannot be rewritten safely is refused at load, naming the line; errors in
/// a rewritten module keep their lines.
#[test]
fn negation_refusals_and_errors_name_the_line() {
    let rego = "package k\nviolation[{\"msg\": \"m\"}] {\n  not f(input.a[_])\n}\nf(_) = true\n";
    let err = compile(rego).unwrap_err();
    assert!(err.contains("t.yaml:12 (rego line 3, column 9)"), "{err}");
    assert!(err.contains("var _ is unsafe"), "{err}");
    let rego = rego.replace("input.a[_])", "input.a)\n  x := 1\n  x := 2");
    let err = compile(&rego).unwrap_err();
    assert!(err.contains("(rego line 4, column 3)"), "{err}");
}

/// The text of a module with `body` after its package, rewritten (lines kept, idempotent).
fn rw(v1: bool, body: &str) -> Result<String, Refusal> {
    let text = format!("package t\n\n{body}\n");
    let out = rewrite(&text, v1, &BTreeSet::new())?.unwrap_or_else(|| text.clone());
    assert_eq!(out.lines().count(), text.lines().count(), "lines kept");
    let again = rewrite(&out, v1, &BTreeSet::new())?;
    assert!(again.is_none(), "idempotent: {out}");
    Ok(out["package t\n\n".len()..out.len() - 1].to_string())
}

fn v0(body: &str) -> String {
    rw(false, body).unwrap()
}

#[test]
fn calls_hoist_their_reference_arguments() {
    let cases = [
        // A builtin; a user function; a rule name (ResolveRefs makes it a reference).
        (
            "p { not startswith(input.a.b, \"x\") }",
            "p { __gk_dyn_0__ := input.a.b; not startswith(__gk_dyn_0__, \"x\") }",
        ),
        (
            "r := 1\nf(_) := true\np { not f(r) }",
            "r := 1\nf(_) := true\np { __gk_dyn_0__ := r; not f(__gk_dyn_0__) }",
        ),
        (
            "p { not data.lib.f(input.a) }",
            "p { __gk_dyn_0__ := input.a; not data.lib.f(__gk_dyn_0__) }",
        ),
        // Nested in arrays, objects and calls (a call is hoisted whole: expandExpr).
        (
            "p { not f([x.y, 1], {\"k\": z.w}, count(q.r)) }",
            "p { __gk_dyn_0__ := x.y; __gk_dyn_1__ := z.w; __gk_dyn_2__ := count(q.r); \
          not f([__gk_dyn_0__, 1], {\"k\": __gk_dyn_1__}, __gk_dyn_2__) }",
        ),
        // Locals, scalars and comprehensions stay; generated names are not reused.
        (
            "p { __gk_dyn_4__ := 1; not f(__gk_dyn_4__, a.b) }",
            "p { __gk_dyn_4__ := 1; __gk_dyn_5__ := a.b; not f(__gk_dyn_4__, __gk_dyn_5__) }",
        ),
        (
            "p { x := 1; not f(x, \"a\", [y | y := 1]) }",
            "p { x := 1; not f(x, \"a\", [y | y := 1]) }",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(v0(input), want);
    }
}

#[test]
fn operators_and_terms_as_opa() {
    let cases = [
        // `==` is unification (rewriteEquals): a reference side stays.
        ("p { not a.b == c }", "p { not a.b == c }"),
        ("p { not [a.b] == c }", "p { __gk_dyn_0__ := a.b; not [__gk_dyn_0__] == c }"),
        ("p { not a.b != c }", "p { __gk_dyn_0__ := a.b; not __gk_dyn_0__ != c }"),
        ("p { not count(a.b) > 0 }",
         "p { __gk_dyn_0__ := count(a.b); not __gk_dyn_0__ > 0 }"),
        ("p { not x + 1 > a.b }", "p { __gk_dyn_0__ := (x + 1); __gk_dyn_1__ := a.b; \
          not __gk_dyn_0__ > __gk_dyn_1__ }"),
        ("import future.keywords.in\np { x := 1; not x in input.a }",
         "import future.keywords.in\np { x := 1; __gk_dyn_0__ := input.a; not x in __gk_dyn_0__ }"),
        // A term: the reference stays, its dynamic indexes are hoisted.
        ("p { not input.a }", "p { not input.a }"),
        ("p { not input.a[b.c].d }",
         "p { __gk_dyn_0__ := b.c; not input.a[__gk_dyn_0__].d }"),
    ];
    for (input, want) in cases {
        assert_eq!(v0(input), want);
    }
}

#[test]
fn every_kind_of_body_and_with() {
    let cases = [
        (
            "p { s := {y | y := input.ys[_]; not f(y.z)} }",
            "p { s := {y | y := input.ys[_]; __gk_dyn_0__ := y.z; not f(__gk_dyn_0__)} }",
        ),
        (
            "p { not f(x.y) with input as {} }",
            "p { __gk_dyn_0__ := x.y with input as {}; not f(__gk_dyn_0__) with input as {} }",
        ),
        (
            "p = 1 { false } else = 2 {\n  not f(x.y)\n}",
            "p = 1 { false } else = 2 {\n  __gk_dyn_0__ := x.y; not f(__gk_dyn_0__)\n}",
        ),
        // Multi-line arguments: the line breaks stay inside the call.
        (
            "p {\n  not f({\"a\":\n    x.y}, z.w[\n1])\n}",
            "p {\n  __gk_dyn_0__ := x.y; __gk_dyn_1__ := z.w[ 1]; \
          not f({\"a\":\n    __gk_dyn_0__}, __gk_dyn_1__\n)\n}",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(v0(input), want);
    }
    let v1 = [
        (
            "p contains x if not f(x.y)",
            "p contains x if { __gk_dyn_0__ := x.y; not f(__gk_dyn_0__) }",
        ),
        (
            "q if {\n  every x in input.xs { not f(x.y) }\n}",
            "q if {\n  every x in input.xs { __gk_dyn_0__ := x.y; not f(__gk_dyn_0__) }\n}",
        ),
        (
            "r := 1 if false else := 2 if not f(input.a)",
            "r := 1 if false else := 2 if { __gk_dyn_0__ := input.a; not f(__gk_dyn_0__) }",
        ),
    ];
    for (input, want) in v1 {
        assert_eq!(rw(true, input).unwrap(), want);
    }
}

#[test]
fn refusals_name_the_line() {
    for (body, why) in [
        ("p {\n  not f(x[_])\n}", "`_`"),
        ("p {\n  not f(x[ # c\n  1])\n}", "comment"),
        ("p {\n  not f(x.y) with input as g(1)\n}", "`with` value"),
        ("p {\n  not f(x[[y | not g(y.z)][0]])\n}", "another negated"),
    ] {
        let err = rw(false, body).unwrap_err();
        assert_eq!(err.line, 4, "{body}: {err:?}");
        assert!(err.msg.contains(why), "{body}: {}", err.msg);
    }
}

#[test]
fn undefined_assignment_fails_the_body() {
    // As OPA: a body stops at an assignment of an undefined value. (regorus's bytecode VM
    // goes on past it, which is why evaluations run on the interpreter.)
    for (body, want) in [
        ("  x := input.review.object.missing\n  true", 0),
        ("  y := input.review.object\n  x := y.missing\n  true", 0),
        ("  x := input.review.object.present\n  x", 1),
    ] {
        let rego = format!("package k\nviolation[{{\"msg\": \"m\"}}] {{\n{body}\n}}\n");
        let out = compile(&rego)
            .unwrap()
            .violations(&review(json!({"present": true})), &json!({}), LIMIT)
            .unwrap();
        assert_eq!(out.len(), want, "{body}");
    }
}

/// Hostile or broken Rego is an error, never a panic: every prefix of every library
/// template's Rego (cut at every 13th byte) and a few mangled ones compile or fail cleanly.
#[test]
fn broken_rego_is_an_error_not_a_panic() {
    let mut dirs: Vec<_> = std::fs::read_dir(library())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("template.yaml").is_file())
        .collect();
    dirs.sort();
    let mut tried = 0;
    for dir in dirs.iter().step_by(3) {
        let path = dir.join("template.yaml");
        let (name, rego, libs, v1) = template_rego(&yaml(&path));
        let cuts = (0..rego.len())
            .step_by(13)
            .filter(|&i| rego.is_char_boundary(i));
        for cut in cuts {
            for text in [
                rego[..cut].to_string(),
                format!("{}}}{{[(\"", &rego[..cut]),
                rego[..cut].replace('{', "{{"),
            ] {
                tried += 1;
                let outcome = std::panic::catch_unwind(|| {
                    RegoProgram::compile(&name, &path, Some(10), &text, &libs, v1, &json!({}))
                        .map(|_| ())
                });
                assert!(outcome.is_ok(), "{name}: compiling a cut at {cut} panicked");
            }
        }
    }
    assert!(tried > 1000, "{tried}");
}
