//! A Constraint's `spec.parameters` checked against its ConstraintTemplate's
//! `spec.crd.spec.validation.openAPIV3Schema`, once, when `policyDir` is loaded.
//!
//! On a cluster, Gatekeeper turns each template into a CRD whose `spec.parameters` carries the
//! template's schema, and kube-apiserver then checks every Constraint: it prunes unknown
//! fields, applies `default`s and validates (apiextensions-apiserver
//! `pkg/apiserver/schema/{pruning,defaulting}`, kube-openapi `pkg/validation/validate`).
//! Gatekeeper also refuses a template whose CRD kube-apiserver would refuse
//! (`ValidateCustomResourceDefinition`: a structural schema, no `$ref`, no `uniqueItems`, ...).
//! There is no API server here, so [`ParameterSchema::new`] does the CRD's checks and
//! [`ParameterSchema::apply`] the Constraint's, with one deliberate difference: a field the
//! schema does not declare is an error naming it and the declared ones, not silently pruned
//! (a misspelt parameter dropped on the floor could weaken a policy; a gate fails closed).
//! This is also what Gatekeeper's own client does outside a cluster (frameworks
//! `crds.ValidateCR` fails on "unknown fields"). Fields stay open where the schema says so:
//! `x-kubernetes-preserve-unknown-fields: true`, or `additionalProperties`.
//!
//! `templates.gatekeeper.sh/v1beta1` (and v1 with `legacySchema: true`) is converted as
//! Gatekeeper converts it (frameworks `AddPreserveUnknownFields`): every schema with no
//! `type` or `type: object` gets `x-kubernetes-preserve-unknown-fields: true`, and an array
//! with no `items` gets `items: {x-kubernetes-preserve-unknown-fields: true}`; the result is
//! then checked like a v1 schema. That is how Gatekeeper accepts non-structural v1beta1
//! schemas, and it means unknown parameters of a v1beta1 template are kept, not refused.
//!
//! Supported: `type` (object, array, string, integer, number, boolean), `properties`,
//! `items`, `additionalProperties` (bool or schema), `required`, `enum`, `nullable`,
//! `default`, `minimum`/`maximum` with boolean `exclusiveMinimum`/`exclusiveMaximum`,
//! `multipleOf`, `minLength`/`maxLength` (in characters), `pattern` (RE2 syntax, unanchored,
//! as Go's `regexp`), `minItems`/`maxItems`, `minProperties`/`maxProperties`,
//! `allOf`/`anyOf`/`oneOf`/`not`, `x-kubernetes-preserve-unknown-fields`,
//! `x-kubernetes-int-or-string`, `x-kubernetes-list-type: atomic`, `x-kubernetes-map-type`;
//! annotations `description`, `title`, `example`, `externalDocs`, `$schema`, and `format`
//! int32/int64/float/double. Refused with an error naming it: what Kubernetes refuses in a
//! CRD (`$ref`, `id`, `definitions`, `dependencies`, `patternProperties`, `additionalItems`,
//! `uniqueItems: true`, `type: null`, `items` as an array), what is not implemented here
//! (other `format`s, which kube-openapi validates, `x-kubernetes-validations`,
//! `x-kubernetes-embedded-resource`, list types set/map) and any other keyword.
//!
//! Why our own code: no library in the tree checks Kubernetes' `openAPIV3Schema` dialect.
//! k8s-openapi has the `JSONSchemaProps` type but no validator; kube-openapi's validator,
//! structural checks, defaulting and pruning exist only in Go. The `jsonschema` crate (not
//! a dependency) implements JSON Schema drafts 4, 6, 7, 2019-09 and 2020-12: it ignores
//! unknown keywords such as `nullable` and `x-kubernetes-*` instead of honouring them, does
//! not apply defaults, and knows nothing of the structural-schema rules.
//!
//! Input is bounded: schemas and parameters nested deeper than [`MAX_DEPTH`] are refused
//! before any recursion, so hostile nesting cannot overflow the stack.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::policy::quote;

use apply::{apply_node, deeper_than, key_path, show};

mod apply;

/// Deepest JSON nesting accepted in a schema or in parameters (serde-saphyr's own default
/// budget is 64 levels for a whole document).
pub const MAX_DEPTH: usize = 128;
const ROOT: &str = "openAPIV3Schema";
const PARAMS: &str = "spec.parameters";
const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";

