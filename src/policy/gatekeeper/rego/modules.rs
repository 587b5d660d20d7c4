//! A ConstraintTemplate's modules as regorus parses them (its syntax tree, read as JSON
//! through the `ast` feature), and Gatekeeper's checks on them at load: lib packages,
//! imports, `data` references, `external_data`, and functions regorus does not have.

use std::collections::BTreeSet;

use regorus::Engine;
use serde_json::Value as Json;

use super::{located, Site, MAIN_LABEL, TEMPLATE_PACKAGE};

/// How deep `(`, `[`, `{` and unary minus may nest in a module. regorus bounds its
/// parser's expression depth, but array, set, object and comprehension terms and unary
/// minus recurse around that bound: a module nesting them a few thousand deep overflows
/// the stack, which aborts the process (a daemon reloading its policyDir included)
/// instead of failing the load. The gatekeeper-library's templates nest at most 4 deep;
/// 32 is regorus's own bound.
const MAX_NESTING: usize = 32;

/// Where `text` first nests deeper than [`MAX_NESTING`] (1-based line and column),
/// skipping strings and comments as Rego's lexer does. A run of `-` counts as that many
/// levels (unary minus is the only prefix operator; a binary one in the run only makes
/// the count cautious), held while a bracket opened right after the run is open.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let (mut line, mut col) = (1usize, 0usize);
    // Levels each open bracket holds (itself and the `-` run before it), their sum, and
    // the current run of `-`.
    let (mut open, mut depth, mut minus) = (Vec::<usize>::new(), 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut chars = text.chars();
    while let Some(mut c) = chars.next() {
        col += 1;
        if quote == Some('"') && c == '\\' {
            // An escape: the next character is the string's, unless it ends the line
            // (a string never spans lines; regorus refuses it).
            match chars.next() {
                Some(next) => c = next,
                None => break,
            }
            col += 1;
            if c != '\n' {
                continue;
            }
        }
        if c == '\n' {
            (line, col, comment) = (line + 1, 0, false);
            if quote == Some('"') {
                quote = None;
            }
            continue;
        }
        match (quote, comment) {
            (_, true) => {}
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, _) if c.is_whitespace() => {}
            (None, _) if c == '#' => comment = true,
            (None, _) => match c {
                '-' => minus += 1,
                '(' | '[' | '{' => {
                    open.push(std::mem::take(&mut minus) + 1);
                    depth += open.last().copied().unwrap_or(0);
                }
                ')' | ']' | '}' => {
                    depth -= open.pop().unwrap_or(0);
                    minus = 0;
                }
                _ => {
                    minus = 0;
                    if c == '"' || c == '`' {
                        quote = Some(c);
                    }
                }
            },
        }
        if depth + minus > MAX_NESTING {
            return Some((line, col));
        }
    }
    None
}

/// One parsed module: its text, package and regorus's AST (as JSON, the `ast` feature).
pub(super) struct Module {
    /// None: the main module; Some(i): `libs[i]`.
    pub(super) lib: Option<usize>,
    pub(super) text: String,
    /// As regorus names it: `data.lib.foo`.
    pub(super) package: String,
    /// The byte range of the package's path in `text`.
    package_range: (usize, usize),
    imports: Vec<Json>,
    rules: Vec<Json>,
}

impl Module {
    pub(super) fn label(lib: Option<usize>) -> String {
        lib.map_or_else(|| MAIN_LABEL.to_string(), |i| format!("libs[{i}]"))
    }

    pub(super) fn parse(
        site: &Site,
        lib: Option<usize>,
        text: &str,
        v1: bool,
    ) -> Result<Module, String> {
        if text.trim().is_empty() {
            return Err(site.error(lib, "the module is empty; it needs a package and rules"));
        }
        let syntax = if v1 { "Rego v1" } else { "Rego v0" };
        if let Some(at) = too_deep(text) {
            return Err(site.error_at(
                lib,
                Some(at),
                &format!(
                    "invalid {syntax}: brackets nest more than {MAX_NESTING} deep; flatten the \
                     expression (with helper rules or variables)"
                ),
            ));
        }
        let mut engine = Engine::new();
        engine.set_rego_v0(!v1);
        let package = engine
            .add_policy(Module::label(lib), text.to_string())
            .map_err(|e| match located(&e) {
                Some(at) => site.error_at(
                    lib,
                    Some((at.line, at.col)),
                    &format!("invalid {syntax}: {}", at.msg),
                ),
                None => site.error(lib, &format!("invalid {syntax}: {}", e.to_string().trim())),
            })?;
        let ast = engine
            .get_ast_as_json()
            .ok()
            .and_then(|s| serde_json::from_str::<Json>(&s).ok())
            .and_then(|mut all| all.get_mut(0).map(|m| m["ast"].take()))
            .ok_or_else(|| site.error(lib, "regorus gave no syntax tree for the module"))?;
        let refr = &ast["package"]["refr"];
        let package_range = (
            span_of(refr).map_or(0, |s| s.start),
            span_of(refr).map_or(0, |s| s.end),
        );
        let list = |key: &str| ast[key].as_array().cloned().unwrap_or_default();
        Ok(Module {
            lib,
            text: text.to_string(),
            package,
            package_range,
            imports: list("imports"),
            rules: list("rules"),
        })
    }

