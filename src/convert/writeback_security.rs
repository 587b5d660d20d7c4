//! Write-back of the process identity and privileges: `runAsGroup`/`supplementalGroups` →
//! `process.user`, `capabilities` → `process.capabilities` (runtime-spec config.md "process").

use std::collections::BTreeMap;

use serde_json::Value;

use super::changes::Field;
use super::writeback::{invalid, obj_mut, WriteBackError, Writer};
use super::{caps, security};

impl Writer<'_> {
    /// `process.user.gid` and `additionalGids`. Docker lists the primary gid in
    /// `additionalGids` too (the Pod view hides it there); when it did, the new primary gid
    /// takes its place, so a changed runAsGroup does not leave the old group behind.
    pub(super) fn groups(&mut self, gid_changed: bool) -> Result<(), WriteBackError> {
        let gp = Field::RunAsGroup.pointer();
        let sp = Field::SupplementalGroups.pointer();
        let node = self.spec()?;
        let user = node.path("process.user");
        let old_gid = user.get("gid").u32().ok().flatten().unwrap_or(0);
        let old_extra = user.get("additionalGids").u32s().unwrap_or_default();
        let had_key = user.get("additionalGids").is_present();
        let new_gid = if gid_changed {
            self.id(&gp)?
                .ok_or_else(|| invalid(&gp, "a container runs as some gid; set runAsGroup"))?
        } else {
            old_gid
        };
        let supplemental: Vec<u32> = match self.get(&sp) {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid(&sp, "expected a list of gids between 0 and 4294967295"))?,
            Some(_) => return Err(invalid(&sp, "expected a list of gids")),
        };
        let mut extra: Vec<u32> = Vec::new();
        if old_extra.contains(&old_gid) {
            extra.push(new_gid);
        }
        for g in supplemental {
            if !extra.contains(&g) && g != new_gid {
                extra.push(g);
            }
        }
        let user = obj_mut(&mut self.rec.spec, &["process", "user"], &gp)?;
        user.insert("gid".into(), new_gid.into());
        if had_key || !extra.is_empty() {
            user.insert(
                "additionalGids".into(),
                extra.into_iter().map(Value::from).collect(),
            );
        }
        Ok(())
    }

    /// Bounding set = default + add − drop, keeping only capabilities the old set had or `add`
    /// names: a mutation that replaces `drop: [ALL]` by `drop: [NET_RAW]` (a strategic-merge
    /// patch replaces lists) means to take a capability away, not to grant the defaults to a
    /// container that had none. The other sets that mirrored the old set follow it; sets that
    /// differed (a non-root process's empty effective set) only lose what was dropped, so a
    /// write-back never grants a capability the runtime did not put there.
    pub(super) fn capabilities(&mut self) -> Result<(), WriteBackError> {
        let p = Field::Capabilities.pointer();
        let add = self.strings(&format!("{p}/add"))?;
        let drop = self.strings(&format!("{p}/drop"))?;
        for (list, name) in [(&add, "add"), (&drop, "drop")] {
            if let Some(bad) = list
                .iter()
                .find(|c| caps::to_oci(c) != "CAP_ALL" && !caps::is_well_formed(&caps::to_oci(c)))
            {
                return Err(invalid(
                    &format!("{p}/{name}"),
                    format!("`{bad}` is not a capability name"),
                ));
            }
        }
        let node = self.spec()?;
        let old: Vec<String> = security::capability_set(&node)
            .map_err(|e| invalid(&p, e.to_string()))?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let c = node.path("process.capabilities");
        let present = c.is_present();
        let mut sets: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
        for kind in ["effective", "permitted", "inheritable", "ambient"] {
            let n = c.get(kind);
            let cur = n.strings().map_err(|e| invalid(&p, e.to_string()))?;
            let cur = n
                .is_present()
                .then(|| cur.into_iter().map(str::to_owned).collect());
            sets.insert(kind, cur);
        }
        let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
        let added: Vec<String> = add.iter().map(|c| caps::to_oci(c)).collect();
        let grant_any = added.iter().any(|c| c == "CAP_ALL");
        let new: Vec<String> = caps::from_add_drop(&add, &drop, &old_refs)
            .into_iter()
            .filter(|c| grant_any || old.contains(c) || added.contains(c))
            .collect();
        let removed: Vec<&String> = old.iter().filter(|o| !new.contains(o)).collect();
        let same = |a: &[String], b: &[String]| {
            let mut x: Vec<&String> = a.iter().collect();
            let mut y: Vec<&String> = b.iter().collect();
            x.sort();
            x.dedup();
            y.sort();
            y.dedup();
            x == y
        };
        let target = obj_mut(&mut self.rec.spec, &["process", "capabilities"], &p)?;
        let to_value = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        target.insert("bounding".into(), to_value(&new));
        for kind in ["effective", "permitted", "inheritable", "ambient"] {
            let next = match sets.get(kind).cloned().flatten() {
                Some(cur) if same(&cur, &old) => new.clone(),
                Some(cur) => cur.into_iter().filter(|c| !removed.contains(&c)).collect(),
                None if !present && matches!(kind, "effective" | "permitted") => new.clone(),
                None => continue,
            };
            target.insert(kind.into(), to_value(&next));
        }
        Ok(())
    }
}