/// A template's parameter schema, checked once at load.
#[derive(Debug, Clone)]
pub struct ParameterSchema {
    /// None: the template has no schema, and any parameters are kept as they are.
    root: Option<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

/// `additionalProperties`.
#[derive(Debug, Clone, Default)]
enum Extra {
    #[default]
    Absent,
    Deny,
    Allow,
    Schema(Box<Node>),
}

/// One compiled schema. Under a junctor (`allOf` ...) only the value checks are set.
#[derive(Debug, Clone, Default)]
struct Node {
    ty: Option<Ty>,
    nullable: bool,
    int_or_string: bool,
    preserve_unknown: bool,
    properties: BTreeMap<String, Node>,
    additional: Extra,
    items: Option<Box<Node>>,
    default: Option<Value>,
    required: Vec<String>,
    enumeration: Option<Vec<Value>>,
    minimum: Option<(f64, bool)>,
    maximum: Option<(f64, bool)>,
    multiple_of: Option<f64>,
    length: (Option<u64>, Option<u64>),
    pattern: Option<Regex>,
    item_count: (Option<u64>, Option<u64>),
    field_count: (Option<u64>, Option<u64>),
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Box<Node>>,
}

impl ParameterSchema {
    /// `schema`: the openAPIV3Schema value (None/null: no schema — Gatekeeper then accepts
    /// any parameters, preserve-unknown). `structural`: true for templates.gatekeeper.sh/v1,
    /// which requires a structural schema; false for v1beta1 (or v1 with
    /// `legacySchema: true`), converted first as Gatekeeper does (see the module doc).
    /// The error lists every problem, `; `-separated, each naming its schema path.
    pub fn new(schema: Option<&Value>, structural: bool) -> Result<Self, String> {
        let Some(schema) = schema.filter(|s| !s.is_null()) else {
            return Ok(Self { root: None });
        };
        if deeper_than(schema, MAX_DEPTH) {
            return Err(format!(
                "{ROOT}: nested deeper than {MAX_DEPTH} levels; a parameter schema needs far fewer"
            ));
        }
        let converted;
        let schema = if structural {
            schema
        } else {
            let mut copy = schema.clone();
            add_preserve_unknown(&mut copy);
            converted = copy;
            &converted
        };
        let mut c = Compiler {
            errs: Vec::new(),
            legacy: !structural,
        };
        let root = c.node(schema, ROOT, None);
        if c.errs.is_empty() {
            Ok(Self { root: Some(root) })
        } else {
            Err(c.errs.join("; "))
        }
    }

    /// Checks `parameters` (the Constraint's spec.parameters; Null/absent allowed) and returns
    /// them with defaults applied, or every problem found, each naming the path
    /// (`spec.parameters.repos[1]: must be a string, not 3`).
    pub fn apply(&self, parameters: &Value) -> Result<Value, Vec<String>> {
        if deeper_than(parameters, MAX_DEPTH) {
            return Err(vec![format!(
                "{PARAMS}: nested deeper than {MAX_DEPTH} levels"
            )]);
        }
        let Some(root) = &self.root else {
            return Ok(parameters.clone());
        };
        let mut errs = Vec::new();
        let out = match (parameters, &root.default) {
            // Absent (or null) parameters: the schema's own default, if any, as for any field.
            (Value::Null, Some(d)) if !root.nullable => apply_node(root, d, PARAMS, &mut errs),
            (Value::Null, _) => Value::Null,
            (v, _) => apply_node(root, v, PARAMS, &mut errs),
        };
        if errs.is_empty() {
            Ok(out)
        } else {
            Err(errs)
        }
    }
}

// ---- compiling (the CRD's checks) ----

struct Compiler {
    errs: Vec<String>,
    legacy: bool,
}

impl Compiler {
    fn err(&mut self, msg: String) {
        self.errs.push(msg);
    }

    /// `outer`: for a schema under allOf/anyOf/oneOf/not, where only value checks may
    /// appear, the structural schema it applies to (which must declare its fields).
    fn node(&mut self, v: &Value, path: &str, outer: Option<&Map<String, Value>>) -> Node {
        let nested = outer.is_some();
        let mut n = Node::default();
        let Some(m) = v.as_object() else {
            self.err(format!(
                "{path}: must be a schema (a mapping), not {}",
                show(v)
            ));
            return n;
        };
        let errors_before = self.errs.len();
        for (k, val) in m {
            let at = format!("{path}.{k}");
            if nested && forbidden_nested(k, val) {
                self.err(format!(
                    "{at}: must not be set under allOf/anyOf/oneOf/not (a structural schema \
                     keeps only value checks there); set it on the schema itself"
                ));
                continue;
            }
            self.keyword(&mut n, m, k, val, &at, outer);
        }
        if !nested {
            self.structure(&n, m, path);
            if let (Some(d), true) = (&n.default, self.errs.len() == errors_before) {
                let mut derrs = Vec::new();
                apply_node(&n, d, &format!("{path}.default"), &mut derrs);
                self.errs.extend(derrs);
            }
        }
        n
    }

