//! Seeded random faults for [`FlakyServer`](super::FlakyServer), and the log of what it did.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use super::step::Step;
use crate::jsonrpc::Id;

/// One kind of failure [`Chaos`] can inject into a call.
///
/// Each fault is the [`Step`] of the same name, drawn at random instead of scripted:
///
/// | fault | the server… | a client sees |
/// |---|---|---|
/// | `Code(c)` | answers a JSON-RPC error with code `c`, HTTP 200 | an error response |
/// | `Status(s)` | answers HTTP `s` with an empty body | a status error |
/// | `StatusRetryAfter(s, secs)` | the same, with `Retry-After: secs` | a status error with a hint |
/// | `DropBeforeRead` | closes the connection before reading the request body | a reset; the call never ran |
/// | `DropAfterRead` | reads the request, then closes the connection unanswered | a reset; the call may have run |
/// | `Delay(d)` | waits `d` on tokio's clock, then answers normally | a timeout, if `d` is past the client's |
/// | `Malformed` | answers HTTP 200 with a body that is not JSON | a decode error |
///
/// Over HTTP/2 the two drops reset the request's stream instead of closing the
/// connection (`RST_STREAM` with `INTERNAL_ERROR`), and the connection stays open for
/// other calls.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::test_util::Fault;
///
/// let faults = [
///     Fault::Code(-32005),
///     Fault::StatusRetryAfter(429, 1),
///     Fault::Delay(Duration::from_secs(3600)),
/// ];
/// assert_eq!(faults.len(), 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Fault {
    /// A JSON-RPC error response with this code ([`Step::error`]).
    Code(i64),
    /// This HTTP status, empty body ([`Step::status`]).
    Status(u16),
    /// This HTTP status with `Retry-After: <seconds>` ([`Step::retry_after`]).
    StatusRetryAfter(u16, u32),
    /// The connection closes before the request body is read: the call never ran, and
    /// the log cannot say which call it was.
    DropBeforeRead,
    /// The request is read, then the connection closes with no answer
    /// ([`Step::drop_connection`]).
    DropAfterRead,
    /// A normal answer after this delay ([`Step::delay`]).
    Delay(Duration),
    /// A body that is not JSON ([`Step::malformed`]).
    Malformed,
}

impl Fault {
    /// The step that does what this fault does, once the request has been read.
    pub(crate) fn step(self) -> Step {
        match self {
            Fault::Code(code) => Step::error(code),
            Fault::Status(status) => Step::status(status),
            Fault::StatusRetryAfter(status, secs) => Step::status(status).retry_after(secs),
            // Drawn before the body is read, and handled there; after the read, the
            // closest thing is a drop after it.
            Fault::DropBeforeRead | Fault::DropAfterRead => Step::drop_connection(),
            Fault::Delay(delay) => Step::delay(delay),
            Fault::Malformed => Step::malformed(),
        }
    }
}

/// Seeded random faults for [`FlakyServer::chaos`](super::FlakyServer::chaos).
///
/// Each call that has no [`Step`] scripted draws at most one [`Fault`], each with its
/// own rate.
/// [`Fault::DropBeforeRead`] is the exception: it is drawn before the server has read the
/// request, so it applies to scripted calls too (and they keep their step for later).
///
/// The draws come from one xoshiro256++ generator seeded with the given seed, in the
/// order the server receives requests: the same seed gives the same sequence of faults
/// on every target (under concurrency, which call gets which fault depends on arrival
/// order).
///
/// Rates are probabilities per call, clamped to `0.0..=1.0` (NaN is `0.0`); when they add
/// up to more than 1, the faults added last get only what is left. The draw for a
/// request happens before its body is read, so [`Fault::DropBeforeRead`] can apply; that
/// draw goes to the first call of the request. Later calls of a batch draw their own,
/// and for them a `DropBeforeRead` draw means no fault. So does it for a first call
/// whose request was being read when the chaos changed
/// ([`reset`](super::FlakyServer::reset), [`chaos`](super::FlakyServer::chaos)): the
/// earlier draw is dropped, and the call draws from the chaos there is once the body is
/// read.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::test_util::{Chaos, FlakyServer, Fault};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let server = FlakyServer::start().await?;
/// server.chaos(
///     Chaos::new(7)
///         .rate(Fault::Code(-32005), 0.05)
///         .rate(Fault::StatusRetryAfter(429, 1), 0.02)
///         .rate(Fault::DropAfterRead, 0.02)
///         .rate(Fault::Delay(Duration::from_secs(3600)), 0.01),
/// );
/// // ... drive calls, then reconcile them with what the server did:
/// for entry in server.log() {
///     println!("{:?} {:?} -> {:?}", entry.method, entry.id, entry.fault);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Chaos {
    seed: u64,
    rates: Vec<(Fault, f64)>,
}

