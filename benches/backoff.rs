//! Benchmarks of the backoff module (placeholder until it lands).
fn main() {}
