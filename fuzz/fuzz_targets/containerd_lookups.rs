#![no_main]
//! `portcullis::fuzzing::containerd_lookups` (see its doc): never panics, answers quickly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis::fuzzing::containerd_lookups(data));
