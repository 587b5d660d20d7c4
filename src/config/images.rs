//! `images:` — the built-in image rules' settings, checked at load. Judging a Pod's images
//! by them is `policy::images`; the reference grammar the registry entries are checked
//! against is here, and `policy::reference` parses images with the same functions.

use serde::Deserialize;

use super::Mode;

/// The `images:` section of the config file. Every rule is off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageRules {
    /// enforce (default), warn or audit.
    #[serde(default)]
    pub mode: Mode,
    /// Refuse tag `latest`, and images with neither tag nor digest (they mean `latest`).
    /// An image pinned by digest passes, whatever its tag.
    #[serde(default)]
    pub disallow_latest: bool,
    /// `host[:port]` or `host[:port]/path-prefix`; empty allows every registry.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
    /// Every image must carry a digest (`@sha256:…`).
    #[serde(default)]
    pub require_digest: bool,
    /// Glob patterns (`*`, `?`) refused when they match the image (see
    /// `policy::images::deny_candidates`).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A setting that cannot work, found when the config is loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidImageRules {
    /// `images.allowedRegistries[1]`, `images.deny[0]`.
    pub field: String,
    pub message: String,
}

impl ImageRules {
    /// Whether any rule is on; when none is, `policy::images::check` accepts everything.
    pub fn is_active(&self) -> bool {
        self.disallow_latest
            || self.require_digest
            || !self.allowed_registries.is_empty()
            || !self.deny.is_empty()
    }

    /// Refuses entries that could never match, so a typo is an error at load and not a
    /// registry silently denied (or a pattern silently inert) at run time.
    pub fn validate(&self) -> Result<(), InvalidImageRules> {
        for (i, entry) in self.allowed_registries.iter().enumerate() {
            check_registry_entry(entry).map_err(|message| InvalidImageRules {
                field: format!("images.allowedRegistries[{i}]"),
                message,
            })?;
        }
        for (i, pattern) in self.deny.iter().enumerate() {
            let message = if pattern.is_empty() {
                "a pattern cannot be empty"
            } else if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
                "a pattern with spaces or control characters can never match an image"
            } else {
                continue;
            };
            return Err(InvalidImageRules {
                field: format!("images.deny[{i}]"),
                message: format!("{}: {message}", quote(pattern)),
            });
        }
        Ok(())
    }
}

fn check_registry_entry(entry: &str) -> Result<(), String> {
    let (host, prefix) = match entry.split_once('/') {
        Some((host, prefix)) => (host, Some(prefix)),
        None => (entry, None),
    };
    let fail = |why: &str| Err(format!("{}: {why}", quote(entry)));
    if entry.is_empty() {
        return fail("an entry cannot be empty");
    }
    if !valid_host_port(host) {
        return fail(
            "expected a registry host[:port] such as docker.io or localhost:5000, \
                     optionally followed by /path",
        );
    }
    if let Some(prefix) = prefix {
        if prefix.bytes().any(|b| b.is_ascii_uppercase()) {
            return fail("repository paths are lowercase");
        }
        if let Some(why) = prefix.split('/').find_map(path_component_error) {
            return fail(&format!("the path after the registry is invalid: {why}"));
        }
    }
    Ok(())
}

/// `quote` of `policy`, for the same messages: the text in Rust debug quotes, cut after
/// 200 characters.
fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 200;
    match s.char_indices().nth(MAX_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
    }
}

/// `domainAndPort` of regexp.go: a DNS-like name, an IPv4 address or a bracketed IPv6
/// address, then an optional `:port`.
pub fn valid_host_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (addr_ok, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        (host.split('.').all(valid_domain_component), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        }
        _ => false,
    }
}

/// Why `c` is not a `pathComponent`, or `None` when it is one.
pub fn path_component_error(c: &str) -> Option<&'static str> {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() {
        return Some("it has an empty component (\"//\", or a leading or trailing \"/\")");
    }
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Some("each component must start and end with a-z or 0-9");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&x| x == b'-');
        if !ok {
            return Some("components are a-z 0-9 joined by one '.', one or two '_', or '-'s");
        }
    }
    None
}
