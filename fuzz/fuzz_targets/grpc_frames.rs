#![no_main]
//! `portcullis::fuzzing::grpc_frames` (see its doc): never panics, answers quickly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis::fuzzing::grpc_frames(data));
