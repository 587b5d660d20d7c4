//! The gatekeeper-library's own suites (`tests/fixtures/gatekeeper-library`, what `gator
//! verify` runs upstream) through the real binary: every case of every suite test must
//! come out of `portcullis check` as its assertions say, on each engine the template has
//! code for. The library is Gatekeeper's oracle: a template whose cases we judge
//! differently is a template that would behave differently at our doors.
//!
//! One `check --output json` per suite test, with all its case objects, against a
//! `policyDir` holding the test's template and Constraint and a config that allows one
//! engine: `Rego` for every template, then `K8sNativeValidation` for the templates that
//! have CEL code (with only CEL allowed, a Rego-only template cannot load; those are not
//! run, never counted). Violations are read from the denial Gatekeeper writes —
//! `[constraint] message`, one line per violation — and counted as `gator` counts them:
//! all of them, or those whose message matches the assertion's regexp.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/gatekeeper-library"
);

/// The prefix of every Gatekeeper denial (`policy::gatekeeper::admission`).
const DENIED: &str = "admission webhook \"portcullis\" denied the request: ";

const CEL: &str = "K8sNativeValidation";
const REGO: &str = "Rego";

/// One test of a `suite.yaml`: a template, a Constraint, the cases.
struct SuiteTest {
    suite: String,
    name: String,
    template: PathBuf,
    constraint: PathBuf,
    cases: Vec<Case>,
}

struct Case {
    name: String,
    object: PathBuf,
    assertions: Vec<Assertion>,
}

/// `violations` (`yes`, `no` or a count; `yes` when absent, as in gator) of the
/// violations whose message matches `message` (all of them without one).
struct Assertion {
    violations: Expect,
    message: Option<regex::Regex>,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Yes,
    No,
    Count(usize),
}

/// What `check` said about one case object.
struct Got {
    /// The violation messages, or why there are none to read.
    violations: Result<Vec<String>, String>,
    /// `status.message` as check wrote it (for the report).
    message: String,
}

/// One case that does not come out as its assertions say.
struct Disagreement {
    engine: &'static str,
    suite: String,
    case: String,
    object: PathBuf,
    expected: String,
    got: String,
    message: String,
}

/// Every suite of the library: `(directory name, parsed suite.yaml)`.
fn suites() -> Vec<SuiteTest> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(LIBRARY)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("suite.yaml").is_file())
        .collect();
    dirs.sort();
    dirs.iter().flat_map(|d| read_suite(d)).collect()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_suite(dir: &Path) -> Vec<SuiteTest> {
    let suite = yaml(&dir.join("suite.yaml"));
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let tests = suite["tests"].as_array().expect("suite.yaml: tests");
    tests
        .iter()
        .map(|t| SuiteTest {
            suite: name.clone(),
            name: t["name"].as_str().unwrap_or_default().to_owned(),
            template: dir.join(t["template"].as_str().expect("test.template")),
            constraint: dir.join(t["constraint"].as_str().expect("test.constraint")),
            cases: t["cases"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| read_case(dir, c))
                .collect(),
        })
        .collect()
}

fn read_case(dir: &Path, case: &Value) -> Case {
    let name = case["name"].as_str().unwrap_or_default().to_owned();
    let assertions = case["assertions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| Assertion {
            violations: expect(&a["violations"], &name),
            message: a["message"].as_str().map(|m| {
                regex::Regex::new(m).unwrap_or_else(|e| panic!("case {name}: message {m:?}: {e}"))
            }),
        })
        .collect();
    Case {
        object: dir.join(case["object"].as_str().expect("case.object")),
        name,
        assertions,
    }
}

/// gator's `violations`: an int-or-string, `yes`/`no` (a YAML 1.1 reader may hand them over
/// as booleans), absent meaning `yes`.
fn expect(v: &Value, case: &str) -> Expect {
    match v {
        Value::Null | Value::Bool(true) => Expect::Yes,
        Value::Bool(false) => Expect::No,
        Value::String(s) if s == "yes" => Expect::Yes,
        Value::String(s) if s == "no" => Expect::No,
        Value::Number(n) => Expect::Count(n.as_u64().expect("a count") as usize),
        Value::String(s) => Expect::Count(
            s.parse()
                .unwrap_or_else(|_| panic!("case {case}: violations: {s:?}")),
        ),
        other => panic!("case {case}: violations: {other}"),
    }
}

