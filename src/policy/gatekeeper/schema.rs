//! STUB until the schema checker lands (branch gk-schema).
pub struct ParameterSchema;
impl ParameterSchema {
    pub fn new(_schema: Option<&serde_json::Value>, _structural: bool) -> Result<Self, String> {
        Ok(ParameterSchema)
    }
    pub fn apply(&self, parameters: &serde_json::Value) -> Result<serde_json::Value, Vec<String>> {
        Ok(parameters.clone())
    }
}
