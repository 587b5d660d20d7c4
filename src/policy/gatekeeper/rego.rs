//! The Rego of Gatekeeper ConstraintTemplates: compiled once per template
//! ([`RegoProgram::compile`]) and evaluated per request and constraint
//! ([`RegoProgram::violations`]) with `regorus`, the field's Rego interpreter — no Rego is
//! interpreted by hand here.
//!
//! Gatekeeper's own driver (open-policy-agent/frameworks, `constraint/pkg/client/drivers/rego`
//! and `regorewriter`) is the oracle, and is mirrored as follows:
//!
//! - At load: the main module must define `violation` (`missing required rules:
//!   [violation]`); its package is renamed `template` (Gatekeeper renames it to
//!   `data.template`, so two templates, or a template and a lib, never share a package);
//!   every lib's package must be under `lib.`; imports may only name `data.lib.*`,
//!   `future.*` (and `rego.v1`), never `input`; rules may read only `data.inventory` and
//!   `data.lib.*` of `data`. Beyond Gatekeeper: `external_data` is refused (no providers on a
//!   host), and so is a call to a function that is neither defined by the template nor
//!   built into regorus, which Gatekeeper's compiler also rejects but regorus would only
//!   find when a request reaches the call.
//! - At evaluation: `input` is `{"review": ..., "parameters": ...}` with `parameters`
//!   `{}` when the constraint has none, `data.inventory` is the inventory given at load,
//!   builtin errors make the expression undefined (OPA's default, not strict), and each
//!   violation becomes `{msg, details}` with `details` defaulting to `{}`, deduplicated and
//!   ordered as Gatekeeper's hook (`object.get(r, "details", {})`) leaves them.
//!
//! `modules` parses the template's modules and runs those checks.
//!
//! Evaluation clones a prepared `regorus::Engine` (its modules, schedule and data are
//! shared through `Arc`s) so that each call carries its own wall-clock limit, without
//! regorus's process-wide fallback timer. regorus's bytecode VM (`rvm`) is about three
//! times faster on the library's templates but not used: it lets a body go on past an
//! assignment of an undefined value (`x := input.missing`), which the interpreter and OPA
//! treat as failing the body (`undefined_assignment_fails_the_body`; BENCHMARKS.md).

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, LimitError, Value};
use serde::Deserialize;
use serde_json::Value as Json;

use modules::{check_functions, check_modules, Module};

mod modules;
pub(super) mod negation;

/// The package the main module is renamed to, as Gatekeeper's `templatePath`.
const TEMPLATE_PACKAGE: &str = "template";
/// The rule evaluated: Gatekeeper's hook reads `data.template.violation[r]`.
const VIOLATION_RULE: &str = "data.template.violation";
/// The main module's name inside regorus (its messages say `--> rego:LINE:COL`).
const MAIN_LABEL: &str = "rego";
/// Work units (expressions) between two reads of the clock under a time limit.
const CLOCK_CHECK_INTERVAL: u32 = 16;

/// One template's Rego, compiled once at load. Send + Sync; shared behind Arc.
#[derive(Debug)]
pub struct RegoProgram {
    template: String,
    /// Prepared (analysed and scheduled): clones skip straight to evaluation.
    engine: Engine,
}

/// The review converted once per request to regorus's value, shared by every constraint.
#[derive(Debug, Clone)]
pub struct RegoInput {
    review: Value,
}

impl RegoInput {
    /// `review`: Gatekeeper's `input.review` (the AdmissionRequest-like object).
    pub fn new(review: &Json) -> Result<Self, String> {
        let review = json_to_value(review)
            .map_err(|e| format!("the admission review cannot be given to Rego: {e}"))?;
        Ok(Self { review })
    }
}

/// One violation: Gatekeeper's `violation[{"msg": msg, "details": d}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RegoViolation {
    pub msg: String,
    pub details: Json,
}

impl RegoProgram {
    /// `template`: the ConstraintTemplate's metadata.name (for messages); `file`: the policyDir
    /// file it came from; `first_line`: the 1-based line in `file` where the `rego:` text starts,
    /// when known, so that errors name the file's line; `rego`: the main module; `libs`: the
    /// `libs` modules; `v1`: Rego v1 syntax (Gatekeeper's `version: "v1"`) else v0;
    /// `inventory`: the `data.inventory` document (a JSON object; may be `{}`).
    pub fn compile(
        template: &str,
        file: &Path,
        first_line: Option<usize>,
        rego: &str,
        libs: &[String],
        v1: bool,
        inventory: &Json,
    ) -> Result<RegoProgram, String> {
        let site = Site {
            template,
            file,
            first_line,
        };
        let mut modules = vec![Module::parse(&site, None, rego, v1)?];
        if !modules[0].defines("violation") {
            return Err(site.error(
                None,
                "invalid rego: missing required rules: [violation]; the main module must \
                 define violation[{\"msg\": msg}] (Gatekeeper's entry point)",
            ));
        }
        for (i, lib) in libs.iter().enumerate() {
            let module = Module::parse(&site, Some(i), lib, v1)?;
            module.check_lib_package(&site)?;
            modules.push(module);
        }
        let calls = check_modules(&site, &modules)?;
        check_functions(&site, &modules, &calls)?;
        let engine = prepare(&site, &modules, v1, inventory)?;
        Ok(RegoProgram {
            template: template.to_string(),
            engine,
        })
    }

