//! Tests of [`super::schema`]: every keyword, the Kubernetes structural rules, defaults,
//! unknown fields, hostile input, and the gatekeeper-library's templates and samples.

use serde_json::{json, Value};

use super::schema::{ParameterSchema, MAX_DEPTH};

fn yaml(s: &str) -> Value {
    serde_saphyr::from_str(s).unwrap()
}

fn v1(schema: &str) -> ParameterSchema {
    ParameterSchema::new(Some(&yaml(schema)), true).unwrap()
}

fn refused(schema: &str, structural: bool) -> String {
    ParameterSchema::new(Some(&yaml(schema)), structural).unwrap_err()
}

fn ok(s: &ParameterSchema, params: Value) -> Value {
    s.apply(&params).unwrap()
}

fn errs(s: &ParameterSchema, params: Value) -> Vec<String> {
    s.apply(&params).unwrap_err()
}

const REPOS: &str = "
type: object
properties:
  repos:
    type: array
    items:
      type: string
  exemptImages:
    type: array
    items:
      type: string
";

#[test]
fn nested_paths_name_the_field() {
    let s = v1(REPOS);
    assert_eq!(
        errs(&s, json!({"repos": ["a", 3]})),
        ["spec.parameters.repos[1]: must be a string, not 3"]
    );
    assert_eq!(
        errs(&s, json!({"repos": "a"})),
        ["spec.parameters.repos: must be a list, not \"a\""]
    );
    assert_eq!(
        errs(&s, json!(["x"])),
        ["spec.parameters: must be an object, not [\"x\"]"]
    );
    let good = json!({"repos": ["a", "b"], "exemptImages": []});
    assert_eq!(ok(&s, good.clone()), good);
}

#[test]
fn every_problem_is_reported() {
    let s = v1(REPOS);
    let e = errs(
        &s,
        json!({"repos": [1, true], "exemptImages": [null], "repo": ["x"]}),
    );
    assert_eq!(e.len(), 4, "{e:?}");
}