/// The engines a template has code for: `Rego` (`targets[].rego`, or a `code[]` entry)
/// and `K8sNativeValidation` (a `code[]` entry).
fn engines_of(template: &Path) -> Vec<&'static str> {
    let t = yaml(template);
    let targets = t["spec"]["targets"].as_array().cloned().unwrap_or_default();
    let mut engines = Vec::new();
    for target in &targets {
        if target.get("rego").is_some_and(|r| !r.is_null()) {
            engines.push(REGO);
        }
        for code in target["code"].as_array().into_iter().flatten() {
            match code["engine"].as_str() {
                Some(CEL) => engines.push(CEL),
                Some(REGO) => engines.push(REGO),
                _ => {}
            }
        }
    }
    engines.dedup();
    engines
}

/// `check --config CFG --output json INPUTS…` with `files` in a fresh policyDir and
/// `engines` allowed (none named: the default, `[K8sNativeValidation, Rego]`).
fn check(files: &[&Path], engines: &[&str], inputs: &[&Path]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for (i, f) in files.iter().enumerate() {
        std::fs::copy(f, policies.join(format!("{i}.yaml"))).unwrap();
    }
    let config = dir.path().join("config.yaml");
    let mut config_text = format!("policyDir: {}\n", policies.display());
    if !engines.is_empty() {
        config_text += &format!("gatekeeper: {{engines: [{}]}}\n", engines.join(", "));
    }
    std::fs::write(&config, config_text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&config)
        .args(["--output", "json"])
        .args(inputs)
        .output()
        .unwrap()
}

/// What check said about each case of `test`, in order: one run with every case object;
/// when that run refuses its input or policies (exit 2), one run per case, so a bad
/// object costs only its own case.
fn run_test(test: &SuiteTest, engine: &str) -> Vec<Got> {
    let files = [test.template.as_path(), test.constraint.as_path()];
    let inputs: Vec<&Path> = test.cases.iter().map(|c| c.object.as_path()).collect();
    let constraint = constraint_name(&test.constraint);
    let out = check(&files, &[engine], &inputs);
    if out.status.code() != Some(2) {
        if let Ok(got) = read_report(&out, &inputs, &constraint) {
            return got;
        }
    }
    inputs
        .iter()
        .map(|input| {
            let out = check(&files, &[engine], &[input]);
            match read_report(&out, &[input], &constraint) {
                Ok(mut got) => got.remove(0),
                Err(e) => Got {
                    violations: Err(e),
                    message: String::new(),
                },
            }
        })
        .collect()
}

fn constraint_name(path: &Path) -> String {
    yaml(path)["metadata"]["name"]
        .as_str()
        .expect("constraint metadata.name")
        .to_owned()
}

/// One [`Got`] per input from check's JSON report (one record per document, in order).
fn read_report(out: &Output, inputs: &[&Path], constraint: &str) -> Result<Vec<Got>, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed = || format!("check exited {:?}: {}", out.status.code(), stderr.trim());
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(failed());
    }
    let report: Vec<Value> =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", failed()))?;
    if report.len() != inputs.len() {
        return Err(format!(
            "{} records for {} objects (one document per object file)",
            report.len(),
            inputs.len()
        ));
    }
    Ok(report
        .iter()
        .map(|record| {
            let message = record["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Got {
                violations: violations(record, constraint),
                message,
            }
        })
        .collect())
}

/// The violations of one record: none when admitted, else the lines of the Gatekeeper
/// denial, each `[constraint] message` (a message's own further lines continue it).
fn violations(record: &Value, constraint: &str) -> Result<Vec<String>, String> {
    if record["allowed"] == Value::Bool(true) {
        return Ok(Vec::new());
    }
    let message = record["status"]["message"].as_str().unwrap_or_default();
    let Some(lines) = message.strip_prefix(DENIED) else {
        return Err(format!(
            "denied, not by a Gatekeeper violation: {message} (policies: {})",
            record["policies"]
        ));
    };
    let head = format!("[{constraint}] ");
    let mut found: Vec<String> = Vec::new();
    for line in lines.split('\n') {
        match (line.strip_prefix(&head), found.last_mut()) {
            (Some(v), _) => found.push(v.to_owned()),
            (None, Some(last)) => {
                last.push('\n');
                last.push_str(line);
            }
            (None, None) => return Err(format!("not `{head}message`: {line:?}")),
        }
    }
    Ok(found)
}

