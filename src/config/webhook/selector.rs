//! `namespaceSelector` and `objectSelector`: `metav1.LabelSelector`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{invalid, InvalidWebhook};

/// `metav1.LabelSelector`. An empty selector matches everything.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Upstream's checks of a selector's shape; the error's field is relative to it.
    pub fn validate(&self) -> Result<(), InvalidWebhook> {
        for k in self.match_labels.keys() {
            if k.is_empty() {
                return Err(invalid("matchLabels", "label keys must not be empty"));
            }
        }
        for (i, req) in self.match_expressions.iter().enumerate() {
            let field = format!("matchExpressions[{i}]");
            if req.key.is_empty() {
                return Err(invalid(format!("{field}.key"), "must not be empty"));
            }
            match req.operator {
                SelectorOperator::In | SelectorOperator::NotIn if req.values.is_empty() => {
                    return Err(invalid(
                        format!("{field}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ))
                }
                SelectorOperator::Exists | SelectorOperator::DoesNotExist
                    if !req.values.is_empty() =>
                {
                    return Err(invalid(
                        format!("{field}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `labels.Selector.Matches` for a label set.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator {
                    SelectorOperator::In => value.is_some_and(|v| req.values.contains(v)),
                    SelectorOperator::NotIn => value.is_none_or(|v| !req.values.contains(v)),
                    SelectorOperator::Exists => value.is_some(),
                    SelectorOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}
