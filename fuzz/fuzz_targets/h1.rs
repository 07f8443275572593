//! The proxy example's HTTP/1.1 forwarding (examples/src/proxy/h1.rs): request and response
//! heads parsed and written again, and the chunked-body scanner, on arbitrary bytes (the checks
//! live beside the code, in `h1::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pinwheel_examples::proxy::fuzz_h1(data);
});
