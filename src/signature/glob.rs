//! Image globs of `ImageVerificationPolicy` (`spec.images`, `spec.allow`), with the
//! semantics of sigstore policy-controller's `ClusterImagePolicy` (pkg/apis/glob), so that
//! its policies' globs mean the same here:
//!
//! - `*` matches any run of characters except `/`; `**` any run of characters, `/`
//!   included. Every other character matches itself (case-sensitive). The whole name must
//!   match.
//! - Characters allowed: `a-z A-Z 0-9 - _ : / * .` as upstream, plus `@` (so an entry can
//!   name a digest: `registry.example/base@sha256:*`).
//! - Upstream rewrites `*` to `index.docker.io/library/*` and `*/*` to
//!   `index.docker.io/*/*`. We extend that to every glob without a registry, as Docker
//!   normalises image names: `busybox*` means `index.docker.io/library/busybox*`,
//!   `myuser/*` means `index.docker.io/myuser/*`. The first `/`-separated part is a
//!   registry when it has a `.`, a `:` or a `*`, or is `localhost`; a glob without `/`
//!   containing `**` (such as `**`) is kept as is.
//!
//! What a glob is matched against (the image's names) is [`names`]: upstream matches
//! go-containerregistry's `Reference.Name()`, `registry/repository:tag` or
//! `registry/repository@digest`, with Docker Hub spelled `index.docker.io`. We match the
//! repository alone too, so that a glob naming a repository (`ghcr.io/foo`) covers all of
//! its tags and digests, where upstream matched it only when the image was written
//! without tag (through a deprecated fallback to the text as written).

use std::fmt;

/// Docker Hub as policy-controller (go-containerregistry) spells it.
pub const DOCKER_HUB: &str = "index.docker.io";
/// Docker Hub as containerd and our [`ImageRef`](crate::policy::reference::ImageRef) spell it.
const DOCKER_HUB_SHORT: &str = "docker.io";

