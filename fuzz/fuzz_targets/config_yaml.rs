#![no_main]
//! `portcullis::fuzzing::config_yaml` (see its doc): never panics, answers quickly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis::fuzzing::config_yaml(data));
