//! Mutated Pod → ContainerRecord: write what mutating policies changed back into the
//! containerd container, or refuse the request.
//!
//! Only fields with an exact counterpart in the container are writable (the table is in
//! docs/mapping.md); a change to any other Pod field is a [`WriteBackError`] naming it, and
//! the record is left as it was. Changes are applied to the spec as a `serde_json::Value`, so
//! every spec field the Pod view does not cover survives unchanged.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::changes::{changed_paths, unset, Field};
use super::pod::ANNOTATION_PREFIX;
use super::spec::Node;
use super::{labels, quantity, ContainerRecord, PodOptions};

/// Why a mutated Pod could not be written back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct WriteBackError {
    /// JSON pointer of the Pod field (`/spec/hostNetwork`).
    pub field: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The field has no counterpart in a containerd container.
    NotWritable,
    /// A `portcullis.dev/` annotation: Portcullis computes it from the container.
    ReadOnly,
    /// `runtimeClassName` names a class that `proxy.runtimeClasses` does not map.
    UnknownRuntimeClass(String),
    /// The new value cannot be expressed in the runtime spec; says why.
    Invalid(String),
}

impl WriteBackError {
    fn describe(&self) -> String {
        let f = &self.field;
        match &self.reason {
            Reason::NotWritable => format!(
                "a mutation changed the Pod field `{f}`, which cannot be written back into a \
                 containerd container; the request is refused"
            ),
            Reason::ReadOnly => format!(
                "a mutation changed `{f}`: `{ANNOTATION_PREFIX}` annotations describe the container \
                 and cannot be written back into a containerd container; the request is refused"
            ),
            Reason::UnknownRuntimeClass(class) => format!(
                "a mutation set `{f}` to RuntimeClass `{class}`, which names no containerd runtime, \
                 so it cannot be written back into a containerd container: add `{class}` to \
                 proxy.runtimeClasses; the request is refused"
            ),
            Reason::Invalid(why) => format!(
                "a mutation set the Pod field `{f}` to a value that cannot be written back into a \
                 containerd container: {why}; the request is refused"
            ),
        }
    }
}

pub(super) fn err(field: &str, reason: Reason) -> WriteBackError {
    WriteBackError {
        field: field.to_owned(),
        reason,
    }
}

pub(super) fn invalid(field: &str, why: impl Into<String>) -> WriteBackError {
    err(field, Reason::Invalid(why.into()))
}

/// Write the changes between `before` (exactly [`super::pod::to_pod_value`] of `record`) and
/// `after` (the Pod after every mutation) into `record`. Returns the Pod fields written, as
/// JSON pointers, for logging. On error `record` is unchanged.
pub fn write_back(
    record: &mut ContainerRecord,
    before: &Value,
    after: &Value,
    opts: &PodOptions,
) -> Result<Vec<String>, WriteBackError> {
    if !after.is_object() {
        return Err(invalid("", "the mutated Pod is not a JSON object"));
    }
    let mut paths = Vec::new();
    changed_paths(Some(before), Some(after), "", &mut paths);
    let mut fields: Vec<Field> = Vec::new();
    for p in &paths {
        fields.push(Field::of(p).ok_or_else(|| err(p, Reason::NotWritable))?);
    }
    fields.sort();
    fields.dedup();
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let mut next = record.clone();
    let mut w = Writer {
        rec: &mut next,
        after,
        opts,
    };
    w.apply(&fields)?;
    *record = next;
    Ok(fields.iter().map(Field::pointer).collect())
}

pub(super) struct Writer<'a> {
    pub(super) rec: &'a mut ContainerRecord,
    after: &'a Value,
    opts: &'a PodOptions,
}

