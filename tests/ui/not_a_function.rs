#[pinwheel::main]
struct Main;

fn main() {}