    /// The names of the rules (and functions) the module defines.
    fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().filter_map(rule_name)
    }

    pub(super) fn defines(&self, name: &str) -> bool {
        self.rule_names().any(|n| n == name)
    }

    /// The rule whose text holds (line, col), module-relative, 1-based.
    pub(super) fn rule_at(&self, line: usize, col: usize) -> Option<&str> {
        let offset = self
            .text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>()
            + col.saturating_sub(1);
        self.rules.iter().find_map(|rule| {
            let span = span_of(rule)?;
            (span.start <= offset && offset < span.end)
                .then(|| rule_name(rule))
                .flatten()
        })
    }

    /// Gatekeeper's `checkLibPackages`: a lib's package is strictly under `data.lib`.
    pub(super) fn check_lib_package(&self, site: &Site) -> Result<(), String> {
        if self.package.starts_with("data.lib.") {
            return Ok(());
        }
        Err(site.error(
            self.lib,
            &format!(
                "invalid lib prefix: path {} not found in lib prefixes; a lib's package must \
                 be under lib (package lib.NAME), as Gatekeeper requires",
                self.package
            ),
        ))
    }

    /// The main module's text with its package renamed `template` (same lines).
    pub(super) fn renamed(&self) -> String {
        let (start, end) = self.package_range;
        match (self.text.get(..start), self.text.get(end..)) {
            (Some(head), Some(tail)) if start < end => format!("{head}{TEMPLATE_PACKAGE}{tail}"),
            _ => self.text.clone(),
        }
    }
}

/// A node's span (line, col, byte range) in regorus's AST JSON.
#[derive(Clone, Copy)]
struct Span {
    line: usize,
    col: usize,
    start: usize,
    end: usize,
}

fn span_of(node: &Json) -> Option<Span> {
    span_in(node.as_object()?.values().next()?)
}

/// The span of a struct node (one with a `span` field), or a span itself.
fn span_in(inner: &Json) -> Option<Span> {
    let span = inner.get("span").unwrap_or(inner);
    let num = |k: &str| span.get(k).and_then(Json::as_u64).map(|n| n as usize);
    Some(Span {
        line: num("line")?,
        col: num("col")?,
        start: num("start")?,
        end: num("end")?,
    })
}

/// A rule's name: the root of its head's reference (`violation` of `violation[x]`).
fn rule_name(rule: &Json) -> Option<&str> {
    let refr = match rule.get("Spec") {
        Some(spec) => spec["head"].as_object()?.values().next()?.get("refr")?,
        None => rule.get("Default")?.get("refr")?,
    };
    Some(flatten(refr).root?.0)
}

/// A reference flattened: its root variable (name, node), its components (Some(name) for
/// `.name` and `["name"]`, None for a computed index) and the computed index expressions.
struct Flat<'a> {
    root: Option<(&'a str, &'a Json)>,
    parts: Vec<Option<&'a str>>,
    indexes: Vec<&'a Json>,
    /// The root node when it is not a variable (a call, a literal...).
    other_root: Option<&'a Json>,
}

fn flatten(mut node: &Json) -> Flat<'_> {
    let mut flat = Flat {
        root: None,
        parts: Vec::new(),
        indexes: Vec::new(),
        other_root: None,
    };
    loop {
        if let Some(dot) = node.get("RefDot") {
            flat.parts.push(dot["field"].get(1).and_then(Json::as_str));
            node = &dot["refr"];
        } else if let Some(brack) = node.get("RefBrack") {
            let index = &brack["index"];
            flat.parts
                .push(index.get("String").and_then(|s| s["value"].as_str()));
            flat.indexes.push(index);
            node = &brack["refr"];
        } else {
            match node.get("Var").and_then(|v| v["value"].as_str()) {
                Some(name) => flat.root = Some((name, node)),
                None => flat.other_root = Some(node),
            }
            flat.parts.reverse();
            return flat;
        }
    }
}

