//! Kubernetes label syntax (k8s.io/apimachinery `pkg/util/validation`: `IsQualifiedName`,
//! `IsValidLabelValue`, `IsDNS1123Subdomain`), to decide which containerd labels may appear
//! as Pod labels. Everything else is still shown as an annotation.

const NAME_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 bytes.
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= NAME_MAX
                && alnum(first)
                && alnum(last)
                && b.iter()
                    .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 bytes.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= NAME_MAX && ok(first) && ok(last) && b.iter().all(|c| ok(c) || *c == b'-')
        }
        _ => false,
    }
}

/// DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 bytes.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= SUBDOMAIN_MAX && s.split('.').all(is_dns1123_label)
}

/// A label key: `[prefix/]name` with a DNS-1123 subdomain prefix.
pub fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_name(name),
        None => is_name(key),
    }
}

/// A label value: empty, or a name (at most 63 bytes).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_name(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in [
            "app",
            "team",
            "app.kubernetes.io/name",
            "io.kubernetes.pod.name",
            "a",
            "A_b.c-D",
        ] {
            assert!(is_label_key(ok), "{ok}");
        }
        let long = "a".repeat(64);
        let long_prefix = format!("{}/x", "a".repeat(254));
        for bad in [
            "",
            "/x",
            "x/",
            "-a",
            "a-",
            "a/b/c",
            "Upper.Case/x",
            "com.docker/engine.bundle.path ",
            &long,
            &long_prefix,
            "a b",
            "ünï",
        ] {
            assert!(!is_label_key(bad), "{bad:?}");
        }
        assert!(is_label_key("com.docker/engine.bundle.path"));
    }

    #[test]
    fn values() {
        assert!(is_label_value(""));
        assert!(is_label_value("SIGTERM"));
        assert!(is_label_value("1.36"));
        assert!(!is_label_value("/var/run/docker/containerd/abc"));
        assert!(!is_label_value(&"v".repeat(64)));
        assert!(!is_label_value("a b"));
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns1123_label("b1faa92b915f"));
        assert!(!is_dns1123_label("Host"));
        assert!(!is_dns1123_label(""));
        assert!(is_dns1123_subdomain("example.com"));
        assert!(!is_dns1123_subdomain("example..com"));
    }
}