/// A checked glob, normalised (a registry-less glob has Docker Hub's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// As written in the policy, for messages.
    pub written: String,
    normalised: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`: any run without `/`.
    Star,
    /// `**`: any run.
    Stars,
}

/// Why a glob cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidGlob(pub String);

impl fmt::Display for InvalidGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Glob {
    /// Checks and normalises `written`.
    pub fn parse(written: &str) -> Result<Glob, InvalidGlob> {
        if written.is_empty() {
            return Err(InvalidGlob("a glob cannot be empty".into()));
        }
        if let Some(bad) = written.chars().find(|&c| !allowed(c)) {
            return Err(InvalidGlob(format!(
                "{written:?} has {bad:?}; a glob has only a-z A-Z 0-9 - _ : / . @ and * or ** \
                 (no regular expressions)"
            )));
        }
        if written.contains("***") {
            return Err(InvalidGlob(format!(
                "{written:?} has ***; use * (within a path segment) or ** (across segments)"
            )));
        }
        Ok(Glob {
            written: written.to_string(),
            normalised: tokens(&normalise(written)),
        })
    }

    /// Whether the glob matches any of `names` (see [`names`]).
    pub fn matches_any(&self, names: &[String]) -> bool {
        names.iter().any(|name| self.matches(name))
    }

    /// Whether the glob matches `name` as a whole.
    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        // reachable[i]: the tokens seen so far can match text[..i]. One pass per token,
        // O(tokens × text), no backtracking.
        let mut reachable = vec![false; text.len() + 1];
        reachable[0] = true;
        for token in &self.normalised {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::Char(c) => {
                    for i in 0..text.len() {
                        next[i + 1] = reachable[i] && text[i] == *c;
                    }
                }
                Token::Star | Token::Stars => {
                    let mut open = false;
                    for i in 0..=text.len() {
                        open |= reachable[i];
                        next[i] = open;
                        if *token == Token::Star && i < text.len() && text[i] == '/' {
                            open = false;
                        }
                    }
                }
            }
            reachable = next;
        }
        reachable[text.len()]
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '/' | '*' | '.' | '@')
}

/// The glob with Docker Hub's registry (and `library/`) when it names none.
fn normalise(glob: &str) -> String {
    if glob == "*/*" {
        return format!("{DOCKER_HUB}/*/*");
    }
    match glob.split_once('/') {
        None if glob.contains("**") => glob.to_string(),
        None => format!("{DOCKER_HUB}/library/{glob}"),
        Some((first, _))
            if first.contains(['.', ':', '*']) || first == "localhost" || first.is_empty() =>
        {
            glob.to_string()
        }
        Some(_) => format!("{DOCKER_HUB}/{glob}"),
    }
}

fn tokens(glob: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '*' {
            out.push(Token::Char(c));
        } else if chars.peek() == Some(&'*') {
            chars.next();
            out.push(Token::Stars);
        } else {
            out.push(Token::Star);
        }
    }
    out
}

/// The names a glob is matched against for `registry/repository`, its tag (if the
/// reference has one; an implied `latest` counts) and the digest being verified (when
/// known): `R/P`, `R/P:TAG` and `R/P@DIGEST`. Docker Hub images have both spellings of the registry,
/// `index.docker.io` (policy-controller's) and `docker.io` (containerd's), so globs
/// written either way match.
pub fn names(
    registry: &str,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&str>,
) -> Vec<String> {
    let registries: &[&str] = if registry == DOCKER_HUB_SHORT || registry == DOCKER_HUB {
        &[DOCKER_HUB, DOCKER_HUB_SHORT]
    } else {
        &[registry]
    };
    let mut names = Vec::new();
    for r in registries {
        names.push(format!("{r}/{repository}"));
        if let Some(tag) = tag {
            names.push(format!("{r}/{repository}:{tag}"));
        }
        if let Some(digest) = digest {
            names.push(format!("{r}/{repository}@{digest}"));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn matches(glob: &str, registry: &str, repository: &str, tag: Option<&str>) -> bool {
        Glob::parse(glob)
            .unwrap()
            .matches_any(&names(registry, repository, tag, Some(D)))
    }

    /// policy-controller's own table (pkg/apis/glob/glob_test.go), images as go-containerregistry
    /// reads them (no tag means `latest`), minus the cases only its deprecated fallback
    /// to the unnormalised text matched (`foo` against `foo`: here it matches because a
    /// registry-less glob is normalised instead).
    #[test]
    fn policy_controller_cases() {
        let hub = |repo: &str, glob: &str| matches(glob, "docker.io", repo, Some("latest"));
        for glob in [
            "index.docker.io/library/foo:latest",
            "index.docker.io/library/foo:*",
            "index.docker.io/library/*",
            "index.docker.io/library/*:latest",
            "index.docker.io/*/*",
            "index.docker.io/**",
            "index.docker.**",
            "inde**",
            "**",
            "*",
            "foo",
            "foo*",
        ] {
            assert!(hub("library/foo", glob), "{glob}");
        }
        for glob in [
            "index.docker.io/myuser/myapp:latest",
            "index.docker.io/myuser/myapp:*",
            "index.docker.io/myuser/*",
            "index.docker.io/myuser/*:latest",
            "index.docker.io/*/*",
            "index.docker.io/**",
            "**",
            "*/*",
            "myuser/myapp*",
            "myuser/myapp**",
        ] {
            assert!(hub("myuser/myapp", glob), "{glob}");
        }
        let ghcr = |repo: &str, glob: &str| matches(glob, "ghcr.io", repo, Some("latest"));
        assert!(ghcr("foo/bar", "ghcr.io/*/*"));
        assert!(ghcr("foo/bar", "ghcr.io/**"));
        assert!(!ghcr("foo", "ghcr.io/*/*"));
        assert!(ghcr("foo", "ghcr.io/**"));
        assert!(ghcr("foo", "ghc**"));
        assert!(ghcr("foo", "*/**"));
        assert!(ghcr("foo", "ghcr.io/foo*"));
        assert!(ghcr("foo", "ghcr.io/foo**"));
        // Upstream matched `foo**` only through its deprecated fallback to the text as
        // written; here a glob without `/` holding `**` is used as written, a registry
        // prefix.
        assert!(!hub("library/foo", "foo**"));
        assert!(matches("foo**", "foo.example", "x", None));
        assert!(
            ghcr("foo", "ghcr.io/foo"),
            "a repository glob covers its tags"
        );
        assert!(
            !ghcr("foo-suffix", "ghcr.io/foo"),
            "the glob must match the whole name"
        );
        assert!(!matches("ghcr.io/foo", "prefix-ghcr.io", "foo", None));
        assert!(
            !matches("ghcr.io/**", "ghcrxio", "foo", None),
            ". is literal"
        );
    }

    #[test]
    fn star_stays_within_a_segment_and_double_star_crosses() {
        assert!(matches(
            "registry.example/prod/*",
            "registry.example",
            "prod/app",
            Some("v1")
        ));
        assert!(!matches(
            "registry.example/prod/*",
            "registry.example",
            "prod/team/app",
            None
        ));
        assert!(matches(
            "registry.example/prod/**",
            "registry.example",
            "prod/team/app",
            None
        ));
        assert!(!matches(
            "registry.example/prod/**",
            "registry.example",
            "production/app",
            None
        ));
        assert!(matches("localhost:5000/**", "localhost:5000", "a", None));
        assert!(matches("*.example/**", "registry.example", "a/b", None));
    }

    #[test]
    fn digests_and_both_docker_hub_spellings() {
        assert!(matches(
            "registry.example/base@sha256:*",
            "registry.example",
            "base",
            Some("1")
        ));
        assert!(!matches(
            "registry.example/base@sha256:1*",
            "registry.example",
            "base",
            None
        ));
        assert!(matches(
            &format!("registry.example/base@{D}"),
            "registry.example",
            "base",
            None
        ));
        assert!(matches(
            "docker.io/library/busybox:*",
            "docker.io",
            "library/busybox",
            Some("1.36")
        ));
        assert!(matches(
            "index.docker.io/library/busybox:*",
            "docker.io",
            "library/busybox",
            Some("1")
        ));
        assert!(matches(
            "busybox:1.36",
            "docker.io",
            "library/busybox",
            Some("1.36")
        ));
        assert!(!matches(
            "busybox:1.36",
            "docker.io",
            "library/busybox",
            Some("1.37")
        ));
        assert!(!matches(
            "busybox:*",
            "registry.example",
            "library/busybox",
            Some("1")
        ));
    }

    #[test]
    fn invalid_globs_are_refused_with_the_reason() {
        for (glob, wanted) in [
            ("", "cannot be empty"),
            (".+", "regular expressions"),
            ("[a-z]*", "'['"),
            ("a b", "' '"),
            ("reg.example/***", "***"),
        ] {
            let e = Glob::parse(glob).unwrap_err().to_string();
            assert!(e.contains(wanted), "{glob}: {e}");
        }
    }

    #[test]
    fn long_names_match_in_linear_passes() {
        let name = format!("r.example/{}", "a/".repeat(5000));
        let glob = Glob::parse(&format!("r.example/{}b", "**a".repeat(50))).unwrap();
        assert!(!glob.matches(&name));
    }
}
