//! Backoff benchmarks (placeholder until the backoff module lands).
fn main() {}
