#![no_main]
//! `portcullis::fuzzing::policy_dir` (see its doc): never panics, answers quickly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis::fuzzing::policy_dir(data));