/// A dotted name of a reference whose parts are all literal (`strings.any_prefix_match`).
fn dotted(flat: &Flat) -> Option<String> {
    let mut name = flat.root?.0.to_string();
    for part in &flat.parts {
        name.push('.');
        name.push_str((*part)?);
    }
    Some(name)
}

// ----------------------------------------------------------------------------- checks

/// A function call found in a module, for [`check_functions`].
pub(super) struct Call {
    lib: Option<usize>,
    name: String,
    at: (usize, usize),
}

/// What the walk over a module's rules finds.
#[derive(Default)]
struct Findings {
    /// Disallowed `data` references: (text, line, col).
    data_refs: Vec<(String, usize, usize)>,
    external_data: Option<(usize, usize)>,
    calls: Vec<(String, usize, usize)>,
}

/// Gatekeeper's `checkImports` and `checkDataReferences`, and `external_data`; the calls
/// made by every module.
pub(super) fn check_modules(site: &Site, modules: &[Module]) -> Result<Vec<Call>, String> {
    let mut calls = Vec::new();
    for module in modules {
        for import in &module.imports {
            check_import(site, module, import)?;
        }
        let mut found = Findings::default();
        for rule in &module.rules {
            walk(rule, &module.text, &mut found);
        }
        if let Some(at) = found.external_data {
            return Err(site.error_at(
                module.lib,
                Some(at),
                "the rego calls external_data, Gatekeeper's builtin for external data \
                 providers; external data providers are not available on a host (no API \
                 server, no Provider objects): remove the call or keep this template in the \
                 cluster's Gatekeeper",
            ));
        }
        if let Some((text, line, col)) = found.data_refs.first() {
            return Err(site.error_at(
                module.lib,
                Some((*line, *col)),
                &format!(
                    "invalid data references: disallowed ref {text}; a template may read only \
                     data.inventory (synced objects) and data.lib.* (its libs) of data, as \
                     Gatekeeper requires"
                ),
            ));
        }
        calls.extend(found.calls.into_iter().map(|(name, line, col)| Call {
            lib: module.lib,
            name,
            at: (line, col),
        }));
    }
    Ok(calls)
}

