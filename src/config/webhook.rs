//! Webhook entries in the config file. (stub: being written)
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookConfig {
    pub name: String,
}
