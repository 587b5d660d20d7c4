//! Which door asked: the one label the decision log and the metrics carry for every
//! decision, so that a rule refusing only at one door shows up there.

use std::fmt;

/// Every way a request reaches the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    /// The containerd socket proxy (`portcullis proxy`).
    Proxy,
    /// The kubelet's CRI calls through the proxy.
    Cri,
    /// The OCI prestart hook (`portcullis hook`, Podman and CRI-O).
    Hook,
    /// The runc wrapper (`portcullis runc`).
    Runc,
    /// The webhook server (`portcullis serve`).
    Serve,
    /// Offline (`portcullis check`).
    Check,
    /// containerd's image-verifier plugin (`portcullis verify-image`).
    VerifyImage,
}

impl Door {
    pub const ALL: [Door; 7] = [
        Door::Proxy,
        Door::Cri,
        Door::Hook,
        Door::Runc,
        Door::Serve,
        Door::Check,
        Door::VerifyImage,
    ];

    /// The name in logs, metrics and `POST /admit?door=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Proxy => "proxy",
            Door::Cri => "cri",
            Door::Hook => "hook",
            Door::Runc => "runc",
            Door::Serve => "serve",
            Door::Check => "check",
            Door::VerifyImage => "verify-image",
        }
    }

    /// A door by its name.
    pub fn from_name(name: &str) -> Option<Door> {
        Door::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Door;

    #[test]
    fn names_round_trip() {
        for door in Door::ALL {
            assert_eq!(Door::from_name(door.as_str()), Some(door));
        }
        assert_eq!(Door::from_name("kubelet"), None);
    }
}
