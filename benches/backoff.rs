//! Backoff benchmarks (placeholder).
fn main() {}
