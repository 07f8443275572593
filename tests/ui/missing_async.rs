#[pinwheel::main]
fn main() {}
