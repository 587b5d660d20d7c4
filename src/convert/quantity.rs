//! Kubernetes resource quantities (k8s.io/apimachinery `pkg/api/resource/quantity.go`) for the
//! limits the Pod view shows: memory in bytes, CPU in millicores. Exact integer arithmetic,
//! rounding up as Kubernetes does (`Quantity.Value()` / `MilliValue()` round up).

/// A non-negative quantity as `mantissa × 10^pow10 × 2^pow2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exact {
    mantissa: u128,
    pow10: i32,
    pow2: u32,
}

fn parse(q: &str) -> Option<Exact> {
    let q = q.trim();
    let q = q.strip_prefix('+').unwrap_or(q);
    let num_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(num_end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let frac_len = i32::try_from(frac.len()).ok()?;
    let (pow10, pow2) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().ok()?;
            if !(-40..=40).contains(&e) {
                return None;
            }
            (e, 0)
        }
        _ => return None,
    };
    Some(Exact {
        mantissa,
        pow10: pow10 - frac_len,
        pow2,
    })
}

impl Exact {
    /// `ceil(self × 10^scale)`, when it fits an i64.
    fn ceil_scaled(self, scale: i32) -> Option<i64> {
        let num = self.mantissa.checked_mul(1u128.checked_shl(self.pow2)?)?;
        let e = self.pow10 + scale;
        let v = if e >= 0 {
            num.checked_mul(10u128.checked_pow(e.unsigned_abs())?)?
        } else {
            match 10u128.checked_pow(e.unsigned_abs()) {
                Some(den) => num.div_ceil(den),
                // 10^e is beyond u128 while num is below it: a positive remainder rounds to 1.
                None => u128::from(num > 0),
            }
        };
        i64::try_from(v).ok()
    }

    /// `self` when it is a whole number that fits an i64.
    fn exact(self) -> Option<i64> {
        if self.pow10 >= 0 {
            return self.ceil_scaled(0);
        }
        let num = self.mantissa.checked_mul(1u128.checked_shl(self.pow2)?)?;
        match 10u128.checked_pow(self.pow10.unsigned_abs()) {
            Some(den) if num % den == 0 => i64::try_from(num / den).ok(),
            Some(_) => None,
            // 10^-pow10 is beyond u128 while num is below it: whole only when zero.
            None => (num == 0).then_some(0),
        }
    }
}

/// A quantity that is a whole number of bytes: `None` for a malformed, negative or huge
/// quantity, and for a fraction of a byte (`1500m`, `0.5`), which [`to_bytes`] rounds up.
pub fn to_whole_bytes(q: &str) -> Option<i64> {
    parse(q)?.exact()
}

/// A quantity in bytes, rounded up. `None` for a malformed, negative or huge quantity.
pub fn to_bytes(q: &str) -> Option<i64> {
    parse(q)?.ceil_scaled(0)
}

/// A quantity in thousandths (CPU millicores), rounded up.
pub fn to_millis(q: &str) -> Option<i64> {
    parse(q)?.ceil_scaled(3)
}

/// Millicores as Kubernetes writes them: whole cores plain (`2`), else `500m`.
pub fn format_millis(m: i64) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

/// OCI `hugepageLimits[].pageSize` (`2MB`, `1GB`, `64KB`) → Kubernetes resource name suffix
/// (`2Mi`, `1Gi`, `64Ki`): the kernel's sizes are binary, runc writes them with `B` units.
pub fn hugepage_size(page_size: &str) -> Option<String> {
    let num_end = page_size
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(page_size.len());
    let (n, unit) = page_size.split_at(num_end);
    if n.is_empty() {
        return None;
    }
    let unit = match unit {
        "KB" | "kB" | "Ki" | "KiB" => "Ki",
        "MB" | "Mi" | "MiB" => "Mi",
        "GB" | "Gi" | "GiB" => "Gi",
        _ => return None,
    };
    Some(format!("{n}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory() {
        assert_eq!(to_bytes("67108864"), Some(67_108_864));
        assert_eq!(to_bytes("64Mi"), Some(64 << 20));
        assert_eq!(to_bytes("1G"), Some(1_000_000_000));
        assert_eq!(to_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(to_bytes("1e3"), Some(1000));
        assert_eq!(to_bytes("1E"), Some(1_000_000_000_000_000_000));
        assert_eq!(to_bytes("100m"), Some(1));
        assert_eq!(to_bytes("0"), Some(0));
        assert_eq!(to_whole_bytes("128Mi"), Some(128 << 20));
        assert_eq!(to_whole_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(to_whole_bytes("1500m"), None);
        assert_eq!(to_whole_bytes("2000m"), Some(2));
        assert_eq!(to_whole_bytes("0.5"), None);
        assert_eq!(to_whole_bytes("-1"), None);
        assert_eq!(to_whole_bytes("0e-40"), Some(0));
    }

    #[test]
    fn cpu() {
        assert_eq!(to_millis("500m"), Some(500));
        assert_eq!(to_millis("0.5"), Some(500));
        assert_eq!(to_millis("2"), Some(2000));
        assert_eq!(to_millis("1n"), Some(1));
        assert_eq!(format_millis(500), "500m");
        assert_eq!(format_millis(2000), "2");
    }

    #[test]
    fn malformed_is_none_not_panic() {
        for bad in [
            "",
            "-1",
            "abc",
            "1Xi",
            ".",
            "1e999",
            "99999999999999999999999999999999999999999",
            "8Ei",
            "1e-",
        ] {
            assert_eq!(to_bytes(bad), None, "{bad}");
        }
        assert_eq!(to_millis("1e-40"), Some(1));
    }

    #[test]
    fn hugepages() {
        assert_eq!(hugepage_size("2MB").as_deref(), Some("2Mi"));
        assert_eq!(hugepage_size("1GB").as_deref(), Some("1Gi"));
        assert_eq!(hugepage_size("64KB").as_deref(), Some("64Ki"));
        assert_eq!(hugepage_size("MB"), None);
    }
}
