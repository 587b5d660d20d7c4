//! Docker image references, parsed and normalised the way containerd and the kubelet see
//! them, so policies judge the image that will actually be pulled and not its spelling.
//!
//! This is `ParseNormalizedNamed` of github.com/distribution/reference (normalize.go for
//! the domain split, regexp.go and reference.go for the grammar) written out by hand:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port ]          host: DNS-like name, IPv4, or [IPv6]
//! path             := path-component [ "/" path-component ]*     (at most 255 bytes)
//! path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" hex          sha256/sha384/sha512, lowercase hex
//! ```
//!
//! Normalisation: the first `/`-separated component is the registry when it contains a
//! `.` or a `:`, is `localhost`, or has an uppercase letter; otherwise the registry is
//! `docker.io`. `index.docker.io` is `docker.io`. A single-component path on `docker.io`
//! gets `library/` (`nginx` → `docker.io/library/nginx`). A reference with neither tag
//! nor digest means tag `latest`; one with a digest and no tag has no tag.
//!
//! Two deliberate differences, both refusing what nothing could pull: upstream quietly
//! accepts a first component that looks like a registry (has a `.`) but is not a valid
//! host, such as `a_b.c/app`, as a registry-less name (a policy could not say where it
//! comes from); and it has no length limit on the registry, where this allows 255
//! characters (DNS names have at most 253).

use std::fmt;

use super::quote;
use crate::config::images::{path_component_error, valid_host_port};

/// Docker Hub, as references name it once normalised.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
/// `RepositoryNameTotalLengthMax`: the path (without registry) after normalisation.
const MAX_PATH_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;
/// Not in upstream, which has no limit: a DNS name has at most 253 characters, and a
/// bound keeps every part of a valid reference (so every message) short.
const MAX_REGISTRY_LEN: usize = 255;

/// A parsed, normalised image reference. Equality and hashing ignore whether the tag was
/// written: `nginx` and `docker.io/library/nginx:latest` are the same image.
#[derive(Debug, Clone)]
pub struct ImageRef {
    /// `docker.io`, `registry.example.com`, `localhost:5000`, `[::1]:5000`.
    pub registry: String,
    /// The path within the registry: `library/nginx`, `user/app`, `team/sub/app`.
    pub repository: String,
    /// The tag; `Some("latest")` when the reference had neither tag nor digest (see
    /// [`ImageRef::tag_is_implied`]); `None` when it had only a digest.
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:<64 hex digits>`.
    pub digest: Option<String>,
    tag_implied: bool,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the reference is empty")]
    Empty,
    #[error("a 64-character hexadecimal string is an image ID, not a repository name")]
    ImageId,
    #[error("repository name {0} must be lowercase")]
    Uppercase(String),
    #[error("registry {0} is not a valid host[:port] (at most 255 characters)")]
    InvalidRegistry(String),
    #[error("repository name {name} is invalid: {reason}")]
    InvalidPath { name: String, reason: &'static str },
    #[error("repository name is {0} characters long after normalisation; at most 255 are allowed")]
    PathTooLong(usize),
    #[error(
        "tag {0} is invalid: a tag is 1 to 128 of A-Z a-z 0-9 _ . - and cannot start with . or -"
    )]
    InvalidTag(String),
    #[error("digest {0} is invalid: expected ALGORITHM:HEX such as sha256:<64 hex digits>")]
    InvalidDigest(String),
    #[error("digest {digest} is invalid: {reason}")]
    UnsupportedDigest {
        digest: String,
        reason: &'static str,
    },
}

impl PartialEq for ImageRef {
    fn eq(&self, other: &Self) -> bool {
        (&self.registry, &self.repository, &self.tag, &self.digest)
            == (
                &other.registry,
                &other.repository,
                &other.tag,
                &other.digest,
            )
    }
}

impl Eq for ImageRef {}

impl std::hash::Hash for ImageRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.registry, &self.repository, &self.tag, &self.digest).hash(state);
    }
}

impl ImageRef {
    /// Parses and normalises `s` as `ParseNormalizedNamed` does. Never panics.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::ImageId);
        }
        let (registry, remainder) = split_registry(s);

        // Name, tag and digest cannot contain '@'; the path cannot contain ':'.
        let (rest, digest) = match remainder.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (remainder, None),
        };
        let (path, tag) = match rest.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (rest, None),
        };

        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(quote(path)));
        }
        if registry.len() > MAX_REGISTRY_LEN || !valid_host_port(registry) {
            return Err(ReferenceError::InvalidRegistry(quote(registry)));
        }
        if let Some(reason) = path.split('/').find_map(path_component_error) {
            return Err(ReferenceError::InvalidPath {
                name: quote(path),
                reason,
            });
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        if repository.len() > MAX_PATH_LEN {
            return Err(ReferenceError::PathTooLong(repository.len()));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(ReferenceError::InvalidTag(quote(tag)));
            }
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }

        let tag_implied = tag.is_none() && digest.is_none();
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository,
            tag: if tag_implied {
                Some(DEFAULT_TAG.to_owned())
            } else {
                tag.map(str::to_owned)
            },
            digest: digest.map(str::to_owned),
            tag_implied,
        })
    }

    /// True when the reference named no tag and no digest, so `tag` is the implied
    /// `latest`.
    pub fn tag_is_implied(&self) -> bool {
        self.tag_implied
    }

    /// `registry/repository`, without tag or digest: `docker.io/library/nginx`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short name Docker shows: `nginx`, `user/app`, `registry.example.com/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        match self.repository.strip_prefix(OFFICIAL_PREFIX) {
            Some(official) if !official.contains('/') => official.to_owned(),
            _ => self.repository.clone(),
        }
    }

    /// The short form Docker shows, with the tag as written (an implied `latest` is left
    /// out) and the digest: `nginx`, `busybox:1.36@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        if let (Some(tag), false) = (&self.tag, self.tag_implied) {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

