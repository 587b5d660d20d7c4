#![no_main]
//! `portcullis::fuzzing::hook` (see its doc): never panics, answers quickly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis::fuzzing::hook(data));