    fn keyword(
        &mut self,
        n: &mut Node,
        m: &Map<String, Value>,
        k: &str,
        v: &Value,
        at: &str,
        outer: Option<&Map<String, Value>>,
    ) {
        match k {
            "type" => n.ty = self.ty(v, at),
            "nullable" => n.nullable = self.flag(v, at),
            "default" => n.default = Some(v.clone()).filter(|d| !d.is_null()),
            "description" | "title" => {
                self.string(v, at);
            }
            "example" | "externalDocs" | "$schema" => {}
            "format" => self.format(v, at),
            PRESERVE => {
                n.preserve_unknown = self.flag(v, at);
                if v == &Value::Bool(false) {
                    self.err(format!(
                        "{at}: must be true or absent (Kubernetes refuses false)"
                    ));
                }
            }
            INT_OR_STRING => n.int_or_string = self.flag(v, at),
            "properties" | "items" | "additionalProperties" => self.children(n, k, v, at, outer),
            "allOf" | "anyOf" | "oneOf" | "not" => {
                self.junctor(n, m, k, v, at, outer.or(Some(m)));
            }
            _ => self.check_keyword(n, m, k, v, at),
        }
    }

    fn check_keyword(
        &mut self,
        n: &mut Node,
        m: &Map<String, Value>,
        k: &str,
        v: &Value,
        at: &str,
    ) {
        match k {
            "required" => n.required = self.strings(v, at),
            "enum" => match v.as_array() {
                Some(list) => n.enumeration = Some(list.clone()),
                None => self.err(format!("{at}: must be a list of values")),
            },
            "minimum" => n.minimum = self.num(v, at).map(|x| (x, flag_of(m, "exclusiveMinimum"))),
            "maximum" => n.maximum = self.num(v, at).map(|x| (x, flag_of(m, "exclusiveMaximum"))),
            "exclusiveMinimum" | "exclusiveMaximum" => {
                self.flag(v, at);
            }
            "multipleOf" => match self.num(v, at) {
                Some(x) if x > 0.0 => n.multiple_of = Some(x),
                Some(_) => self.err(format!("{at}: must be greater than 0")),
                None => {}
            },
            "minLength" => n.length.0 = self.count(v, at),
            "maxLength" => n.length.1 = self.count(v, at),
            "minItems" => n.item_count.0 = self.count(v, at),
            "maxItems" => n.item_count.1 = self.count(v, at),
            "minProperties" => n.field_count.0 = self.count(v, at),
            "maxProperties" => n.field_count.1 = self.count(v, at),
            "pattern" => n.pattern = self.pattern(v, at),
            "uniqueItems" => {
                if self.flag(v, at) {
                    self.err(format!(
                        "{at}: Kubernetes refuses uniqueItems: true in a CRD (its \
                         cost is quadratic); remove it"
                    ));
                }
            }
            "x-kubernetes-list-type" => match v.as_str() {
                Some("atomic") if m.get("type") == Some(&Value::from("array")) => {}
                Some("atomic") => self.err(format!("{at}: needs type: array")),
                _ => self.err(format!(
                    "{at}: only atomic is supported here, not {}",
                    show(v)
                )),
            },
            "x-kubernetes-map-type" => match v.as_str() {
                Some("atomic" | "granular") if m.get("type") == Some(&Value::from("object")) => {}
                Some("atomic" | "granular") => self.err(format!("{at}: needs type: object")),
                _ => self.err(format!("{at}: must be atomic or granular, not {}", show(v))),
            },
            "$ref" | "id" | "definitions" | "dependencies" | "patternProperties"
            | "additionalItems" => self.err(format!(
                "{at}: Kubernetes does not support {k} in a CRD schema; remove it"
            )),
            "x-kubernetes-validations"
            | "x-kubernetes-embedded-resource"
            | "x-kubernetes-list-map-keys" => self.err(format!(
                "{at}: not supported in Gatekeeper parameter schemas here; remove it"
            )),
            _ => self.err(format!(
                "{at}: unknown schema keyword {}; Kubernetes' openAPIV3Schema has no such \
                 keyword (misspelt?)",
                quote(k)
            )),
        }
    }

