#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| unattended_fuzz_targets::front_matter(data));