impl Chaos {
    /// No faults yet, with this seed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Chaos;
    ///
    /// // Add faults with `rate`: until then, every call is answered as scripted.
    /// let chaos = Chaos::new(7);
    /// assert_eq!(chaos.total_rate(), 0.0);
    /// ```
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rates: Vec::new(),
        }
    }

    /// Injects `fault` in this fraction of calls (added to the faults already set).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::{Chaos, Fault};
    ///
    /// let chaos = Chaos::new(7).rate(Fault::Status(503), 0.25);
    /// assert_eq!(chaos.total_rate(), 0.25);
    /// // Rates are clamped to `0.0..=1.0`; NaN is none.
    /// assert_eq!(Chaos::new(7).rate(Fault::Malformed, 1.5).total_rate(), 1.0);
    /// assert_eq!(Chaos::new(7).rate(Fault::Malformed, f64::NAN).total_rate(), 0.0);
    /// ```
    #[must_use]
    pub fn rate(mut self, fault: Fault, rate: f64) -> Self {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.rates.push((fault, rate));
        self
    }

    /// The probability that a call gets some fault: the sum of the rates, at most 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::{Chaos, Fault};
    /// let chaos = Chaos::new(1).rate(Fault::Malformed, 0.1).rate(Fault::Status(503), 0.2);
    /// assert!((chaos.total_rate() - 0.3).abs() < 1e-12);
    /// ```
    pub fn total_rate(&self) -> f64 {
        self.rates.iter().map(|(_, r)| r).sum::<f64>().min(1.0)
    }

    pub(crate) fn start(self) -> ChaosState {
        ChaosState {
            rng: Xoshiro256PlusPlus::seed_from_u64(self.seed),
            rates: self.rates,
        }
    }
}

/// A running [`Chaos`]: its rates and its random source.
#[derive(Debug)]
pub(crate) struct ChaosState {
    rng: Xoshiro256PlusPlus,
    rates: Vec<(Fault, f64)>,
}

impl ChaosState {
    /// One draw: a fault, or `None` for a normal answer.
    pub(crate) fn draw(&mut self) -> Option<Fault> {
        let u = crate::backoff::rng::unit(&mut self.rng);
        let mut cumulative = 0.0;
        for (fault, rate) in &self.rates {
            cumulative += rate;
            if u < cumulative {
                return Some(*fault);
            }
        }
        None
    }
}

/// What [`FlakyServer`](super::FlakyServer) did with one call (or one request it did not
/// read): see [`FlakyServer::log`](super::FlakyServer::log).
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::Client;
/// use tower_jsonrpc_retry::jsonrpc::Id;
/// use tower_jsonrpc_retry::test_util::FlakyServer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = FlakyServer::start().await?;
/// let client = Client::builder(server.uri()).build();
/// let _: i64 = client.call("sum", (1, 2)).await?;
/// client.notify("log", ("summed",)).await?;
///
/// let log: Vec<_> = server.log().into_iter().map(|e| (e.method, e.id, e.fault)).collect();
/// let sum = (Some("sum".to_owned()), Some(Id::Number(1)), None);
/// let note = (Some("log".to_owned()), None, None); // a notification has no id
/// assert_eq!(log, [sum, note]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogEntry {
    /// The method called; `None` when the request was not read
    /// ([`Fault::DropBeforeRead`]) or was not a valid request.
    pub method: Option<String>,
    /// The call's id; `None` for a notification, when `method` is `None`, and for an id
    /// [`Id`] cannot hold (an integer beyond `i64`, a fraction), which the server still
    /// echoes.
    pub id: Option<Id>,
    /// The fault [`Chaos`] injected; `None` when the call was answered as scripted or
    /// normally.
    pub fault: Option<Fault>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_rates_and_the_seed() {
        let chaos = Chaos::new(42)
            .rate(Fault::Malformed, 0.25)
            .rate(Fault::Status(503), 0.25);
        let mut a = chaos.clone().start();
        let mut b = chaos.start();
        let draws: Vec<_> = (0..10_000).map(|_| a.draw()).collect();
        let again: Vec<_> = (0..10_000).map(|_| b.draw()).collect();
        assert_eq!(draws, again, "same seed, same faults");
        let malformed = draws
            .iter()
            .filter(|d| **d == Some(Fault::Malformed))
            .count();
        let none = draws.iter().filter(|d| d.is_none()).count();
        assert!((2_300..2_700).contains(&malformed), "{malformed}");
        assert!((4_800..5_200).contains(&none), "{none}");
    }

    #[test]
    fn rates_are_clamped() {
        let mut always = Chaos::new(1)
            .rate(Fault::DropAfterRead, 7.0)
            .rate(Fault::Malformed, f64::NAN)
            .rate(Fault::Status(503), -1.0)
            .start();
        assert!((0..100).all(|_| always.draw() == Some(Fault::DropAfterRead)));
        let mut never = Chaos::new(1).start();
        assert_eq!(never.draw(), None);
    }
}
