#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rekisteri_fuzz_checks::oid(data));
