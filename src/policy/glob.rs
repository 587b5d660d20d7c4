//! The glob patterns of `images.deny`.
//!
//! `*` matches any run of characters, `/` and `:` included (unlike shell globs: an image
//! name is one string, not a path); `?` matches exactly one character; every other
//! character matches itself, ASCII case-insensitively. The whole text must match. There
//! is no escaping and no `[...]` class: `*` and `?` never occur in image references.

/// Whether `text` matches `pattern` as a whole.
///
/// The classic two-pointer matcher: on a mismatch after a `*`, retry with the `*`
/// swallowing one more character. No recursion, O(len(pattern) × len(text)) at worst.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut pi, mut ti) = (0, 0);
    // After the last `*` seen: where the pattern resumes and how much text it swallowed.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((resume, swallowed)) => {
                    star = Some((resume, swallowed + 1));
                    pi = resume;
                    ti = swallowed + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_and_wildcards() {
        assert!(matches(
            "docker.io/library/nginx",
            "docker.io/library/nginx"
        ));
        assert!(!matches(
            "docker.io/library/nginx",
            "docker.io/library/nginx:1"
        ));
        assert!(matches("*", ""));
        assert!(matches("*", "anything/at:all@sha256:00"));
        assert!(!matches("", "a"));
        assert!(matches("", ""));
        assert!(matches("?", "é"));
        assert!(!matches("?", ""));
        assert!(!matches("?", "ab"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
    }

    #[test]
    fn star_crosses_slashes_and_colons() {
        assert!(matches("*/xmrig*", "docker.io/library/xmrig"));
        assert!(matches("*/xmrig*", "docker.io/library/xmrig:6.21"));
        assert!(matches(
            "*/xmrig*",
            "evil.example.com/a/b/xmrig-miner@sha256:ab"
        ));
        assert!(!matches("*/xmrig*", "xmrig"));
        assert!(!matches("*/xmrig*", "docker.io/library/notxmrig"));
        assert!(matches("*xmrig*", "docker.io/library/notxmrig"));
        assert!(matches(
            "docker.io/*:latest",
            "docker.io/library/nginx:latest"
        ));
        assert!(!matches(
            "docker.io/*:latest",
            "docker.io/library/nginx:latest2"
        ));
    }

    #[test]
    fn case_insensitive_ascii() {
        assert!(matches("*/XMRIG*", "docker.io/library/xmrig"));
        assert!(matches("evil.example.com/*", "EVIL.example.com/x"));
    }

    #[test]
    fn backtracking() {
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(matches("*a*a*a", "aaaa"));
        assert!(!matches("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(matches("**", "x"));
        assert!(matches("a**", "a"));
        assert!(!matches("a*", "ba"));
    }

    /// The obvious exponential definition, to check the fast one against.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some((&c, rest)) => {
                !t.is_empty() && (c == '?' || c == t[0]) && reference(rest, &t[1..])
            }
        }
    }

    #[test]
    fn agrees_with_the_definition() {
        // A small deterministic generator: patterns and texts over a tiny alphabet hit
        // every branch of the matcher many times.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let pattern_chars = ['a', 'b', '/', '*', '?'];
        let text_chars = ['a', 'b', '/'];
        for _ in 0..20_000 {
            let plen = next(7) as usize;
            let tlen = next(9) as usize;
            let p: Vec<char> = (0..plen).map(|_| pattern_chars[next(5) as usize]).collect();
            let t: Vec<char> = (0..tlen).map(|_| text_chars[next(3) as usize]).collect();
            let (ps, ts): (String, String) = (p.iter().collect(), t.iter().collect());
            assert_eq!(
                matches(&ps, &ts),
                reference(&p, &t),
                "pattern {ps:?} text {ts:?}"
            );
        }
    }

    #[test]
    fn long_inputs_are_fast_enough() {
        let text = "a".repeat(20_000);
        let pattern = format!("*{}b*", "a*".repeat(50));
        assert!(!matches(&pattern, &text));
    }
}