    /// Gatekeeper's input contract: `input.review` (from RegoInput) and `input.parameters`
    /// (the constraint's spec.parameters; `{}` when absent or null, as Gatekeeper's
    /// AddConstraint defaults it). Every violation, in a deterministic order. Bounded by
    /// `limit` (wall time): past it, an Err saying so.
    pub fn violations(
        &self,
        input: &RegoInput,
        parameters: &Json,
        limit: Duration,
    ) -> Result<Vec<RegoViolation>, String> {
        let parameters = match parameters {
            Json::Null => Value::new_object(),
            p => json_to_value(p).map_err(|e| {
                format!(
                    "ConstraintTemplate {:?}: the constraint's spec.parameters cannot be given \
                     to Rego: {e}",
                    self.template
                )
            })?,
        };
        let mut doc = Value::new_object();
        if let Ok(fields) = doc.as_object_mut() {
            fields.insert(Value::from("review"), input.review.clone());
            fields.insert(Value::from("parameters"), parameters);
        }
        let mut engine = self.engine.clone();
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit,
            check_interval: NonZeroU32::new(CLOCK_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
        });
        engine.set_input(doc);
        let result = engine
            .eval_rule(VIOLATION_RULE.to_string())
            .map_err(|e| self.eval_error(&e, limit))?;
        self.collect(result)
    }

    fn timed_out(&self, limit: Duration) -> String {
        format!(
            "ConstraintTemplate {:?}: the evaluation of its Rego exceeded the time limit of \
             {limit:?} and was stopped; make the rego cheaper (or raise the limit)",
            self.template
        )
    }

    fn eval_error(&self, err: &anyhow::Error, limit: Duration) -> String {
        let timed_out = err.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<LimitError>(),
                Some(LimitError::TimeLimitExceeded { .. })
            )
        });
        if timed_out {
            return self.timed_out(limit);
        }
        let (place, msg) = match located(err) {
            Some(at) => (
                format!(" at {} line {}, column {}", at.label, at.line, at.col),
                at.msg,
            ),
            None => (String::new(), err.to_string().trim().to_string()),
        };
        format!(
            "ConstraintTemplate {:?}: evaluating its Rego failed{place}: {msg}",
            self.template
        )
    }

    /// The `violation` set into violations: `msg` must be a string, `details` defaults to
    /// `{}`; two results with the same msg and details are one (Gatekeeper's hook keeps only
    /// those two fields of a set element), ordered by details then msg, as OPA orders the
    /// hook's `{"details", "key", "msg"}` responses.
    fn collect(&self, result: Value) -> Result<Vec<RegoViolation>, String> {
        let set = match result {
            Value::Undefined => return Ok(Vec::new()),
            Value::Set(set) => set,
            other => {
                return Err(format!(
                    "ConstraintTemplate {:?}: violation must be a set (violation[{{\"msg\": \
                     msg}}] {{ ... }}), not {}",
                    self.template,
                    describe(&other)
                ))
            }
        };
        let mut unique = BTreeSet::new();
        for r in set.iter() {
            let msg = match &r["msg"] {
                Value::String(msg) => msg.to_string(),
                Value::Undefined => return Err(self.bad_result(r, "it has no msg")),
                other => {
                    let what = format!("its msg is {}, not a string", describe(other));
                    return Err(self.bad_result(r, &what));
                }
            };
            let details = match &r["details"] {
                Value::Undefined => Value::new_object(),
                d => d.clone(),
            };
            unique.insert((details, msg));
        }
        unique
            .into_iter()
            .map(|(details, msg)| {
                let details = serde_json::to_value(&details).map_err(|e| {
                    format!(
                        "ConstraintTemplate {:?}: the details of violation {msg:?} are not \
                         JSON: {e}",
                        self.template
                    )
                })?;
                Ok(RegoViolation { msg, details })
            })
            .collect()
    }

    fn bad_result(&self, r: &Value, what: &str) -> String {
        let shown = serde_json::to_string(r).unwrap_or_else(|_| describe(r));
        format!(
            "ConstraintTemplate {:?}: a violation must be an object with a string msg \
             ({{\"msg\": msg, \"details\": {{...}}}}), but {what}: {}",
            self.template,
            crate::policy::quote(&shown)
        )
    }
}

