//! Write-back of `resources` into the container's `linux.resources`, with the kubelet's
//! formulas (kubernetes `pkg/kubelet/cm/helpers_linux.go`: `MilliCPUToQuota` with the
//! 100 ms period, `MilliCPUToShares` at least 2), each checked to read back through the
//! view's inverse (`container.rs`) as the value the policy set.

use k8s_cri::v1::ContainerConfig;
use serde_json::Value;

use super::container::{quota_millis, shares_millis, DEFAULT_CPU_PERIOD, MIN_SHARES};
use super::writeback::{refused, Field, Refused, Writer};
use crate::convert::quantity;

impl Writer<'_> {
    /// A quantity's text (a JSON number is taken as its digits); `None` when absent.
    fn quantity(&self, p: &str) -> Result<Option<String>, Refused> {
        match self.get(p) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(refused(p, "expected a quantity such as 500m or 128Mi")),
        }
    }

    /// `q` read by `parse`, positive; else why not.
    fn positive(p: &str, q: &str, parse: fn(&str) -> Option<i64>) -> Result<i64, Refused> {
        match parse(q) {
            Some(v) if v > 0 => Ok(v),
            Some(_) => Err(refused(
                p,
                format!("`{q}` is zero; remove the field instead"),
            )),
            None if q.trim_start().starts_with('-') => {
                Err(refused(p, format!("`{q}` is negative")))
            }
            None => Err(refused(p, format!("`{q}` is not a Kubernetes quantity"))),
        }
    }

    /// `linux.resources`, as the kubelet computes it (`pkg/kubelet/cm/helpers_linux.go`).
    pub(super) fn resources(&self, c: &mut ContainerConfig, f: &Field) -> Result<(), Refused> {
        let p = f.pointer();
        let q = self.quantity(&p)?;
        let linux = c.linux.get_or_insert_with(Default::default);
        let r = linux.resources.get_or_insert_with(Default::default);
        match (f, q) {
            (Field::CpuLimit, None) => r.cpu_quota = 0,
            (Field::CpuLimit, Some(q)) => {
                let millis = Self::positive(&p, &q, quantity::to_millis)?;
                (r.cpu_quota, r.cpu_period) =
                    cpu_quota(millis, r.cpu_period).map_err(|why| refused(&p, why))?;
            }
            (Field::MemoryLimit, q) => {
                let bytes = match q {
                    None => 0,
                    Some(q)
                        if quantity::to_whole_bytes(&q).is_none()
                            && quantity::to_bytes(&q).is_some() =>
                    {
                        let why = format!("`{q}` is a fraction of a byte; the CRI carries bytes");
                        return Err(refused(&p, why));
                    }
                    Some(q) => Self::positive(&p, &q, quantity::to_whole_bytes)?,
                };
                // Swap limited to the memory limit (no swap) stays so.
                if r.memory_swap_limit_in_bytes == r.memory_limit_in_bytes {
                    r.memory_swap_limit_in_bytes = bytes;
                }
                r.memory_limit_in_bytes = bytes;
            }
            (Field::CpuRequest, None) => r.cpu_shares = MIN_SHARES,
            (Field::CpuRequest, Some(q)) => {
                let millis = Self::positive(&p, &q, quantity::to_millis)?;
                r.cpu_shares = cpu_shares(millis).map_err(|why| refused(&p, why))?;
            }
            _ => return Err(refused(&p, "not a resource")),
        }
        Ok(())
    }
}

/// `MilliCPUToQuota`: quota = millicores × period / 1000, at least the kernel's 1000 µs;
/// the period the request has, else 100 ms. Refused when it does not read back.
fn cpu_quota(millis: i64, period: i64) -> Result<(i64, i64), String> {
    let period = if period > 0 {
        period
    } else {
        DEFAULT_CPU_PERIOD
    };
    let quota = (i128::from(millis) * i128::from(period) / 1000).max(1000);
    let quota = i64::try_from(quota).map_err(|_| format!("{millis}m is beyond any CPU"))?;
    match quota_millis(quota, period) {
        Some(shown) if shown == millis => Ok((quota, period)),
        shown => Err(format!(
            "the kubelet runs {millis}m as a quota of {quota} µs per {period} µs period, which \
             is {}m (the kernel's smallest quota is 1000 µs)",
            shown.unwrap_or(0)
        )),
    }
}

/// `MilliCPUToShares`: ⌊millicores × 1024 / 1000⌋, between 2 and 262144. Refused when it
/// does not read back (under 3m the kubelet's minimum of 2 shares, which is no request).
fn cpu_shares(millis: i64) -> Result<i64, String> {
    const MAX_SHARES: i128 = 262_144;
    let shares = (i128::from(millis) * 1024 / 1000).clamp(i128::from(MIN_SHARES), MAX_SHARES);
    let shares = i64::try_from(shares).unwrap_or(MIN_SHARES);
    match shares_millis(shares) {
        Some(shown) if shown == millis => Ok(shares),
        shown => Err(format!(
            "the kubelet runs {millis}m as {shares} CPU shares (between 2 and 262144), which \
             reads back as {}",
            shown.map_or("no request".to_owned(), |m| format!("{m}m"))
        )),
    }
}
