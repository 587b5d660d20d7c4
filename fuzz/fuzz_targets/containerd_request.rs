#![no_main]
//! `portcullis::fuzzing::containerd_request` (see its doc): never panics, answers quickly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis::fuzzing::containerd_request(data));
