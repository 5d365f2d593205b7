//! Benchmarks of cloning requests (placeholder).
fn main() {}
