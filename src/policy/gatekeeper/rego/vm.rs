//! The faster of regorus's two evaluators: its register VM (`rvm`), the template's
//! compiled policy compiled once more to bytecode at load. On the gatekeeper-library's
//! templates it gives the interpreter's results (every suite case agrees on both) in
//! about a third of the time (BENCHMARKS.md). A template the VM cannot compile (it has
//! no `print`) runs on the interpreter, as before; the caller falls back.
//!
//! A VM is set up per evaluation from a pool (its registers and caches are reset by
//! `load_program`), with no instruction cap — the wall-clock limit bounds it, as the
//! interpreter's does — and OPA's non-strict builtin errors.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::vm::VmError;
use regorus::rvm::{Program, RegoVM};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{CompiledPolicy, Value};

/// Idle VMs kept per template: enough for the core's concurrent evaluations.
const POOL: usize = 16;

/// Why an evaluation on the VM failed.
pub(super) enum Failure {
    TimedOut,
    Other(String),
}

pub(super) struct Vm {
    program: Arc<Program>,
    data: Value,
    idle: Mutex<Vec<RegoVM>>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vm")
    }
}

impl Vm {
    /// `policy` (entry point `rule`) as bytecode with `data`; None when the VM cannot
    /// compile it.
    pub(super) fn compile(policy: &CompiledPolicy, rule: &str, data: Value) -> Option<Vm> {
        let program = Compiler::compile_from_policy(policy, &[rule]).ok()?;
        Some(Vm {
            program,
            data,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The entry point's value for `input`, within `limit`.
    pub(super) fn eval(&self, input: Value, limit: Duration, check: u32) -> Result<Value, Failure> {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut vm = match reused {
            Some(vm) => vm,
            None => self.fresh()?,
        };
        vm.load_program(self.program.clone());
        vm.set_execution_timer_config(Some(ExecutionTimerConfig {
            limit,
            check_interval: NonZeroU32::new(check).unwrap_or(NonZeroU32::MIN),
        }));
        vm.set_input(input);
        let result = vm.execute();
        vm.set_input(Value::Undefined);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < POOL {
                idle.push(vm);
            }
        }
        result.map_err(|e| match e {
            VmError::TimeLimitExceeded { .. } => Failure::TimedOut,
            other => Failure::Other(other.to_string()),
        })
    }

    fn fresh(&self) -> Result<RegoVM, Failure> {
        let mut vm = RegoVM::new();
        vm.load_program(self.program.clone());
        vm.set_data(self.data.clone())
            .map_err(|e| Failure::Other(format!("data.inventory was refused: {e}")))?;
        vm.set_strict_builtin_errors(false);
        vm.set_max_instructions(usize::MAX);
        Ok(vm)
    }
}