    fn children(
        &mut self,
        n: &mut Node,
        k: &str,
        v: &Value,
        at: &str,
        outer: Option<&Map<String, Value>>,
    ) {
        let nested = outer.is_some();
        let outer_of = |key: &str| outer.and_then(|o| o.get(key));
        match (k, v) {
            ("properties", Value::Object(props)) => {
                for (name, s) in props {
                    let p = key_path(at, name);
                    let o = outer_of("properties")
                        .and_then(|ps| ps.get(name))
                        .and_then(Value::as_object);
                    if nested && o.is_none() {
                        self.err(format!(
                            "{p}: must also be declared in the properties outside \
                             allOf/anyOf/oneOf/not (Kubernetes: structural schema)"
                        ));
                        continue;
                    }
                    let child = self.node(s, &p, o);
                    n.properties.insert(name.clone(), child);
                }
            }
            ("items", Value::Array(_)) => {
                self.err(format!("{at}: must be a schema, not a list (Kubernetes)"))
            }
            ("items", _) => {
                let o = outer_of("items").and_then(Value::as_object);
                if nested && o.is_none() {
                    self.err(format!(
                        "{at}: must also be declared outside allOf/anyOf/oneOf/not \
                         (Kubernetes: structural schema)"
                    ));
                    return;
                }
                n.items = Some(Box::new(self.node(v, at, o)));
            }
            ("additionalProperties", Value::Bool(b)) => {
                n.additional = if *b { Extra::Allow } else { Extra::Deny }
            }
            ("additionalProperties", _) => {
                n.additional = Extra::Schema(Box::new(self.node(v, at, None)))
            }
            _ => self.err(format!("{at}: must be a mapping of field names to schemas")),
        }
    }

    fn junctor(
        &mut self,
        n: &mut Node,
        m: &Map<String, Value>,
        k: &str,
        v: &Value,
        at: &str,
        outer: Option<&Map<String, Value>>,
    ) {
        if k == "not" {
            n.not = Some(Box::new(self.node(v, at, outer)));
            return;
        }
        let Some(list) = v.as_array() else {
            return self.err(format!("{at}: must be a list of schemas"));
        };
        // Kubernetes' own spelling of int-or-string (anyOf: [integer, string]) may use `type`.
        let int_or_string = flag_of(m, INT_OR_STRING);
        let pattern = serde_json::json!([{"type": "integer"}, {"type": "string"}]);
        let skip = |i: usize, s: &Value| {
            int_or_string
                && ((k == "anyOf" && v == &pattern)
                    || (k == "allOf" && i == 0 && s == &serde_json::json!({"anyOf": pattern})))
        };
        let nodes: Vec<Node> = (list.iter().enumerate())
            .filter(|(i, s)| !skip(*i, s))
            .map(|(i, s)| self.node(s, &format!("{at}[{i}]"), outer))
            .collect();
        match k {
            "allOf" => n.all_of = nodes,
            "anyOf" => n.any_of = nodes,
            _ => n.one_of = nodes,
        }
    }

    /// The structural-schema rules that concern a whole (non-nested) schema.
    fn structure(&mut self, n: &Node, m: &Map<String, Value>, path: &str) {
        if n.ty.is_none() && !n.int_or_string && !n.preserve_unknown && !m.contains_key("type") {
            self.err(format!(
                "{path}.type: must be set: templates.gatekeeper.sh/v1 requires a structural \
                 schema, with a type (object, array, string, integer, number, boolean) at every \
                 level, or {PRESERVE}: true, or {INT_OR_STRING}: true"
            ));
        }
        if n.ty == Some(Ty::Array) && n.items.is_none() && !m.contains_key("items") {
            self.err(format!(
                "{path}.items: must be set for type: array (the items' schema)"
            ));
        }
        if !n.properties.is_empty() && matches!(n.additional, Extra::Deny | Extra::Schema(_)) {
            self.err(format!(
                "{path}.additionalProperties: Kubernetes refuses it beside properties (unless \
                 it is true): properties are for fixed fields, additionalProperties for maps"
            ));
        }
        if n.int_or_string && (n.preserve_unknown || m.contains_key("type")) {
            let hint = if self.legacy {
                " (templates.gatekeeper.sh/v1beta1 adds x-kubernetes-preserve-unknown-fields to \
                 every schema with no type, as Gatekeeper does: use templates.gatekeeper.sh/v1)"
            } else {
                ""
            };
            self.err(format!(
                "{path}.{INT_OR_STRING}: must stand alone: no type and no {PRESERVE}{hint}"
            ));
        }
    }