#[test]
fn unknown_fields_are_errors_listing_the_known_ones() {
    let s = v1(REPOS);
    assert_eq!(
        errs(&s, json!({"repo": ["a"]})),
        [
            "spec.parameters.repo: unknown field (misspelt?): the template's schema declares only \
          exemptImages, repos"
        ]
    );
    let s = v1("
type: object
properties:
  limits:
    type: object
    properties:
      cpu: {type: string}
  empty: {type: object}
");
    assert_eq!(
        errs(&s, json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
        [
            "spec.parameters.limits.memory: unknown field (misspelt?): the template's schema \
          declares only cpu"
        ]
    );
    assert_eq!(
        errs(&s, json!({"empty": {"a b": 1}})),
        ["spec.parameters.empty[\"a b\"]: unknown field: the template's schema declares no fields \
          here"]
    );
}

#[test]
fn preserve_unknown_and_additional_properties_keep_fields() {
    let s = v1("
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  known: {type: string}
  labels:
    type: object
    additionalProperties: {type: string}
  anything:
    type: object
    additionalProperties: true
  closed:
    type: object
    additionalProperties: false
");
    let p = json!({"extra": {"deep": [1]}, "known": "k", "labels": {"a": "b"},
                   "anything": {"x": [1, {"y": null}]}});
    assert_eq!(ok(&s, p.clone()), p);
    assert_eq!(
        errs(&s, json!({"known": 1, "labels": {"a": 2}})),
        [
            "spec.parameters.known: must be a string, not 1",
            "spec.parameters.labels.a: must be a string, not 2"
        ]
    );
    let e = errs(&s, json!({"closed": {"x": 1}}));
    assert!(
        e[0].starts_with("spec.parameters.closed.x: unknown field"),
        "{e:?}"
    );
}

#[test]
fn types_and_numbers() {
    let s = v1("
type: object
properties:
  i: {type: integer, format: int64}
  n: {type: number, format: double}
  b: {type: boolean}
  s: {type: string}
");
    ok(&s, json!({"i": 2, "n": 3, "b": false, "s": ""}));
    ok(&s, json!({"i": 2.0, "n": 1.5}));
    assert_eq!(
        errs(&s, json!({"i": 1.5, "n": "1", "b": "true", "s": 1})),
        [
            "spec.parameters.b: must be a boolean (true or false), not \"true\"",
            "spec.parameters.i: must be an integer, not 1.5",
            "spec.parameters.n: must be a number, not \"1\"",
            "spec.parameters.s: must be a string, not 1",
        ]
    );
}

#[test]
fn required_enum_nullable() {
    let s = v1("
type: object
required: [level]
properties:
  level: {type: string, enum: [baseline, restricted]}
  ratio: {type: number, enum: [1, 2.5]}
  note: {type: string, nullable: true}
  other: {type: string}
");
    ok(&s, json!({"level": "baseline", "ratio": 1.0, "note": null}));
    // A null the schema may not hold is dropped, as kube-apiserver drops it.
    assert_eq!(
        ok(&s, json!({"level": "restricted", "other": null})),
        json!({"level": "restricted"})
    );
    assert_eq!(
        errs(&s, json!({"ratio": 3})),
        [
            "spec.parameters.ratio: must be one of 1, 2.5, not 3",
            "spec.parameters.level: required field is missing"
        ]
    );
    assert_eq!(
        errs(&s, json!({"level": "privileged"})),
        ["spec.parameters.level: must be one of \"baseline\", \"restricted\", not \"privileged\""]
    );
}

#[test]
fn number_bounds() {
    let s = v1("
type: object
properties:
  a: {type: integer, minimum: 1, maximum: 10}
  b: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 1, exclusiveMaximum: true}
  c: {type: number, multipleOf: 0.5}
");
    ok(&s, json!({"a": 1, "b": 0.5, "c": 2.5}));
    ok(&s, json!({"a": 10, "c": 0.1 + 0.2 + 0.2}));
    assert_eq!(
        errs(&s, json!({"a": 0, "b": 0, "c": 0.3})),
        [
            "spec.parameters.a: must be greater than or equal to 1, not 0",
            "spec.parameters.b: must be greater than 0, not 0",
            "spec.parameters.c: must be a multiple of 0.5, not 0.3",
        ]
    );
    assert_eq!(
        errs(&s, json!({"a": 11, "b": 1})),
        [
            "spec.parameters.a: must be less than or equal to 10, not 11",
            "spec.parameters.b: must be less than 1, not 1",
        ]
    );
}

#[test]
fn strings_lists_objects_sizes() {
    let s = v1(r#"
type: object
properties:
  s: {type: string, minLength: 2, maxLength: 3, pattern: '^[a-zé]+$'}
  l: {type: array, minItems: 1, maxItems: 2, uniqueItems: false, items: {type: integer}}
  o: {type: object, minProperties: 1, maxProperties: 1, x-kubernetes-map-type: atomic,
      additionalProperties: {type: string}}
  t: {type: array, x-kubernetes-list-type: atomic, items: {type: string}}
"#);
    ok(&s, json!({"s": "éé", "l": [1], "o": {"a": "b"}, "t": []}));
    assert_eq!(
        errs(&s, json!({"s": "a", "l": [], "o": {}})),
        [
            "spec.parameters.l: must have at least 1 items, not 0",
            "spec.parameters.o: must have at least 1 fields, not 0",
            "spec.parameters.s: must have at least 2 characters, not 1",
        ]
    );
    assert_eq!(
        errs(
            &s,
            json!({"s": "abcd", "l": [1, 2, 3], "o": {"a": "", "b": ""}})
        ),
        [
            "spec.parameters.l: must have at most 2 items, not 3",
            "spec.parameters.o: must have at most 1 fields, not 2",
            "spec.parameters.s: must have at most 3 characters, not 4",
        ]
    );
    assert_eq!(
        errs(&s, json!({"s": "AB"})),
        ["spec.parameters.s: must match the pattern \"^[a-zé]+$\", not \"AB\""]
    );
}

#[test]
fn junctors() {
    let s = v1("
type: object
properties:
  port:
    type: integer
    anyOf: [{minimum: 80, maximum: 80}, {minimum: 8000}]
  one:
    type: string
    oneOf: [{pattern: '^a'}, {pattern: 'b$'}]
  all:
    type: string
    allOf: [{minLength: 1}, {maxLength: 2}]
  notx:
    type: string
    not: {enum: [x]}
  pair:
    type: object
    properties:
      a: {type: string}
      b: {type: string}
    oneOf: [{required: [a]}, {required: [b]}]
");
    ok(
        &s,
        json!({"port": 8080, "one": "ax", "all": "ab", "notx": "y", "pair": {"a": "1"}}),
    );
    ok(&s, json!({"port": 80}));
    let e = errs(
        &s,
        json!({"port": 81, "one": "ab", "all": "abc", "notx": "x",
                           "pair": {}}),
    );
    assert_eq!(e.len(), 5, "{e:?}");
    assert!(e.contains(&"spec.parameters.all: must have at most 2 characters, not 3".into()));
    assert!(e.iter().any(|m| m.starts_with("spec.parameters.port: must match a schema of anyOf (anyOf[0]: spec.parameters.port: must be less than or equal to 80")), "{e:?}");
    assert!(e.contains(
        &"spec.parameters.one: must match exactly one schema of oneOf, matches oneOf[0], oneOf[1]"
            .into()
    ));
    assert!(e.contains(
        &"spec.parameters.notx: must not match the schema under not, but does: \"x\"".into()
    ));
    assert!(e.iter().any(|m| m.starts_with("spec.parameters.pair: must match exactly one schema of oneOf, matches none (oneOf[0]: spec.parameters.pair.a: required field is missing")), "{e:?}");
}

#[test]
fn int_or_string() {
    let s = v1("
type: object
properties:
  a: {x-kubernetes-int-or-string: true}
  b:
    x-kubernetes-int-or-string: true
    anyOf: [{type: integer}, {type: string}]
    pattern: '^[0-9]+%$'
");
    ok(&s, json!({"a": 1, "b": "50%"}));
    ok(&s, json!({"a": "x", "b": 3}));
    assert_eq!(
        errs(&s, json!({"a": 1.5, "b": true})),
        [
            "spec.parameters.a: must be an integer or a string, not 1.5",
            "spec.parameters.b: must be an integer or a string, not true",
        ]
    );
    assert!(refused(
        "{type: object, properties: {a: {type: string, x-kubernetes-int-or-string: true}}}",
        true
    )
    .contains("openAPIV3Schema.properties.a.x-kubernetes-int-or-string: must stand alone"));
}

#[test]
fn defaults_nested_and_in_items() {
    let s = v1("
type: object
properties:
  mode: {type: string, default: audit}
  limits:
    type: object
    default: {}
    properties:
      cpu: {type: string, default: '1'}
      memory: {type: string}
  probes:
    type: array
    items:
      type: object
      properties:
        name: {type: string}
        timeout: {type: integer, default: 5}
  nullable: {type: string, nullable: true, default: x}
  dropped: {type: string, default: why}
");
    assert_eq!(
        ok(
            &s,
            json!({"probes": [{"name": "a"}, {"name": "b", "timeout": 1}],
                      "nullable": null, "dropped": null})
        ),
        json!({"mode": "audit", "limits": {"cpu": "1"}, "nullable": null, "dropped": "why",
               "probes": [{"name": "a", "timeout": 5}, {"name": "b", "timeout": 1}]})
    );
    assert_eq!(
        ok(&s, json!({"mode": "deny", "limits": {"memory": "1Gi"}})),
        json!({"mode": "deny", "limits": {"cpu": "1", "memory": "1Gi"}, "nullable": "x",
               "dropped": "why"})
    );
}

#[test]
fn null_and_absent_parameters() {
    let s = v1(REPOS);
    assert_eq!(ok(&s, Value::Null), Value::Null);
    let s = v1("{type: object, default: {a: 1}, properties: {a: {type: integer}, b: {type: integer, default: 2}}}");
    assert_eq!(ok(&s, Value::Null), json!({"a": 1, "b": 2}));
    let none = ParameterSchema::new(None, true).unwrap();
    assert_eq!(
        ok(&none, json!({"anything": [1]})),
        json!({"anything": [1]})
    );
    assert_eq!(ok(&none, Value::Null), Value::Null);
    let null = ParameterSchema::new(Some(&Value::Null), true).unwrap();
    assert_eq!(ok(&null, json!("x")), json!("x"));
}

#[test]
fn defaults_must_fit_their_schema() {
    let e = refused(
        "{type: object, properties: {a: {type: integer, default: x}}}",
        true,
    );
    assert_eq!(
        e,
        "openAPIV3Schema.properties.a.default: must be an integer, not \"x\""
    );
    let e = refused(
        "{type: object, properties: {a: {type: object, default: {b: 1}}}}",
        true,
    );
    assert!(
        e.starts_with("openAPIV3Schema.properties.a.default.b: unknown field"),
        "{e}"
    );
}

#[test]
fn v1_requires_a_structural_schema() {
    let e = refused("{properties: {a: {type: string}}}", true);
    assert!(e.starts_with("openAPIV3Schema.type: must be set: templates.gatekeeper.sh/v1 requires a structural schema"), "{e}");
    let e = refused(
        "{type: object, properties: {a: {description: no type}}}",
        true,
    );
    assert!(
        e.starts_with("openAPIV3Schema.properties.a.type: must be set"),
        "{e}"
    );
    let e = refused("{type: object, properties: {a: {type: array}}}", true);
    assert_eq!(
        e,
        "openAPIV3Schema.properties.a.items: must be set for type: array (the items' schema)"
    );
    let e = refused(
        "{type: object, properties: {a: {type: string, anyOf: [{type: string}]}}}",
        true,
    );
    assert!(e.starts_with("openAPIV3Schema.properties.a.anyOf[0].type: must not be set under allOf/anyOf/oneOf/not"), "{e}");
    let e = refused(
        "{type: object, allOf: [{properties: {b: {minLength: 1}}}]}",
        true,
    );
    assert!(
        e.starts_with("openAPIV3Schema.allOf[0].properties.b: must also be declared"),
        "{e}"
    );
    let e = refused(
        "{type: object, properties: {a: {type: string}}, additionalProperties: {type: string}}",
        true,
    );
    assert!(
        e.starts_with(
            "openAPIV3Schema.additionalProperties: Kubernetes refuses it beside properties"
        ),
        "{e}"
    );
    ParameterSchema::new(
        Some(&yaml(
            "{type: object, properties: {a: {type: string}}, additionalProperties: true}",
        )),
        true,
    )
    .unwrap();
}

#[test]
fn v1beta1_is_converted_as_gatekeeper_does() {
    let schema =
        "{properties: {repos: {items: {type: string}}, n: {type: integer}, l: {type: array}}}";
    assert!(ParameterSchema::new(Some(&yaml(schema)), true).is_err());
    let s = ParameterSchema::new(Some(&yaml(schema)), false).unwrap();
    // Unknown fields are kept, as Gatekeeper keeps them for v1beta1; types still checked.
    let p = json!({"repos": ["a"], "extra": 1, "l": [{"x": 1}]});
    assert_eq!(ok(&s, p.clone()), p);
    assert_eq!(
        errs(&s, json!({"n": "1"})),
        ["spec.parameters.n: must be an integer, not \"1\""]
    );
    let e = refused(
        "{properties: {a: {x-kubernetes-int-or-string: true}}}",
        false,
    );
    assert!(e.contains("templates.gatekeeper.sh/v1beta1 adds"), "{e}");
}

#[test]
fn refused_keywords_are_named() {
    let cases = [
        (
            "{type: object, $ref: '#/x'}",
            "openAPIV3Schema.$ref: Kubernetes does not support $ref",
        ),
        (
            "{type: object, patternProperties: {}}",
            "openAPIV3Schema.patternProperties: Kubernetes does not support",
        ),
        (
            "{type: array, items: {type: string}, uniqueItems: true}",
            "openAPIV3Schema.uniqueItems: Kubernetes refuses uniqueItems: true",
        ),
        ("{type: 'null'}", "openAPIV3Schema.type: cannot be null"),
        ("{type: str}", "openAPIV3Schema.type: must be one of object"),
        (
            "{type: array, items: [{type: string}]}",
            "openAPIV3Schema.items: must be a schema, not a list",
        ),
        (
            "{type: string, format: email}",
            "openAPIV3Schema.format: format \"email\" is not supported",
        ),
        (
            "{type: object, x-kubernetes-validations: []}",
            "openAPIV3Schema.x-kubernetes-validations: not supported",
        ),
        (
            "{type: array, items: {type: string}, x-kubernetes-list-type: set}",
            "openAPIV3Schema.x-kubernetes-list-type: only atomic",
        ),
        (
            "{type: object, x-kubernetes-preserve-unknown-fields: false}",
            "openAPIV3Schema.x-kubernetes-preserve-unknown-fields: must be true or absent",
        ),
        (
            "{type: object, const: 1}",
            "openAPIV3Schema.const: unknown schema keyword \"const\"",
        ),
        (
            "{type: integer, exclusiveMinimum: 3}",
            "openAPIV3Schema.exclusiveMinimum: must be true or false, not 3",
        ),
        (
            "{type: string, pattern: '(('}",
            "openAPIV3Schema.pattern: not a valid regular expression",
        ),
        (
            "{type: object, properties: {a: 1}}",
            "openAPIV3Schema.properties.a: must be a schema (a mapping), not 1",
        ),
        (
            "{type: integer, minimum: '1'}",
            "openAPIV3Schema.minimum: must be a number",
        ),
        (
            "{type: string, maxLength: -1}",
            "openAPIV3Schema.maxLength: must be a non-negative integer",
        ),
    ];
    for (schema, want) in cases {
        let e = refused(schema, true);
        assert!(e.starts_with(want), "{schema}: {e}");
    }
    // Annotations are fine, and so is a title or example anywhere outside junctors.
    v1(
        "{type: object, title: t, description: d, example: {a: 1}, externalDocs: {url: u}, \
        properties: {a: {type: integer, format: int32, example: 3}}}",
    );
}

/// A value nested `depth` levels, built and taken apart without recursion.
fn deep(depth: usize, wrap: impl Fn(Value) -> Value) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = wrap(v);
    }
    v
}

fn dismantle(v: Value) {
    let mut stack = vec![v];
    while let Some(mut v) = stack.pop() {
        match &mut v {
            Value::Array(a) => stack.append(a),
            Value::Object(m) => stack.extend(std::mem::take(m).into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// `{"type": "object", "properties": {"a": v}}`, without `json!` (which would serialize
/// `v` recursively).
fn object_of(v: Value) -> Value {
    let mut props = serde_json::Map::new();
    props.insert("a".into(), v);
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), Value::Object(props));
    Value::Object(m)
}

#[test]
fn hostile_nesting_is_refused_not_recursed() {
    let too_deep = format!("spec.parameters: nested deeper than {MAX_DEPTH} levels");
    let params = deep(100_000, |v| Value::Array(vec![v]));
    let open = json!({"x-kubernetes-preserve-unknown-fields": true});
    let open = ParameterSchema::new(Some(&open), true).unwrap();
    assert_eq!(
        open.apply(&params).unwrap_err(),
        std::slice::from_ref(&too_deep)
    );
    let none = ParameterSchema::new(None, true).unwrap();
    assert_eq!(none.apply(&params).unwrap_err(), [too_deep]);
    dismantle(params);

    let schema = deep(100_000, object_of);
    for structural in [true, false] {
        let e = ParameterSchema::new(Some(&schema), structural).unwrap_err();
        let want = format!(
            "openAPIV3Schema: nested deeper than {MAX_DEPTH} levels; a parameter schema needs \
             far fewer"
        );
        assert_eq!(e, want);
    }
    dismantle(schema);

    // Well inside the bound, nesting works: 20 levels of objects, defaulted all the way.
    let leaf = json!({"type": "integer", "default": 7});
    let schema = (0..20).fold(leaf, |v, _| {
        let mut o = object_of(v);
        o["default"] = json!({});
        o
    });
    let s = ParameterSchema::new(Some(&schema), true).unwrap();
    let got = s.apply(&json!({})).unwrap();
    assert_eq!(got.pointer(&"/a".repeat(20)), Some(&json!(7)));
    let e = s.apply(&json!({"a": {"a": {"b": 1}}})).unwrap_err();
    assert!(
        e[0].starts_with("spec.parameters.a.a.b: unknown field"),
        "{e:?}"
    );
}

#[test]
fn the_gatekeeper_library_templates_accept_their_samples() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gatekeeper-library");
    let mut templates = 0;
    let mut constraints = 0;
    let mut problems = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs.iter().filter(|d| d.join("template.yaml").exists()) {
        let text = std::fs::read_to_string(dir.join("template.yaml")).unwrap();
        let template: Value = serde_saphyr::from_str(&text).unwrap();
        let structural = match template["apiVersion"].as_str() {
            Some("templates.gatekeeper.sh/v1") => true,
            Some("templates.gatekeeper.sh/v1beta1") => false,
            other => panic!("{}: apiVersion {other:?}", dir.display()),
        };
        let crd = &template["spec"]["crd"]["spec"];
        let schema =
            match ParameterSchema::new(crd["validation"].get("openAPIV3Schema"), structural) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{}: template: {e}", dir.display()));
                    continue;
                }
            };
        templates += 1;
        let kind = crd["names"]["kind"].as_str().unwrap();
        for sample in std::fs::read_dir(dir.join("samples")).unwrap() {
            let file = sample.unwrap().path().join("constraint.yaml");
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let constraint: Value = serde_saphyr::from_str(&text).unwrap();
            if constraint["kind"].as_str() != Some(kind) {
                continue;
            }
            constraints += 1;
            let params = constraint["spec"].get("parameters").unwrap_or(&Value::Null);
            if let Err(e) = schema.apply(params) {
                problems.push(format!("{}: {e:?}", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!((templates, constraints), (33, 45));
}