/// serde_json into regorus, without a copy (regorus's serde support; ints stay ints).
fn json_to_value(json: &Json) -> Result<Value, String> {
    Value::deserialize(json).map_err(|e| e.to_string())
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Set(_) => "a set".into(),
        Value::Object(_) => "an object".into(),
        Value::Undefined => "undefined".into(),
    }
}

// ----------------------------------------------------------------------------- sites

/// Where the template's text came from, for messages.
struct Site<'a> {
    template: &'a str,
    file: &'a Path,
    first_line: Option<usize>,
}

impl Site<'_> {
    /// `lib`: None for the main module; `at`: a module-relative (line, column).
    fn place(&self, lib: Option<usize>, at: Option<(usize, usize)>) -> String {
        let file = self.file.display();
        match (lib, at, self.first_line) {
            (None, Some((line, col)), Some(first)) => format!(
                "{file}:{} (rego line {line}, column {col})",
                first + line.saturating_sub(1)
            ),
            (None, Some((line, col)), None) => format!("{file}, rego line {line}, column {col}"),
            (None, None, Some(first)) => format!("{file}:{first} (rego)"),
            (None, None, None) => format!("{file}, rego"),
            (Some(i), Some((line, col)), _) => {
                format!("{file}, libs[{i}] line {line}, column {col}")
            }
            (Some(i), None, _) => format!("{file}, libs[{i}]"),
        }
    }

    fn error(&self, lib: Option<usize>, msg: &str) -> String {
        self.error_at(lib, None, msg)
    }

    fn error_at(&self, lib: Option<usize>, at: Option<(usize, usize)>, msg: &str) -> String {
        format!(
            "ConstraintTemplate {:?} ({}): {msg}",
            self.template,
            self.place(lib, at)
        )
    }

    /// A regorus error about the template's modules, placed in its file.
    fn regorus_error(&self, modules: &[Module], err: &anyhow::Error, what: &str) -> String {
        let Some(at) = located(err) else {
            return self.error(None, &format!("{what}: {}", err.to_string().trim()));
        };
        let lib = at
            .label
            .strip_prefix("libs[")
            .and_then(|rest| rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()));
        let rule = modules
            .iter()
            .find(|m| m.lib == lib)
            .and_then(|m| m.rule_at(at.line, at.col))
            .map(|name| format!(" (in rule {name})"))
            .unwrap_or_default();
        self.error_at(
            lib,
            Some((at.line, at.col)),
            &format!("{what}{rule}: {}", at.msg),
        )
    }
}

/// A regorus message's place (`--> LABEL:LINE:COL`) and its `error: ...` line.
struct Located {
    label: String,
    line: usize,
    col: usize,
    msg: String,
}

fn located(err: &anyhow::Error) -> Option<Located> {
    let text = format!("{err:#}");
    let arrow = text.find("--> ")?;
    let head = text[arrow + 4..].lines().next()?;
    let mut parts = head.rsplitn(3, ':');
    let col = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    let label = parts.next()?.to_string();
    let msg = text
        .lines()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("error: "))
        .unwrap_or("error")
        .trim()
        .to_string();
    Some(Located {
        label,
        line,
        col,
        msg,
    })
}

/// The engine every evaluation clones: the modules (main renamed `template`), the
/// inventory at `data.inventory`, OPA's non-strict builtin errors, analysed once.
fn prepare(site: &Site, modules: &[Module], v1: bool, inventory: &Json) -> Result<Engine, String> {
    let mut engine = Engine::new();
    engine.set_rego_v0(!v1);
    engine.set_strict_builtin_errors(false);
    for module in modules {
        let text = match module.lib {
            None => module.renamed(),
            Some(_) => module.text.clone(),
        };
        let text = negation::hoisted(site, modules, module, text, v1)?;
        engine
            .add_policy(Module::label(module.lib), text)
            .map_err(|e| site.regorus_error(modules, &e, "invalid rego"))?;
    }
    if !inventory.is_object() {
        return Err(site.error(
            None,
            "data.inventory must be a JSON object (the synced objects); it is not",
        ));
    }
    let mut data = serde_json::Map::new();
    data.insert("inventory".into(), inventory.clone());
    let data = json_to_value(&Json::Object(data)).map_err(|e| {
        site.error(
            None,
            &format!("data.inventory cannot be given to Rego: {e}"),
        )
    })?;
    engine
        .add_data(data)
        .map_err(|e| site.error(None, &format!("data.inventory was refused: {e}")))?;
    engine
        .compile_with_entrypoint(&VIOLATION_RULE.into())
        .map_err(|e| site.regorus_error(modules, &e, "the rego does not compile"))?;
    // print() output is kept in each evaluation's clone and dropped with it, never written
    // to stderr (Gatekeeper drops print statements unless told otherwise).
    engine.set_gather_prints(true);
    Ok(engine)
}