/// Gatekeeper's `checkImport`: `data.lib.*` and `future.*` only (and `rego.v1`, which
/// OPA reads as a syntax switch), never `input`.
fn check_import(site: &Site, module: &Module, import: &Json) -> Result<(), String> {
    let refr = &import["refr"];
    let flat = flatten(refr);
    let root = flat.root.map(|r| r.0);
    let first = flat.parts.first().copied().flatten();
    let allowed = match root {
        Some("data") => first == Some("lib"),
        Some("future") => true,
        Some("rego") => first == Some("v1") && flat.parts.len() == 1,
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let text = span_of(refr)
        .and_then(|s| module.text.get(s.start..s.end))
        .unwrap_or("?");
    let at = span_in(import).map(|s| (s.line, s.col));
    let why = if root == Some("input") {
        format!("invalid import: cannot import input: {text:?}")
    } else {
        format!(
            "invalid import: bad import: {text:?}; a template may import only its libs \
             (data.lib.*) and future keywords"
        )
    };
    Err(site.error_at(module.lib, at, &why))
}

/// Walks regorus's AST JSON of one rule, as Gatekeeper's `ast.WalkRefs` does.
fn walk(node: &Json, text: &str, found: &mut Findings) {
    match node {
        Json::Array(items) => items.iter().for_each(|n| walk(n, text, found)),
        Json::Object(fields) => {
            if fields.contains_key("RefDot") || fields.contains_key("RefBrack") {
                walk_ref(node, text, found);
            } else if let Some(var) = fields.get("Var") {
                if var["value"] == "data" {
                    let s = span_of(node);
                    let (line, col) = s.map_or((0, 0), |s| (s.line, s.col));
                    found.data_refs.push(("data".into(), line, col));
                }
            } else if let Some(call) = fields.get("Call") {
                let flat = flatten(&call["fcn"]);
                if let (Some(name), Some(s)) = (dotted(&flat), span_of(&call["fcn"])) {
                    if name == "external_data" && found.external_data.is_none() {
                        found.external_data = Some((s.line, s.col));
                    }
                    found.calls.push((name, s.line, s.col));
                }
                walk(&call["fcn"], text, found);
                walk(&call["params"], text, found);
            } else {
                fields.values().for_each(|n| walk(n, text, found));
            }
        }
        _ => {}
    }
}

/// One whole reference: checked once (not its prefixes), then its computed indexes.
fn walk_ref(node: &Json, text: &str, found: &mut Findings) {
    let flat = flatten(node);
    if let Some(("data", _)) = flat.root {
        let first = flat.parts.first().copied().flatten();
        if !matches!(first, Some("inventory" | "lib")) {
            let s = span_of(node);
            let shown = s
                .and_then(|s| text.get(s.start..s.end))
                .unwrap_or("data")
                .to_string();
            let (line, col) = s.map_or((0, 0), |s| (s.line, s.col));
            found.data_refs.push((shown, line, col));
        }
    }
    for index in &flat.indexes {
        walk(index, text, found);
    }
    if let Some(other) = flat.other_root {
        walk(other, text, found);
    }
}

/// Every called function is defined by the template, imported, or a regorus builtin.
pub(super) fn check_functions(
    site: &Site,
    modules: &[Module],
    calls: &[Call],
) -> Result<(), String> {
    let mut builtins_seen = BTreeSet::new();
    for call in calls {
        let Some(module) = modules.iter().find(|m| m.lib == call.lib) else {
            continue;
        };
        let head = call.name.split('.').next().unwrap_or_default();
        let user = head == "data"
            || import_aliases(module).any(|alias| alias == head)
            || modules
                .iter()
                .filter(|m| m.package == module.package)
                .any(|m| m.rule_names().any(|n| n == head));
        if user || !builtins_seen.insert(call.name.as_str()) {
            continue;
        }
        if !is_builtin(&call.name) {
            return Err(site.error_at(
                call.lib,
                Some(call.at),
                &format!(
                    "the rego calls {}, which is neither a function of the template nor a \
                     builtin that this build of regorus (the Rego interpreter used here) \
                     provides; define it in the template or a lib, or use another builtin",
                    call.name
                ),
            ));
        }
    }
    Ok(())
}

/// The names an import binds: its `as` alias, else its last component.
fn import_aliases(module: &Module) -> impl Iterator<Item = &str> {
    module.imports.iter().filter_map(|import| {
        let alias = span_in(&import["as"]).and_then(|s| module.text.get(s.start..s.end));
        alias.or_else(|| {
            let flat = flatten(&import["refr"]);
            match flat.parts.last() {
                Some(last) => *last,
                None => flat.root.map(|r| r.0),
            }
        })
    })
}

/// Whether regorus knows `name` as a builtin: its lookup fails with "could not find
/// function" only for names it does not have (an arity error means it has it).
fn is_builtin(name: &str) -> bool {
    let mut engine = Engine::new();
    match engine.eval_query(format!("{name}()"), false) {
        Ok(_) => true,
        Err(e) => !format!("{e:#}").contains("could not find function"),
    }
}

#[cfg(test)]
mod tests {
    use super::too_deep;

    #[test]
    fn nesting_past_the_bound_is_found_outside_strings_and_comments() {
        let nested = |open: &str, close: &str, n: usize| {
            format!("x := {}1{}", open.repeat(n), close.repeat(n))
        };
        assert_eq!(too_deep(&nested("[", "]", 32)), None);
        assert_eq!(too_deep(&nested("[", "]", 33)), Some((1, 38)));
        assert!(too_deep(&nested("{", "}", 5000)).is_some());
        assert!(too_deep(&nested("-[", "]", 17)).is_some());
        assert!(too_deep(&format!("x := {}1", "- ".repeat(33))).is_some());
        // Binary minus between operands, brackets in strings and comments: no nesting.
        let long = (0..200)
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>()
            .join(" - ");
        assert_eq!(too_deep(&format!("x := {long}")), None);
        let quoted = format!(
            "x := \"{}\\\"\" # {}\ny := `{}`",
            "[".repeat(99),
            "(".repeat(99),
            "{".repeat(99)
        );
        assert_eq!(too_deep(&quoted), None);
    }
}