/// Whether `got` meets every assertion of `case`: `None`, or what it got instead.
fn judge(case: &Case, got: &Got) -> Option<(String, String)> {
    let expected = || {
        case.assertions
            .iter()
            .map(|a| match &a.message {
                Some(m) => format!("{:?} matching /{m}/", a.violations),
                None => format!("{:?}", a.violations),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let violations = match &got.violations {
        Ok(v) => v,
        Err(e) => return Some((expected(), format!("error: {e}"))),
    };
    let holds = case.assertions.iter().all(|a| {
        let n = violations
            .iter()
            .filter(|v| a.message.as_ref().is_none_or(|m| m.is_match(v)))
            .count();
        match a.violations {
            Expect::Yes => n > 0,
            Expect::No => n == 0,
            Expect::Count(want) => n == want,
        }
    });
    (!holds).then(|| {
        (
            expected(),
            format!("{} violations: {violations:?}", violations.len()),
        )
    })
}

/// One pass over the library on `engine`: per suite `(agreeing, run)`, and the
/// disagreements. Templates without code for `engine` are not run.
fn pass(
    engine: &'static str,
    tests: &[SuiteTest],
) -> (BTreeMap<String, (usize, usize)>, Vec<Disagreement>) {
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for test in tests {
        if !engines_of(&test.template).contains(&engine) {
            continue;
        }
        let results = run_test(test, engine);
        let entry = tally.entry(test.suite.clone()).or_default();
        for (case, got) in test.cases.iter().zip(&results) {
            entry.1 += 1;
            match judge(case, got) {
                None => entry.0 += 1,
                Some((expected, got_text)) => disagreements.push(Disagreement {
                    engine,
                    suite: format!("{}/{}", test.suite, test.name),
                    case: case.name.clone(),
                    object: case
                        .object
                        .strip_prefix(LIBRARY)
                        .unwrap_or(&case.object)
                        .to_owned(),
                    expected,
                    got: got_text,
                    message: got.message.clone(),
                }),
            }
        }
    }
    for (suite, (n, total)) in &tally {
        println!("suite {suite} ({engine}): {n}/{total}");
    }
    (tally, disagreements)
}

fn totals(tally: &BTreeMap<String, (usize, usize)>) -> (usize, usize) {
    tally.values().fold((0, 0), |(a, b), (n, t)| (a + n, b + t))
}

/// Every case of every suite agrees with its assertions, on Rego (every template) and on
/// CEL (the templates with CEL code).
#[test]
fn library_suites_agree_on_every_engine() {
    let tests = suites();
    let (rego, mut disagreements) = pass(REGO, &tests);
    let (cel, more) = pass(CEL, &tests);
    disagreements.extend(more);
    let ((rn, rt), (cn, ct)) = (totals(&rego), totals(&cel));
    println!("gatekeeper-library: {rn}/{rt} cases agree ({REGO}), {cn}/{ct} ({CEL})");
    let mut report = String::new();
    for d in &disagreements {
        let _ = writeln!(
            report,
            "- {} {} case {} ({}): expected {}; got {}; check said: {:?}",
            d.engine,
            d.suite,
            d.case,
            d.object.display(),
            d.expected,
            d.got,
            d.message
        );
    }
    assert!(rt > 0 && ct > 0, "no case ran: {rt} on Rego, {ct} on CEL");
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree with the library:\n{report}",
        disagreements.len(),
        rt + ct
    );
}

/// Every template of the library, with each Constraint its suite uses, loads with the
/// default engines (CEL where a template has it, else Rego): `check` of a plain Pod
/// exits 0 or 1, never 2.
#[test]
fn every_library_template_loads_with_the_default_engines() {
    let tests = suites();
    let pod = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        pod.path(),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: 'busybox:1.36'}]}\n",
    )
    .unwrap();
    let mut pairs: Vec<(&Path, &Path)> = tests
        .iter()
        .map(|t| (t.template.as_path(), t.constraint.as_path()))
        .collect();
    pairs.dedup();
    let mut failures = Vec::new();
    for (template, constraint) in &pairs {
        let engines = engines_of(template);
        let engine = if engines.contains(&CEL) { CEL } else { REGO };
        let out = check(&[template, constraint], &[], &[pod.path()]);
        let name = constraint.strip_prefix(LIBRARY).unwrap().display();
        println!("{name} ({engine}): exit {:?}", out.status.code());
        if !matches!(out.status.code(), Some(0 | 1)) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            failures.push(format!("{name}: {}", stderr.trim()));
        }
    }
    assert!(!pairs.is_empty(), "no template found under {LIBRARY}");
    assert!(
        failures.is_empty(),
        "{} of {} template and Constraint pairs do not load:\n{}",
        failures.len(),
        pairs.len(),
        failures.join("\n")
    );
}
