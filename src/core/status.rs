//! Refusals worded as kube-apiserver words them, so a user sees the same message from a
//! runtime door as from `kubectl apply`.

use crate::review::Status;

/// Upstream `webhookerrors.ToStatusErr`, without the `pods "x" is forbidden: ` prefix
/// (the door adds its own context).
pub(super) fn denial_status(name: &str, status: Option<Status>) -> Status {
    let status = status.unwrap_or_default();
    let code = status.code.filter(|c| *c != 0).unwrap_or(403);
    let denied_by = format!("admission webhook {name:?} denied the request");
    let message = if !status.message.is_empty() {
        format!("{denied_by}: {}", status.message)
    } else if !status.reason.is_empty() {
        format!("{denied_by}: {}", status.reason)
    } else {
        format!("{denied_by} without explanation")
    };
    let reason = match (status.reason.is_empty(), code) {
        (false, _) => status.reason,
        (true, 500) => "InternalError".into(),
        (true, _) => "Forbidden".into(),
    };
    Status {
        code: Some(code),
        message,
        reason,
        status: "Failure".into(),
    }
}

/// A `Failure` status: 403 `Forbidden` for a policy's denial, 500 `InternalError` for a
/// policy that could not judge, 400 `BadRequest` for a request a webhook cannot take.
pub(super) fn failure_status(code: i32, reason: &str, message: String) -> Status {
    Status {
        code: Some(code),
        message,
        reason: reason.into(),
        status: "Failure".into(),
    }
}
