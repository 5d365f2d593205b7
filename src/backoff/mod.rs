//! Backoff recipes (placeholder until the backoff module lands).
#![allow(missing_docs, missing_debug_implementations, clippy::manual_repeat_n)]
use std::sync::Arc;
use std::time::Duration;

pub trait Backoff: Send + Sync + 'static {
    type Delays: Iterator<Item = Duration> + Send + 'static;
    fn delays(&self) -> Self::Delays;
}

trait Erased: Send + Sync + 'static {
    fn make(&self) -> BoxDelays;
}
impl<B: Backoff> Erased for B {
    fn make(&self) -> BoxDelays {
        BoxDelays(Box::new(self.delays()))
    }
}
#[derive(Clone)]
pub struct BoxBackoff(Arc<dyn Erased>);
impl std::fmt::Debug for BoxBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxBackoff")
    }
}
impl BoxBackoff {
    pub fn new<B: Backoff>(b: B) -> Self {
        Self(Arc::new(b))
    }
}
impl Backoff for BoxBackoff {
    type Delays = BoxDelays;
    fn delays(&self) -> BoxDelays {
        self.0.make()
    }
}
pub struct BoxDelays(Box<dyn Iterator<Item = Duration> + Send>);
impl std::fmt::Debug for BoxDelays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxDelays")
    }
}
impl Iterator for BoxDelays {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        self.0.next()
    }
}
#[derive(Clone, Debug)]
pub struct PeriodicBackoff {
    attempts: usize,
    interval: Duration,
}
impl PeriodicBackoff {
    pub const fn new(attempts: usize, interval: Duration) -> Self {
        Self { attempts, interval }
    }
}
impl Backoff for PeriodicBackoff {
    type Delays = std::iter::Take<std::iter::Repeat<Duration>>;
    fn delays(&self) -> Self::Delays {
        std::iter::repeat(self.interval).take(self.attempts)
    }
}
#[derive(Clone, Debug)]
pub struct Jitter;
impl Jitter {
    pub fn full() -> Self {
        Jitter
    }
}
#[derive(Clone, Debug)]
pub struct ExponentialBackoff(PeriodicBackoff);
impl ExponentialBackoff {
    pub fn doubling(attempts: usize, base: Duration) -> Self {
        Self(PeriodicBackoff::new(attempts, base))
    }
    pub fn with_max_delay(self, _d: Duration) -> Self {
        self
    }
    pub fn with_jitter(self, _j: Jitter) -> Self {
        self
    }
    pub fn jitter_proportional(self, _p: f64) -> Self {
        self
    }
}
impl Backoff for ExponentialBackoff {
    type Delays = std::iter::Take<std::iter::Repeat<Duration>>;
    fn delays(&self) -> Self::Delays {
        self.0.delays()
    }
}
