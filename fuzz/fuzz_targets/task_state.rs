//! The task state protocol: random sequences of whole operations by every party that holds a
//! reference to a task (queue entries, the poller, wakers, the JoinHandle, the owned list,
//! shutdown), applied to the real state word and checked against its invariants after each
//! step (the model lives in runtime/src/task/state_model.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|ops: &[u8]| {
    pinwheel::fuzzing::task_state(ops);
});
