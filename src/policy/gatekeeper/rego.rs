//! STUB until the regorus engine lands (branch gk-rego).
use std::path::Path;
use std::time::Duration;

pub struct RegoProgram;
pub struct RegoInput;
#[derive(Debug, Clone, PartialEq)]
pub struct RegoViolation {
    pub msg: String,
    pub details: serde_json::Value,
}
impl RegoInput {
    pub fn new(_review: &serde_json::Value) -> Result<Self, String> {
        Ok(RegoInput)
    }
}
impl RegoProgram {
    pub fn compile(
        _template: &str,
        _file: &Path,
        _first_line: Option<usize>,
        _rego: &str,
        _libs: &[String],
        _v1: bool,
        _inventory: &serde_json::Value,
    ) -> Result<RegoProgram, String> {
        Err("stub".into())
    }
    pub fn violations(
        &self,
        _input: &RegoInput,
        _parameters: &serde_json::Value,
        _limit: Duration,
    ) -> Result<Vec<RegoViolation>, String> {
        Err("stub".into())
    }
}
