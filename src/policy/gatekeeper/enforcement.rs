//! What a Constraint's violations do, and where: `spec.enforcementAction` (`deny`, the
//! default, `dryrun`, `warn`) or `scoped` with `spec.scopedEnforcementActions`, each
//! action for the enforcement points it names — as Gatekeeper's
//! `pkg/util/enforcement_action.go` reads them. Portcullis's doors are Gatekeeper's
//! admission webhook (`validation.gatekeeper.sh`), `portcullis audit` its audit
//! (`audit.gatekeeper.sh`); `gator.gatekeeper.sh` and `vap.k8s.io` are accepted and have no
//! door here.

use serde::Serialize;

use super::types::ScopedEnforcementAction;

/// One enforcement action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Refuse the request.
    Deny,
    /// Admit it with a warning `[constraint] message`.
    Warn,
    /// Admit it silently; the violation shows in audit.
    Dryrun,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "deny" => Some(Self::Deny),
            "warn" => Some(Self::Warn),
            "dryrun" => Some(Self::Dryrun),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Warn => "warn",
            Self::Dryrun => "dryrun",
        }
    }
}

/// Where a Constraint is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Every admission door (proxy, hook, runc, serve, check).
    Webhook,
    /// `portcullis audit` and the daemon's periodic audit.
    Audit,
}

const WEBHOOK_POINT: &str = "validation.gatekeeper.sh";
const AUDIT_POINT: &str = "audit.gatekeeper.sh";
const KNOWN_POINTS: [&str; 5] = [
    WEBHOOK_POINT,
    AUDIT_POINT,
    "gator.gatekeeper.sh",
    "vap.k8s.io",
    "*",
];

/// A Constraint's actions, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// One action at every enforcement point.
    Everywhere(Action),
    /// `scoped`: (action, enforcement point names).
    Scoped(Vec<(Action, Vec<String>)>),
}

impl Enforcement {
    /// `spec.enforcementAction` and `spec.scopedEnforcementActions`; the error names the
    /// field, what Gatekeeper accepts, and says the constraint would not be enforced.
    pub fn parse(
        action: Option<&str>,
        scoped: Option<&[ScopedEnforcementAction]>,
    ) -> Result<Self, String> {
        match action.unwrap_or("deny") {
            "" | "deny" => Ok(Self::Everywhere(Action::Deny)),
            "scoped" => Self::parse_scoped(scoped),
            other => match Action::parse(other) {
                Some(action) => Ok(Self::Everywhere(action)),
                None => Err(format!(
                    "spec.enforcementAction: unrecognized enforcementAction {other:?}; use one \
                     of deny, dryrun, warn, scoped"
                )),
            },
        }
    }

    fn parse_scoped(scoped: Option<&[ScopedEnforcementAction]>) -> Result<Self, String> {
        let Some(scoped) = scoped.filter(|s| !s.is_empty()) else {
            return Err(
                "spec.scopedEnforcementActions: required with enforcementAction: \
                 scoped, e.g. [{action: deny, enforcementPoints: [{name: \
                 validation.gatekeeper.sh}]}]"
                    .into(),
            );
        };
        let mut parsed = Vec::new();
        for (i, s) in scoped.iter().enumerate() {
            let field = format!("spec.scopedEnforcementActions[{i}]");
            let action = Action::parse(&s.action).ok_or_else(|| {
                format!(
                    "{field}.action: {:?} is not within the supported list [deny dryrun warn]",
                    s.action
                )
            })?;
            if s.enforcement_points.is_empty() {
                return Err(format!(
                    "{field}.enforcementPoints: empty; name at least one of {KNOWN_POINTS:?}"
                ));
            }
            for (j, p) in s.enforcement_points.iter().enumerate() {
                if !KNOWN_POINTS.contains(&p.name.as_str()) {
                    return Err(format!(
                        "{field}.enforcementPoints[{j}].name: unrecognized enforcement point \
                         {:?}; the constraint would not be enforced there; supported: \
                         {KNOWN_POINTS:?}",
                        p.name
                    ));
                }
            }
            let names = s.enforcement_points.iter().map(|p| p.name.clone());
            parsed.push((action, names.collect()));
        }
        Ok(Self::Scoped(parsed))
    }