/// The object at `path` in `spec`, created when absent or null.
pub(super) fn obj_mut<'v>(
    spec: &'v mut Value,
    path: &[&str],
    field: &str,
) -> Result<&'v mut Map<String, Value>, WriteBackError> {
    let mut cur = spec;
    for (i, k) in path.iter().enumerate() {
        let m = cur.as_object_mut().ok_or_else(|| {
            invalid(
                field,
                format!("runtime spec `{}` is not an object", path[..i].join(".")),
            )
        })?;
        let slot = m.entry((*k).to_owned()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        cur = slot;
    }
    let shown = path.join(".");
    cur.as_object_mut()
        .ok_or_else(|| invalid(field, format!("runtime spec `{shown}` is not an object")))
}

/// Remove `key` from the object at `path`, if there is one.
fn remove(spec: &mut Value, path: &[&str], key: &str) {
    let mut cur = Some(spec);
    for k in path {
        cur = cur.and_then(|v| v.get_mut(*k));
    }
    if let Some(Value::Object(m)) = cur {
        m.remove(key);
    }
}

impl Writer<'_> {
    pub(super) fn get(&self, ptr: &str) -> Option<&Value> {
        self.after.pointer(ptr).filter(|v| !v.is_null())
    }

    pub(super) fn strings(&self, ptr: &str) -> Result<Vec<String>, WriteBackError> {
        match self.get(ptr) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(ptr, "expected a list of strings"))
                })
                .collect(),
            Some(_) => Err(invalid(ptr, "expected a list of strings")),
        }
    }

    pub(super) fn id(&self, ptr: &str) -> Result<Option<u32>, WriteBackError> {
        self.get(ptr)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid(ptr, "expected an id between 0 and 4294967295"))
            })
            .transpose()
    }

    pub(super) fn bool(&self, ptr: &str) -> Result<Option<bool>, WriteBackError> {
        self.get(ptr)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| invalid(ptr, "expected true or false"))
            })
            .transpose()
    }

    /// The spec being written, for reading.
    pub(super) fn spec(&self) -> Result<Node<'_>, WriteBackError> {
        Node::root(&self.rec.spec).map_err(|e| invalid("", e.to_string()))
    }

    fn apply(&mut self, fields: &[Field]) -> Result<(), WriteBackError> {
        let has = |f: &Field| fields.contains(f);
        if has(&Field::RuntimeClass) {
            self.runtime_class()?;
        }
        if has(&Field::Image) {
            let p = Field::Image.pointer();
            self.rec.image = match self.get(&p) {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(invalid(&p, "expected a string")),
            };
        }
        if has(&Field::Command) || has(&Field::Args) {
            self.command()?;
        }
        if has(&Field::Env) {
            self.env()?;
        }
        if has(&Field::WorkingDir) {
            self.working_dir()?;
        }
        if has(&Field::RunAsUser) {
            let p = Field::RunAsUser.pointer();
            let uid = self
                .id(&p)?
                .ok_or_else(|| invalid(&p, "a container runs as some uid; set runAsUser"))?;
            obj_mut(&mut self.rec.spec, &["process", "user"], &p)?.insert("uid".into(), uid.into());
        }
        if has(&Field::RunAsGroup) || has(&Field::SupplementalGroups) {
            self.groups(has(&Field::RunAsGroup))?;
        }
        if has(&Field::RunAsNonRoot) {
            let p = Field::RunAsNonRoot.pointer();
            let uid = self
                .spec()?
                .path("process.user.uid")
                .u32()
                .ok()
                .flatten()
                .unwrap_or(0);
            if self.bool(&p)? == Some(true) && uid == 0 {
                return Err(invalid(
                    &p,
                    "runAsNonRoot is true but the container runs as uid 0; set runAsUser too",
                ));
            }
        }
        if has(&Field::Capabilities) {
            self.capabilities()?;
        }
        if has(&Field::AllowPrivilegeEscalation) {
            let p = Field::AllowPrivilegeEscalation.pointer();
            match self.bool(&p)? {
                Some(allow) => {
                    obj_mut(&mut self.rec.spec, &["process"], &p)?
                        .insert("noNewPrivileges".into(), (!allow).into());
                }
                None => remove(&mut self.rec.spec, &["process"], "noNewPrivileges"),
            }
        }
        if has(&Field::ReadOnlyRootFilesystem) {
            let p = Field::ReadOnlyRootFilesystem.pointer();
            let ro = self.bool(&p)?.unwrap_or(false);
            if self.rec.spec.get("root").is_none_or(Value::is_null) {
                return Err(invalid(&p, "the runtime spec has no `root`"));
            }
            obj_mut(&mut self.rec.spec, &["root"], &p)?.insert("readonly".into(), ro.into());
        }
        if has(&Field::MemoryLimit) {
            self.memory()?;
        }
        if has(&Field::CpuLimit) {
            self.cpu()?;
        }
        self.metadata(fields)
    }

    fn runtime_class(&mut self) -> Result<(), WriteBackError> {
        let p = Field::RuntimeClass.pointer();
        let class =
            match self.get(&p) {
                Some(Value::String(s)) => s.clone(),
                None => return Err(invalid(
                    &p,
                    "removing runtimeClassName would mean the default runtime, which is not known \
                     here; set a class from proxy.runtimeClasses",
                )),
                Some(_) => return Err(invalid(&p, "expected a string")),
            };
        let runtime = self
            .opts
            .runtime_classes
            .get(&class)
            .ok_or_else(|| err(&p, Reason::UnknownRuntimeClass(class)))?;
        self.rec.runtime = runtime.clone();
        Ok(())
    }

    /// `process.args = command ++ args`: the runtime spec has one argv, no entrypoint/cmd split.
    fn command(&mut self) -> Result<(), WriteBackError> {
        let cp = Field::Command.pointer();
        let command = self.strings(&cp)?;
        let args = self.strings(&Field::Args.pointer())?;
        if command.is_empty() {
            return Err(invalid(
                &cp,
                if args.is_empty() {
                    "the container would have nothing to run"
                } else {
                    "`args` without `command` means the image entrypoint, which the runtime spec does \
                     not keep; set `command` to the full argv"
                },
            ));
        }
        let argv: Vec<Value> = command.into_iter().chain(args).map(Value::String).collect();
        obj_mut(&mut self.rec.spec, &["process"], &cp)?.insert("args".into(), Value::Array(argv));
        Ok(())
    }

    fn env(&mut self) -> Result<(), WriteBackError> {
        let p = Field::Env.pointer();
        // Variables the spec held without `=` keep that form; a new valueless one is `K=`.
        let raw: Vec<String> = self
            .spec()?
            .path("process.env")
            .strings()
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let items = match self.get(&p) {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(invalid(&p, "expected a list")),
        };
        let mut env = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{p}/{i}");
            if item.get("valueFrom").is_some_and(|v| !unset(Some(v))) {
                return Err(err(&format!("{at}/valueFrom"), Reason::NotWritable));
            }
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty() && !n.contains('='));
            let name = name.ok_or_else(|| {
                invalid(&format!("{at}/name"), "a variable needs a name without `=`")
            })?;
            env.push(Value::String(
                match item.get("value").filter(|v| !v.is_null()) {
                    Some(Value::String(v)) => format!("{name}={v}"),
                    None if raw.iter().any(|r| r == name) => name.to_owned(),
                    None => format!("{name}="),
                    Some(_) => return Err(invalid(&format!("{at}/value"), "expected a string")),
                },
            ));
        }
        obj_mut(&mut self.rec.spec, &["process"], &p)?.insert("env".into(), Value::Array(env));
        Ok(())
    }

    fn working_dir(&mut self) -> Result<(), WriteBackError> {
        let p = Field::WorkingDir.pointer();
        let cwd = match self.get(&p) {
            Some(Value::String(s)) if s.starts_with('/') => s.clone(),
            _ => {
                return Err(invalid(
                    &p,
                    "the runtime spec needs an absolute working directory",
                ))
            }
        };
        obj_mut(&mut self.rec.spec, &["process"], &p)?.insert("cwd".into(), cwd.into());
        Ok(())
    }

    fn quantity(
        &self,
        ptr: &str,
        parse: fn(&str) -> Option<i64>,
    ) -> Result<Option<i64>, WriteBackError> {
        let text = match self.get(ptr) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(invalid(ptr, "expected a quantity")),
        };
        match parse(&text) {
            Some(v) if v > 0 => Ok(Some(v)),
            _ => Err(invalid(ptr, format!("`{text}` is not a positive quantity"))),
        }
    }

    fn memory(&mut self) -> Result<(), WriteBackError> {
        let p = Field::MemoryLimit.pointer();
        match self.quantity(&p, quantity::to_bytes)? {
            Some(bytes) => {
                obj_mut(&mut self.rec.spec, &["linux", "resources", "memory"], &p)?
                    .insert("limit".into(), bytes.into());
            }
            None => remove(
                &mut self.rec.spec,
                &["linux", "resources", "memory"],
                "limit",
            ),
        }
        Ok(())
    }

    /// quota = millicores × period / 1000 (period kept, else 100000), at least 1000 µs as
    /// the kernel requires (kubelet `milliCPUToQuota`).
    fn cpu(&mut self) -> Result<(), WriteBackError> {
        let p = Field::CpuLimit.pointer();
        let Some(millis) = self.quantity(&p, quantity::to_millis)? else {
            remove(&mut self.rec.spec, &["linux", "resources", "cpu"], "quota");
            return Ok(());
        };
        let period = self
            .spec()?
            .path("linux.resources.cpu.period")
            .u64()
            .ok()
            .flatten()
            .filter(|p| *p > 0);
        let quota =
            ((i128::from(millis) * i128::from(period.unwrap_or(100_000)) + 999) / 1000).max(1000);
        let quota = i64::try_from(quota).map_err(|_| invalid(&p, "the CPU limit is too large"))?;
        let cpu = obj_mut(&mut self.rec.spec, &["linux", "resources", "cpu"], &p)?;
        cpu.insert("quota".into(), quota.into());
        if period.is_none() {
            cpu.insert("period".into(), 100_000.into());
        }
        Ok(())
    }

    /// Labels are containerd labels. An annotation is a spec annotation when the spec has
    /// that key, else a containerd label; `portcullis.dev/` annotations are read-only.
    fn metadata(&mut self, fields: &[Field]) -> Result<(), WriteBackError> {
        let spec_keys: Vec<String> = self
            .spec()?
            .get("annotations")
            .string_map()
            .unwrap_or_default()
            .into_keys()
            .collect();
        let mut label_writes: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
        for f in fields {
            let (key, is_label) = match f {
                Field::Label(k) => (k, true),
                Field::Annotation(k) => (k, false),
                _ => continue,
            };
            let p = f.pointer();
            let value = match self.get(&p) {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(invalid(&p, "expected a string")),
            };
            if is_label {
                if !labels::is_label_key(key)
                    || !value.as_deref().is_none_or(labels::is_label_value)
                {
                    return Err(invalid(&p, "not a valid Kubernetes label (key: [prefix/]name, value: at most 63 characters of [A-Za-z0-9-_.])"));
                }
            } else if key.starts_with(ANNOTATION_PREFIX) {
                return Err(err(&p, Reason::ReadOnly));
            } else if spec_keys.contains(key) {
                let ann = obj_mut(&mut self.rec.spec, &["annotations"], &p)?;
                match value {
                    Some(v) => ann.insert(key.clone(), v.into()),
                    None => ann.remove(key),
                };
                continue;
            }
            if let Some((other, v)) = label_writes.get(key) {
                if *v != value {
                    return Err(invalid(
                        &p,
                        format!("it conflicts with the change to `{other}`"),
                    ));
                }
            }
            label_writes.insert(key.clone(), (p, value));
        }
        for (key, (_, value)) in label_writes {
            match value {
                Some(v) => self.rec.labels.insert(key, v),
                None => self.rec.labels.remove(&key),
            };
        }
        Ok(())
    }
}
