//! What an exec'd process may hold: no more than the container's own process. Pod Security
//! judged the container; an exec is a process in it, and Kubernetes runs execs with the
//! container's security context. Shared by the doors that see execs: the proxy
//! (`Tasks/Exec`) and the runc wrapper (`runc exec`). Pure: both are runtime-spec Process
//! objects.

use serde_json::Value;

/// Why an exec holds more than its container: the Process field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub why: String,
}

impl Refusal {
    fn new(field: &str, why: &str) -> Self {
        Self {
            field: field.to_owned(),
            why: why.to_owned(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.field, self.why)
    }
}

/// The exec'd process may not hold more than the container's own process: Pod Security
/// judged the container, and an exec is a process in it (Kubernetes execs run with the
/// container's security context). `container` and `exec` are runtime-spec Process objects.
pub fn check(container: &Value, exec: &Value) -> Result<(), Refusal> {
    check_user(container, exec)?;
    check_capabilities(container, exec)?;
    check_confinement(container, exec)
}

/// Not root, and not in group 0, unless the container's user is.
fn check_user(container: &Value, exec: &Value) -> Result<(), Refusal> {
    let uid = |p: &Value| p.pointer("/user/uid").and_then(Value::as_u64).unwrap_or(0);
    if uid(exec) == 0 && uid(container) != 0 {
        return Err(Refusal::new(
            "process.user.uid",
            &format!(
                "is 0 in a container that runs as uid {}; exec as the container's user",
                uid(container)
            ),
        ));
    }
    let gids = |p: &Value| -> Vec<u64> {
        let mut gids: Vec<u64> = p
            .pointer("/user/additionalGids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        gids.push(p.pointer("/user/gid").and_then(Value::as_u64).unwrap_or(0));
        gids
    };
    if gids(exec).contains(&0) && !gids(container).contains(&0) {
        return Err(Refusal::new("process.user",
            "puts the process in group 0, which the container's user is not in; exec as the container's user",
        ));
    }
    Ok(())
}

/// No capability outside the container's bounding set, in any set.
fn check_capabilities(container: &Value, exec: &Value) -> Result<(), Refusal> {
    let caps = |p: &Value, set: &str| -> Vec<String> {
        p.pointer(&format!("/capabilities/{set}"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // runc gives a process no capabilities its spec does not list; the container's bounding
    // set is the most any of its processes was judged to have.
    let bounding = caps(container, "bounding");
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        if let Some(extra) = caps(exec, set).into_iter().find(|c| !bounding.contains(c)) {
            return Err(Refusal::new(&format!("process.capabilities.{set}"),
                &format!("holds {extra}, which the container does not have; exec with the container's capabilities"),
            ));
        }
    }
    Ok(())
}

/// `noNewPrivileges` kept on, and the container's AppArmor profile and SELinux label.
fn check_confinement(container: &Value, exec: &Value) -> Result<(), Refusal> {
    let nnp = |p: &Value| {
        p.get("noNewPrivileges")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    if nnp(container) && !nnp(exec) {
        return Err(Refusal::new(
            "process.noNewPrivileges",
            "is off in a container that has it on; keep it on",
        ));
    }
    for field in ["apparmorProfile", "selinuxLabel"] {
        let get = |p: &Value| {
            p.get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        if get(exec) != get(container) {
            return Err(Refusal::new(
                &format!("process.{field}"),
                &format!(
                    "{:?} is not the container's {:?}; exec under the container's profile",
                    get(exec),
                    get(container)
                ),
            ));
        }
    }
    Ok(())
}
