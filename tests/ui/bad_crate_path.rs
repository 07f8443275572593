#[pinwheel::main(crate = 42)]
async fn main() {}