/// The fully normalised reference: `docker.io/library/nginx:latest`,
/// `docker.io/library/busybox@sha256:…`, `localhost:5000/app:v1`.
impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// `splitDockerDomain`: the registry (normalised) and the rest, tag and digest included.
fn split_registry(s: &str) -> (&str, &str) {
    let Some((first, rest)) = s.split_once('/') else {
        // A single component ("nginx", "nginx:1", even "localhost:5000") is a Hub name.
        return (DEFAULT_REGISTRY, s);
    };
    if first == LEGACY_DEFAULT_REGISTRY {
        (DEFAULT_REGISTRY, rest)
    } else if first == "localhost"
        || first.contains(['.', ':'])
        || first.bytes().any(|b| b.is_ascii_uppercase())
    {
        (first, rest)
    } else {
        (DEFAULT_REGISTRY, s)
    }
}

// `domainAndPort` (`valid_host_port`) and `pathComponent` (`path_component_error`) are in
// config::images, which checks `images.allowedRegistries` entries with them at load.

/// `[\w][\w.-]{0,127}`, `\w` being ASCII.
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `digestPat` of regexp.go, then what go-digest's `Parse` adds: a known algorithm and
/// its exact length of lowercase hex.
fn check_digest(d: &str) -> Result<(), ReferenceError> {
    let invalid = || ReferenceError::InvalidDigest(quote(d));
    let (algorithm, hex) = d.split_once(':').ok_or_else(invalid)?;
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    if !algorithm.split(['-', '_', '+', '.']).all(component_ok)
        || hex.len() < 32
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(invalid());
    }
    let unsupported = |reason| ReferenceError::UnsupportedDigest {
        digest: quote(d),
        reason,
    };
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(unsupported(
                "the algorithm must be sha256, sha384 or sha512",
            ))
        }
    };
    if hex.len() != expected {
        return Err(unsupported(
            "wrong length for its algorithm (sha256 has 64 hex digits)",
        ));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(unsupported("hex digits must be lowercase"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
