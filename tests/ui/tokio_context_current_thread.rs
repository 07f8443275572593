#[pinwheel::test(flavor = "current_thread", tokio_context = true)]
async fn tokio_context_needs_workers() {}

#[pinwheel::main(tokio_context = "yes")]
async fn main() {}
