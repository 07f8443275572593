#[pinwheel::test(flavor = "single")]
async fn bad_flavor() {}

#[pinwheel::main(flavor = "current_thread", worker_threads = 2)]
async fn main() {}
