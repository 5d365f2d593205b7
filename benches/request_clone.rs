//! Request clone benchmarks (placeholder).
fn main() {}