    fn ty(&mut self, v: &Value, at: &str) -> Option<Ty> {
        let ty = match v.as_str() {
            Some("object") => Ty::Object,
            Some("array") => Ty::Array,
            Some("string") => Ty::String,
            Some("integer") => Ty::Integer,
            Some("number") => Ty::Number,
            Some("boolean") => Ty::Boolean,
            Some("null") => {
                self.err(format!(
                    "{at}: cannot be null in Kubernetes; use nullable: true"
                ));
                return None;
            }
            _ => {
                self.err(format!(
                    "{at}: must be one of object, array, string, integer, number, boolean, not {}",
                    show(v)
                ));
                return None;
            }
        };
        Some(ty)
    }

    fn format(&mut self, v: &Value, at: &str) {
        match v.as_str() {
            Some("int32" | "int64" | "float" | "double") => {}
            Some(f) => self.err(format!(
                "{at}: format {} is not supported here (kube-openapi would check it); remove it \
                 or use pattern (int32, int64, float and double are accepted)",
                quote(f)
            )),
            None => self.err(format!("{at}: must be a string")),
        }
    }

    fn pattern(&mut self, v: &Value, at: &str) -> Option<Regex> {
        let p = self.string(v, at)?;
        match RegexBuilder::new(p).size_limit(1 << 20).build() {
            Ok(re) => Some(re),
            Err(e) => {
                self.err(format!("{at}: not a valid regular expression: {e}"));
                None
            }
        }
    }

    fn flag(&mut self, v: &Value, at: &str) -> bool {
        v.as_bool().unwrap_or_else(|| {
            self.err(format!("{at}: must be true or false, not {}", show(v)));
            false
        })
    }

    fn string<'v>(&mut self, v: &'v Value, at: &str) -> Option<&'v str> {
        let s = v.as_str();
        if s.is_none() {
            self.err(format!("{at}: must be a string, not {}", show(v)));
        }
        s
    }

    fn strings(&mut self, v: &Value, at: &str) -> Vec<String> {
        match v
            .as_array()
            .map(|l| l.iter().map(|s| s.as_str().map(str::to_owned)).collect())
        {
            Some(Some(list)) => list,
            _ => {
                self.err(format!("{at}: must be a list of field names"));
                Vec::new()
            }
        }
    }

    fn num(&mut self, v: &Value, at: &str) -> Option<f64> {
        let x = v.as_f64();
        if x.is_none() {
            self.err(format!("{at}: must be a number, not {}", show(v)));
        }
        x
    }

    fn count(&mut self, v: &Value, at: &str) -> Option<u64> {
        let x = v.as_u64();
        if x.is_none() {
            self.err(format!(
                "{at}: must be a non-negative integer, not {}",
                show(v)
            ));
        }
        x
    }
}

/// What a structural schema must not set under allOf/anyOf/oneOf/not (apiextensions
/// `validateNestedValueValidation`); `false`/empty values are allowed, as there.
fn forbidden_nested(k: &str, v: &Value) -> bool {
    match k {
        "type" | "additionalProperties" | "title" | "description" | "externalDocs" => true,
        "default" => !v.is_null(),
        "nullable" | PRESERVE | INT_OR_STRING | "x-kubernetes-embedded-resource" => {
            v != &Value::Bool(false)
        }
        "x-kubernetes-list-type"
        | "x-kubernetes-map-type"
        | "x-kubernetes-list-map-keys"
        | "x-kubernetes-validations" => true,
        "properties" => v.get("metadata").is_some(),
        _ => false,
    }
}

fn flag_of(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// Gatekeeper's conversion of v1beta1 (and legacySchema) schemas: frameworks
/// `AddPreserveUnknownFields`. Recurses through properties, items and additionalProperties,
/// not through junctors, as it does. The caller has bounded the depth.
fn add_preserve_unknown(s: &mut Value) {
    let Some(m) = s.as_object_mut() else { return };
    match m.get("type").and_then(Value::as_str) {
        None | Some("object") => {
            m.insert(PRESERVE.into(), Value::Bool(true));
        }
        Some("array") if m.get("items").is_none_or(Value::is_null) => {
            m.insert("items".into(), serde_json::json!({ PRESERVE: true }));
        }
        _ => {}
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(add_preserve_unknown);
    }
    for k in ["items", "additionalProperties"] {
        if let Some(v @ Value::Object(_)) = m.get_mut(k) {
            add_preserve_unknown(v);
        }
    }
}
