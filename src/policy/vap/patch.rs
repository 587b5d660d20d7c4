//! `patchType: JSONPatch`: the expression's list of `JSONPatch` values, applied to the
//! object in order — upstream `jsonPatcher` (k8s.io/apiserver/pkg/admission/plugin/
//! policy/mutating/patch/json_patch.go), which applies RFC 6902 with evanphx/json-patch
//! v4. Two of that library's ways are kept: a failed `test` leaves the object as it was
//! (no error), and `replace` of a missing object member adds it.

use serde_json::{json, Value};

use super::expr::{cel_to_json, type_name};

/// The operations RFC 6902 defines.
const OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

/// Applies the JSON Patch `result` (what the expression gave) to `object`.
pub(crate) fn apply(object: &Value, result: &cel::Value) -> Result<Value, String> {
    let cel::Value::List(items) = result else {
        return Err(format!(
            "type mismatch: JSONPatchType.expression should evaluate to array, not {}",
            type_name(result)
        ));
    };
    let mut ops = Vec::with_capacity(items.len());
    for item in items.iter() {
        ops.push(operation(item)?);
    }
    let mut patched = object.clone();
    for (op, kind) in ops {
        let mut op = op;
        if kind == "replace" {
            op = replace_missing_as_add(&patched, op);
        }
        // One operation per call, as jsonPatcher applies them: a failed one has nothing
        // before it to undo, so the crate's `unreachable!` on a failed undo cannot be
        // reached, and a half-applied `move` is dropped with the error below.
        let single = [op];
        if let Err(e) = json_patch::patch(&mut patched, &single) {
            if matches!(e.kind, json_patch::PatchErrorKind::TestFailed) {
                return Ok(object.clone());
            }
            return Err(format!(
                "JSON Patch: {kind} operation does not apply: {}: {}",
                e.path, e.kind
            ));
        }
    }
    Ok(patched)
}

/// One `JSONPatch{op, path, from, value}` as a json-patch operation and its kind.
fn operation(item: &cel::Value) -> Result<(json_patch::PatchOperation, String), String> {
    let cel::Value::Map(_) = item else {
        return Err(format!(
            "type mismatch: JSONPatchType.expression should evaluate to array of JSONPatch, \
             got element of {}",
            type_name(item)
        ));
    };
    let fields = cel_to_json(item).map_err(|e| {
        format!("JSONPath valueExpression evaluated to a type that could not marshal to JSON: {e}")
    })?;
    let text = |key: &str| -> Result<String, String> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("JSONPatch {key} must be a string, not {other}")),
        }
    };
    let (op, path, from) = (text("op")?, text("path")?, text("from")?);
    if !OPS.contains(&op.as_str()) {
        return Err(format!("JSON Patch: Unexpected kind: {op}"));
    }
    let mut raw = json!({"op": op, "path": path});
    if !from.is_empty() {
        raw["from"] = Value::String(from);
    }
    match fields.get("value") {
        Some(value) => raw["value"] = value.clone(),
        None if matches!(op.as_str(), "add" | "replace" | "test") => {
            return Err(format!("JSON Patch: {op} operation has no value at {path}"));
        }
        None => {}
    }
    let parsed = serde_json::from_value(raw)
        .map_err(|e| format!("JSON Patch: invalid {op} operation at {path}: {e}"))?;
    Ok((parsed, op))
}

/// evanphx/json-patch v4 replaces a missing member of an object by adding it.
fn replace_missing_as_add(
    doc: &Value,
    op: json_patch::PatchOperation,
) -> json_patch::PatchOperation {
    let json_patch::PatchOperation::Replace(r) = op else {
        return op;
    };
    let Some((parent, last)) = r.path.split_back() else {
        return json_patch::PatchOperation::Replace(r);
    };
    let missing_member = parent
        .resolve(doc)
        .ok()
        .and_then(Value::as_object)
        .is_some_and(|o| !o.contains_key(last.decoded().as_ref()));
    if missing_member {
        json_patch::PatchOperation::Add(json_patch::AddOperation {
            path: r.path,
            value: r.value,
        })
    } else {
        json_patch::PatchOperation::Replace(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::expr::json_to_cel;
    use super::*;

    fn apply_json(object: Value, ops: Value) -> Result<Value, String> {
        apply(&object, &json_to_cel(&ops).unwrap())
    }

    #[test]
    fn a_failing_operation_after_applied_ones_is_an_error_not_a_panic() {
        let object = json!({"a": {"b": 1}, "c": [1]});
        let err = apply_json(
            object.clone(),
            json!([
                {"op": "add", "path": "/d", "value": 2},
                {"op": "move", "from": "/a", "path": "/a/b/x"},
            ]),
        )
        .unwrap_err();
        assert!(err.contains("move operation does not apply"), "{err}");
        let err = apply_json(
            object.clone(),
            json!([
                {"op": "copy", "from": "/c", "path": "/d"},
                {"op": "remove", "path": "/nope"},
            ]),
        )
        .unwrap_err();
        assert!(err.contains("remove operation does not apply"), "{err}");
        let kept = apply_json(
            object.clone(),
            json!([
                {"op": "add", "path": "/d", "value": 2},
                {"op": "test", "path": "/a/b", "value": 2},
            ]),
        );
        assert_eq!(kept.unwrap(), object, "a failed test leaves the object");
    }
}
