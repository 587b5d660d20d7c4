//! `MODE[:USER:GROUP]` — the permissions and ownership of a unix socket a door listens on
//! (`proxy.listenMode`, `serve.listeners[].mode`), parsed once, when the config is loaded.
//! Binding the socket and resolving the names is `net::listener`.

/// `listenMode`: octal permission bits, optionally with owner and group (names or numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenMode {
    pub mode: u32,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// A string that is not `MODE[:USER:GROUP]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not MODE[:USER:GROUP] with MODE in octal, e.g. \"0660:root:docker\"")]
pub struct ListenModeError(pub String);

impl Default for ListenMode {
    /// `0660`, owner and group left as they are.
    fn default() -> Self {
        Self {
            mode: 0o660,
            user: None,
            group: None,
        }
    }
}

impl ListenMode {
    pub fn parse(s: &str) -> Result<Self, ListenModeError> {
        let syntax = || ListenModeError(s.to_string());
        let mut parts = s.split(':');
        let mode = parts.next().ok_or_else(syntax)?;
        let mode = u32::from_str_radix(mode, 8).map_err(|_| syntax())?;
        if mode > 0o7777 {
            return Err(syntax());
        }
        let user = parts.next().map(str::to_owned);
        let group = parts.next().map(str::to_owned);
        if parts.next().is_some() || user.is_some() != group.is_some() {
            return Err(syntax());
        }
        if matches!(&user, Some(u) if u.is_empty()) || matches!(&group, Some(g) if g.is_empty()) {
            return Err(syntax());
        }
        Ok(Self { mode, user, group })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mode_forms() {
        assert_eq!(
            ListenMode::parse("0660").unwrap(),
            ListenMode {
                mode: 0o660,
                user: None,
                group: None
            }
        );
        assert_eq!(ListenMode::parse("0660").unwrap(), ListenMode::default());
        let m = ListenMode::parse("0600:root:root").unwrap();
        assert_eq!(
            (m.mode, m.user.as_deref(), m.group.as_deref()),
            (0o600, Some("root"), Some("root"))
        );
        for bad in [
            "",
            "rw",
            "0999",
            "0660:root",
            "0660:root:root:x",
            "0660::root",
            "77777",
        ] {
            assert!(ListenMode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
