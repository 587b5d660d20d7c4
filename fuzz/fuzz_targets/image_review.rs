#![no_main]
//! `portcullis::fuzzing::image_review` (see its doc): never panics, answers quickly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis::fuzzing::image_review(data));