    /// The actions at `point`, strongest first, without repeats; empty: the constraint is
    /// not evaluated there.
    pub fn actions(&self, point: Point) -> Vec<Action> {
        let name = match point {
            Point::Webhook => WEBHOOK_POINT,
            Point::Audit => AUDIT_POINT,
        };
        let mut actions: Vec<Action> = match self {
            Self::Everywhere(action) => vec![*action],
            Self::Scoped(scoped) => scoped
                .iter()
                .filter(|(_, points)| points.iter().any(|p| p == name || p == "*"))
                .map(|(action, _)| *action)
                .collect(),
        };
        actions.sort();
        actions.dedup();
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scoped(items: &[(&str, &[&str])]) -> Vec<ScopedEnforcementAction> {
        items
            .iter()
            .map(|(action, points)| ScopedEnforcementAction {
                action: action.to_string(),
                enforcement_points: points
                    .iter()
                    .map(|p| super::super::types::EnforcementPoint {
                        name: p.to_string(),
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn plain_actions_apply_everywhere_and_deny_is_the_default() {
        let deny = Enforcement::parse(None, None).unwrap();
        assert_eq!(deny.actions(Point::Webhook), [Action::Deny]);
        assert_eq!(deny.actions(Point::Audit), [Action::Deny]);
        let dryrun = Enforcement::parse(Some("dryrun"), None).unwrap();
        assert_eq!(dryrun.actions(Point::Webhook), [Action::Dryrun]);
        let warn = Enforcement::parse(Some("warn"), None).unwrap();
        assert_eq!(warn.actions(Point::Audit), [Action::Warn]);
    }

    #[test]
    fn scoped_actions_apply_at_their_points_only() {
        let s = scoped(&[
            ("warn", &["validation.gatekeeper.sh"]),
            ("deny", &["audit.gatekeeper.sh", "validation.gatekeeper.sh"]),
        ]);
        let e = Enforcement::parse(Some("scoped"), Some(&s)).unwrap();
        assert_eq!(e.actions(Point::Webhook), [Action::Deny, Action::Warn]);
        assert_eq!(e.actions(Point::Audit), [Action::Deny]);
        let only_audit = scoped(&[("dryrun", &["audit.gatekeeper.sh"])]);
        let e = Enforcement::parse(Some("scoped"), Some(&only_audit)).unwrap();
        assert!(e.actions(Point::Webhook).is_empty());
        let star = scoped(&[("warn", &["*"])]);
        let e = Enforcement::parse(Some("scoped"), Some(&star)).unwrap();
        assert_eq!(e.actions(Point::Webhook), [Action::Warn]);
    }

    #[test]
    fn unknown_actions_and_points_are_load_errors_naming_the_field() {
        let e = Enforcement::parse(Some("block"), None).unwrap_err();
        assert!(
            e.contains("spec.enforcementAction") && e.contains("\"block\""),
            "{e}"
        );
        let e = Enforcement::parse(Some("scoped"), None).unwrap_err();
        assert!(e.contains("spec.scopedEnforcementActions"), "{e}");
        let s = scoped(&[("deny", &["webhook"])]);
        let e = Enforcement::parse(Some("scoped"), Some(&s)).unwrap_err();
        assert!(
            e.contains("enforcementPoints[0].name") && e.contains("\"webhook\""),
            "{e}"
        );
        let s = scoped(&[("reject", &["*"])]);
        let e = Enforcement::parse(Some("scoped"), Some(&s)).unwrap_err();
        assert!(e.contains("[0].action"), "{e}");
        let s = scoped(&[("deny", &[])]);
        assert!(Enforcement::parse(Some("scoped"), Some(&s)).is_err());
    }
}
