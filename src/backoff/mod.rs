//! Backoff recipes: how long to wait before each retry of a request.
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, Jitter};
//!
//! // pjrpc: ExponentialBackoff(attempts=4, base=0.1, max_value=1.0), plus ±20% jitter.
//! let recipe = ExponentialBackoff::doubling(4, Duration::from_millis(100))
//!     .with_jitter(Jitter::proportional(0.2)?)
//!     .with_max_delay(Duration::from_secs(1));
//!
//! // Each request draws a fresh iterator; its length is the number of retries.
//! let delays: Vec<Duration> = recipe.delays().collect();
//! assert_eq!(delays.len(), 4);
//! for (d, nominal) in delays.iter().zip([100, 200, 400, 800]) {
//!     let nominal = Duration::from_millis(nominal);
//!     assert!(*d >= nominal * 8 / 10 && *d < nominal * 12 / 10);
//! }
//!
//! // Combinators work on any backoff.
//! let capped = recipe.max_total_delay(Duration::from_millis(500));
//! assert!(capped.delays().sum::<Duration>() <= Duration::from_millis(500));
//! # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
//! ```
//!
//! A [`Backoff`] is a *recipe*: every request calls [`Backoff::delays`] for a fresh
//! iterator and takes one delay from it per failed attempt; when it runs out, the last
//! result is final. `attempts` everywhere counts retries, not the first try, and the
//! retry index `i` given to jitter counts from 0.
//!
//! # Coming from elsewhere
//!
//! | elsewhere | here |
//! |---|---|
//! | pjrpc `PeriodicBackoff(attempts, interval)` | [`PeriodicBackoff::new(attempts, interval)`](PeriodicBackoff::new) |
//! | pjrpc `ExponentialBackoff(attempts, base, factor, max_value)` | [`ExponentialBackoff::new(attempts, base, factor)?`](ExponentialBackoff::new)[`.with_max_delay(max_value)`](ExponentialBackoff::with_max_delay), or the `const` [`ExponentialBackoff::doubling`] |
//! | pjrpc `FibonacciBackoff(attempts, multiplier, max_value)` (cap defaults to 1 s) | [`FibonacciBackoff::new(attempts, multiplier)`](FibonacciBackoff::new) (cap defaults to 1 s; [`without_max_delay`](FibonacciBackoff::without_max_delay) for `max_value=None`) |
//! | pjrpc `jitter=lambda attempt: ...` | [`with_jitter`](ExponentialBackoff::with_jitter)`(`[`Jitter::from_fn(\|i\| ...)`](Jitter::from_fn)`)` |
//! | pjrpc `jitter=lambda: random.gauss(0.5, 0.1)` | [`Jitter::gauss(0.5, 0.1)?`](Jitter::gauss), or [`Jitter::from_fn_no_index`] |
//! | pjrpc users' `RandomBackoff` | a few lines with [`from_fn`] (see its example) |
//! | tower `ExponentialBackoffMaker::new(min, max, jitter, rng)` | [`ExponentialBackoff::doubling(n, min)`](ExponentialBackoff::doubling)[`.map(..)`](BackoffExt::map)[`.jitter(..)`](BackoffExt::jitter)[`.max_delay(max)`](BackoffExt::max_delay): see [From tower](#from-tower) |
//! | reqwest-retry `ExponentialBackoff::builder().retry_bounds(min, max).build_with_max_retries(n)` | [`ExponentialBackoff::doubling(n, min)`](ExponentialBackoff::doubling)[`.with_max_delay(max)`](ExponentialBackoff::with_max_delay)[`.with_jitter(..)`](ExponentialBackoff::with_jitter); its `build_with_total_retry_duration(t)` bounds the call's time, as [`RetryStrategy::max_elapsed`](crate::RetryStrategy::max_elapsed) does |
//! | backon `ConstantBuilder` | [`PeriodicBackoff`] |
//! | backon `ExponentialBuilder` | [`ExponentialBackoff`]: see [From backon](#from-backon) |
//! | backon `FibonacciBuilder` | [`FibonacciBackoff`]: see [From backon](#from-backon) |
//! | Brooker's / AWS "decorrelated jitter" | [`DecorrelatedJitterBackoff`] |
//! | gRPC's `× U(0.8, 1.2)` | [`Jitter::proportional(0.2)?`](Jitter::proportional) |
//!
//! ## From tower
//!
//! tower's maker *adds* `d × jitter × U[0, 1)`, so no delay is shorter than `d`, and caps
//! the sum at `max`. For `jitter = 1.0`,
//! [`.map(|d| d.saturating_add(d / 2))`](BackoffExt::map)[`.jitter(Jitter::proportional(1.0 / 3.0)?)`](Jitter::proportional)`.max_delay(max)`
//! gives the same `[d, 2d)`, at most `max` ([`Jitter::full`] would give `[0, d)`): put
//! [`max_delay`](BackoffExt::max_delay) last, so that the cap holds for the jittered
//! delay. Three differences remain: tower jitters the whole seconds of `d` in whole
//! seconds only (`d` = 1 s gets none); its maker repeats one sequence of jitter for every
//! request, where here each request gets its own; and here the retries are bounded by
//! `n` (see below for a port with no bound).
//!
//! tower's maker never runs out of delays. Ported with as many retries as a deadline
//! allows, the delays before the cap keep doubling until they saturate at
//! `Duration::MAX`, so the closure given to [`map`](BackoffExt::map) must saturate too:
//! `d.mul_f64(1.5)` panics once a delay passes `Duration::MAX / 1.5` (from 10 ms, the
//! 72nd), and `d * 3 / 2` sooner.
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, Jitter};
//!
//! // tower: ExponentialBackoffMaker::new(10 ms, 1 s, 1.0, rng), with no retry limit.
//! let tower_like = ExponentialBackoff::doubling(usize::MAX, Duration::from_millis(10))
//!     .map(|d| d.saturating_add(d / 2))
//!     .jitter(Jitter::proportional(1.0 / 3.0)?)
//!     .max_delay(Duration::from_secs(1));
//! for (i, d) in tower_like.delays().take(200).enumerate() {
//!     let nominal = Duration::from_millis(10).saturating_mul(1u32 << i.min(31));
//!     assert!(d >= nominal.min(Duration::from_secs(1)) && d <= Duration::from_secs(1));
//! }
//! # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
//! ```
//!
//! ## From backon
//!
//! - `ExponentialBuilder` caps every delay at 60 s unless told otherwise, this crate only
//!   when told: add [`.with_max_delay(60 s)`](ExponentialBackoff::with_max_delay) for the
//!   same delays. Its `with_max_times` is `with_attempts` here, and `with_total_delay` is
//!   [`max_total_delay`](BackoffExt::max_total_delay).
//! - `ExponentialBuilder`'s `with_jitter` adds `d × U[0, 1)` after the cap:
//!   [`.map(|d| d.saturating_add(d / 2))`](BackoffExt::map)[`.jitter(Jitter::proportional(1.0 / 3.0)?)`](Jitter::proportional)
//!   gives the same `[d, 2d)`, where [`Jitter::full`] would give `[0, d)`.
//! - `FibonacciBuilder`: mind the default caps, 1 s here as in pjrpc and 60 s there,
//!   where it stops the growth rather than capping each delay (55 s is followed by 89 s).
//!   Its jitter adds up to its first delay, `d + U[0, min)`, not up to `d`. And its
//!   sequence runs 1, 1, 2, 3, …, where this crate's and pjrpc's run 1, 2, 3, 5, ….
//!
//! # Writing your own
//!
//! Any closure returning delays is a backoff through [`from_fn`], and any `Clone`
//! iterator of delays through [`from_iter`]; implementing [`Backoff`] directly is also
//! a few lines. [`BackoffExt`] adds combinators to all of them, and [`BoxBackoff`]
//! erases their types.
//!
//! # Saturation
//!
//! Delay arithmetic never panics, overflows or yields infinity: values beyond
//! `Duration::MAX` become `Duration::MAX` (or the cap), values below zero become zero,
//! and a NaN from a jitter closure counts as no jitter. Parameters no delay can come
//! from (a NaN factor, a negative standard deviation, ...) are rejected by the
//! constructors with an [`InvalidBackoff`] error.
//!
//! # Precision
//!
//! Delays are computed in `f64` seconds (about 16 significant digits) and rounded to
//! the nearest nanosecond. Each step of that arithmetic may be off by about 10^-16 of
//! the value it makes, and a growing backoff takes a step per retry, so a delay may be
//! off its formula by about (retries + 2) × 10^-16 of the largest value in its making,
//! plus the rounding: for the delays and retry counts of real use (milliseconds to
//! minutes, tens of retries), well under a nanosecond before rounding; for delays of
//! days, or after millions of retries, nanoseconds or more. Only a [`PeriodicBackoff`]
//! without jitter gives its interval exactly, whatever its size. A jittered range that
//! holds whole nanoseconds keeps the draw to them; one narrower than a nanosecond does
//! not.

use std::time::Duration;

mod boxed;
mod decorrelated;
mod error;
mod exponential;
mod ext;
mod fibonacci;
mod func;
mod jitter;
mod periodic;
pub(crate) mod rng;
mod saturate;

pub use boxed::{BoxBackoff, BoxDelays};
pub use decorrelated::{DecorrelatedJitterBackoff, DecorrelatedJitterDelays};
pub use error::InvalidBackoff;
pub use exponential::{ExponentialBackoff, ExponentialDelays};
pub use ext::{
    BackoffExt, Chain, Jittered, JitteredDelays, Map, MapDelays, MaxDelay, MaxDelayDelays,
    MaxRetries, MaxTotalDelay, MaxTotalDelayDelays,
};
pub use fibonacci::{FibonacciBackoff, FibonacciDelays};
pub use func::{FromFn, FromIter, from_fn, from_iter};
pub use jitter::Jitter;
pub use periodic::{PeriodicBackoff, PeriodicDelays};

/// A recipe for the delays of one request.
///
/// Each request calls [`delays`](Self::delays) once and takes one delay from the
/// iterator per failed attempt: the iterator's length is the number of retries. Recipes
/// are shared (`Send + Sync`), and the iterators are `Send + Sync` too: they live in the
/// request's future, which is both (so a `Cell` in one is refused; use an atomic).
///
/// # Examples
///
/// Implementing it directly:
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::Backoff;
///
/// /// Linear growth: `step`, `2 × step`, ... for `attempts` retries.
/// struct Linear {
///     attempts: u32,
///     step: Duration,
/// }
///
/// impl Backoff for Linear {
///     type Delays = std::iter::Map<std::ops::RangeInclusive<u32>, Box<dyn Fn(u32) -> Duration + Send + Sync>>;
///
///     fn delays(&self) -> Self::Delays {
///         let step = self.step;
///         (1..=self.attempts).map(Box::new(move |n| step.saturating_mul(n)))
///     }
/// }
///
/// let b = Linear { attempts: 3, step: Duration::from_millis(100) };
/// assert!(b.delays().eq([100, 200, 300].map(Duration::from_millis)));
/// ```
///
/// (The [`from_fn`] shortcut avoids naming the iterator type, and its box.)
pub trait Backoff: Send + Sync + 'static {
    /// The delays of one request: its length is the number of retries.
    type Delays: Iterator<Item = Duration> + Send + Sync + 'static;

    /// A fresh iterator for one request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff};
    ///
    /// let backoff = FibonacciBackoff::new(4, Duration::from_millis(100));
    /// let first: Vec<Duration> = backoff.delays().collect();
    /// // Each request starts over: a second iterator yields the same delays.
    /// assert!(backoff.delays().eq(first.iter().copied()));
    /// assert_eq!(first, [100, 200, 300, 500].map(Duration::from_millis));
    /// ```
    fn delays(&self) -> Self::Delays;

    /// Bounds on how many delays each request's iterator yields, as
    /// [`Iterator::size_hint`] gives them, known without making one (making one may
    /// draw from a seeded jitter's streams, or run a [`from_fn`] closure).
    ///
    /// The built-in backoffs and combinators know theirs; the default, `(0, None)`,
    /// says nothing. [`RetryStrategy::for_method`](crate::RetryStrategy::for_method)
    /// reads it: a method's strategy whose backoff says it yields no delays
    /// (`(_, Some(0))`) never sends a call again, and a batch holds such calls back as it does those of
    /// [`RetryStrategy::none()`](crate::RetryStrategy::none).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(3, Duration::from_secs(1));
    /// assert_eq!(b.delays_hint(), (3, Some(3)));
    /// assert_eq!(b.max_retries(0).delays_hint(), (0, Some(0)));
    /// ```
    fn delays_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

/// Asserts that a fresh iterator of `backoff` says exactly how many delays are left: `n`
/// at first, one fewer after each delay, and none once it is done.
#[cfg(test)]
pub(crate) fn assert_size_hint_counts_down(backoff: &impl Backoff, n: usize) {
    assert_eq!(backoff.delays_hint(), (n, Some(n)), "known without drawing");
    let mut delays = backoff.delays();
    for left in (0..=n).rev() {
        assert_eq!(delays.size_hint(), (left, Some(left)));
        assert_eq!(delays.next().is_some(), left > 0);
    }
    assert_eq!(delays.size_hint(), (0, Some(0)));
}

/// Inputs for the backoffs' property tests, spread over every magnitude: proptest draws
/// `any::<u64>()` and float ranges uniformly, so a plain `any::<u64>()` is above 2^54
/// nearly always, and `0.0..1e300` below 1e290 next to never, and neither would ever
/// give the delays and factors of real use.
#[cfg(test)]
pub(crate) mod arb {
    use proptest::prelude::*;

    /// A `u64` whose magnitude is as likely small as huge: a random value shifted right
    /// by 0 to 63 bits, with the extremes themselves now and then.
    pub(crate) fn magnitude() -> impl Strategy<Value = u64> {
        prop_oneof![
            1 => prop::sample::select(vec![0, 1, u64::MAX]),
            9 => (any::<u64>(), 0u32..64).prop_map(|(v, shift)| v >> shift),
        ]
    }

    /// A growth factor of at least `min` (0 or 1): the usual ones, any in `min..4`, and
    /// any magnitude up to 1e300.
    pub(crate) fn factor(min: f64) -> impl Strategy<Value = f64> {
        let usual = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0];
        prop_oneof![
            prop::sample::select(usual.into_iter().filter(|f| *f >= min).collect::<Vec<_>>()),
            min..4.0,
            (1.0f64..10.0, 0i32..300).prop_map(|(m, e)| m * 10f64.powi(e)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The module's "Precision": with tens of retries, growth holds to a nanosecond for
    /// delays up to a day, and a periodic backoff without jitter gives its interval
    /// exactly at any size.
    #[test]
    fn growth_holds_to_a_nanosecond_up_to_a_day_and_an_interval_exactly() {
        // 100 ms × 1.5^i, exactly: 10^8 × 3^i / 2^i ns, rounded to the nearest.
        let backoff = ExponentialBackoff::new(40, Duration::from_millis(100), 1.5).unwrap();
        let mut checked = 0;
        for (i, delay) in (0u32..).zip(backoff.delays()) {
            let (num, den) = (100_000_000 * 3u128.pow(i), 2u128.pow(i));
            let exact = (2 * num + den) / (2 * den);
            if exact > 86_400 * 1_000_000_000 {
                break;
            }
            assert!(
                delay.as_nanos().abs_diff(exact) <= 1,
                "retry {i}: {delay:?}, {exact} ns"
            );
            checked += 1;
        }
        assert_eq!(checked, 34, "up to a day: retries 0 to 33");

        for interval in [Duration::new(200 * 86_400, 1), Duration::MAX] {
            let delays: Vec<_> = PeriodicBackoff::new(2, interval).delays().collect();
            assert_eq!(delays, [interval; 2]);
        }
    }

    #[test]
    fn requests_from_one_recipe_get_independent_jitter() {
        let recipes: Vec<BoxBackoff> = vec![
            ExponentialBackoff::doubling(8, Duration::from_secs(1))
                .with_jitter(Jitter::full())
                .boxed(),
            ExponentialBackoff::doubling(8, Duration::from_secs(1))
                .jitter(Jitter::full())
                .boxed(),
            PeriodicBackoff::new(8, Duration::from_secs(1))
                .with_jitter(Jitter::gauss(0.5, 0.1).unwrap())
                .boxed(),
            FibonacciBackoff::new(8, Duration::from_secs(1))
                .with_jitter(Jitter::equal())
                .boxed(),
            DecorrelatedJitterBackoff::new(8, Duration::from_secs(1), Duration::from_secs(60))
                .boxed(),
            // Seeded: still distinct per request.
            ExponentialBackoff::doubling(8, Duration::from_secs(1))
                .with_jitter(Jitter::full().seeded(1))
                .boxed(),
            DecorrelatedJitterBackoff::default()
                .with_attempts(8)
                .seeded(1)
                .boxed(),
        ];
        for recipe in recipes {
            let a: Vec<_> = recipe.delays().collect();
            let b: Vec<_> = recipe.delays().collect();
            assert_eq!(a.len(), 8);
            assert_ne!(a, b, "{recipe:?}");
        }
    }

    /// tower's maker hands every request the same jitter sequence; this crate does not.
    #[tokio::test(start_paused = true)]
    async fn unlike_tower_exponential_backoff_maker() {
        use tower::retry::backoff::{Backoff as _, ExponentialBackoffMaker, MakeBackoff};
        use tower::util::rng::HasherRng;

        // 100 ms: tower's maker truncates the jitter on `d`'s whole seconds to whole
        // seconds, so with a 1 s base its first delay would have none and match trivially.
        let mut maker = ExponentialBackoffMaker::new(
            Duration::from_millis(100),
            Duration::from_secs(60),
            1.0,
            HasherRng::default(),
        )
        .unwrap();
        // The clock is paused, so each sleep's deadline is `now + delay`.
        let sequence =
            |backoff: &mut dyn FnMut() -> tokio::time::Sleep| -> Vec<tokio::time::Instant> {
                (0..5).map(|_| backoff().deadline()).collect()
            };
        let mut first = maker.make_backoff();
        let mut second = maker.make_backoff();
        let a = sequence(&mut || first.next_backoff());
        let b = sequence(&mut || second.next_backoff());
        assert_eq!(a, b, "tower: same jitter for every request");

        let ours = ExponentialBackoff::doubling(5, Duration::from_millis(100))
            .jitter(Jitter::full())
            .max_delay(Duration::from_secs(60));
        assert!(!ours.delays().eq(ours.delays()));
    }

    /// The table's mapping of backon's `with_jitter` and tower's jitter 1.0, which both
    /// add up to one delay more: every delay lands in `[d, 2d)`, as theirs do.
    #[test]
    fn the_mapping_of_added_jitter_stays_within_d_to_2d() {
        use backon::BackoffBuilder as _;
        let base = Duration::from_millis(100);
        let ours = ExponentialBackoff::doubling(6, base)
            .map(|d| d.saturating_add(d / 2))
            .jitter(Jitter::proportional(1.0 / 3.0).unwrap().seeded(7));
        let backon = || {
            backon::ExponentialBuilder::default()
                .with_min_delay(base)
                .with_max_times(6)
                .with_jitter()
                .build()
        };
        for _ in 0..200 {
            for (delays, who) in [
                (ours.delays().collect::<Vec<_>>(), "ours"),
                (backon().collect(), "backon"),
            ] {
                assert_eq!(delays.len(), 6, "{who}");
                for (i, d) in delays.into_iter().enumerate() {
                    let nominal = base * 2u32.pow(u32::try_from(i).unwrap());
                    assert!(d >= nominal && d < nominal * 2, "{who}, delay {i}: {d:?}");
                }
            }
        }
    }

    #[test]
    fn recipes_and_iterators_are_send_sync_debug() {
        fn recipe<B: Backoff + Clone + std::fmt::Debug>(_: &B) {}
        fn iter<I: Iterator<Item = Duration> + Send + std::fmt::Debug + 'static>(_: &I) {}
        let b = PeriodicBackoff::default();
        recipe(&b);
        iter(&b.delays());
        let b = ExponentialBackoff::default()
            .jitter(Jitter::full())
            .max_delay(Duration::from_secs(1))
            .max_total_delay(Duration::from_secs(3))
            .max_retries(2)
            .chain(FibonacciBackoff::default())
            .map(|d| d * 2);
        recipe(&b);
        iter(&b.delays());
        let b = DecorrelatedJitterBackoff::default();
        recipe(&b);
        iter(&b.delays());
        fn shared<T: Clone + Send + Sync + std::fmt::Debug>(_: &T) {}
        shared(&Jitter::full());
    }

    fn combinators() -> impl Strategy<Value = (usize, u64, u64, usize, u64, u64)> {
        (
            0usize..300,
            arb::magnitude(),
            arb::magnitude(),
            0usize..400,
            arb::magnitude(),
            any::<u64>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn stacked_combinators_never_panic_and_keep_their_promises(
            (attempts, base_ns, cap_ns, max_retries, total_ns, seed) in combinators(),
            factor in arb::factor(0.0),
        ) {
            let cap = Duration::from_nanos(cap_ns);
            let total = Duration::from_nanos(total_ns);
            let b = ExponentialBackoff::new(attempts, Duration::from_nanos(base_ns), factor)
                .unwrap()
                .jitter(Jitter::full().seeded(seed))
                .max_delay(cap)
                .max_retries(max_retries)
                .boxed()
                .max_total_delay(total);
            let d: Vec<_> = b.delays().collect();
            prop_assert!(d.len() <= attempts.min(max_retries));
            prop_assert!(d.iter().all(|&d| d <= cap));
            prop_assert!(d.iter().try_fold(Duration::ZERO, |acc, d| acc.checked_add(*d)).is_some_and(|s| s <= total));

            let untotalled = ExponentialBackoff::new(attempts, Duration::from_nanos(base_ns), factor)
                .unwrap()
                .with_max_delay(cap)
                .max_retries(max_retries);
            prop_assert_eq!(untotalled.delays().count(), attempts.min(max_retries));
        }

        #[test]
        fn any_jitter_any_input(secs in any::<f64>(), attempts in 0usize..50, base_ms in any::<u64>(), seed in any::<u64>()) {
            let jitters = [
                Jitter::from_fn(move |_| secs),
                Jitter::from_fn_no_index(move || secs),
                Jitter::full().seeded(seed),
                Jitter::equal().seeded(seed),
                Jitter::proportional(1.0).unwrap().seeded(seed),
                Jitter::gauss(1e300, 1e300).unwrap().seeded(seed),
                Jitter::uniform(-1e300, 1e300).unwrap().seeded(seed),
            ];
            for j in jitters {
                let base = Duration::from_millis(base_ms);
                prop_assert_eq!(PeriodicBackoff::new(attempts, base).with_jitter(j.clone()).delays().count(), attempts);
                prop_assert_eq!(ExponentialBackoff::doubling(attempts, base).with_jitter(j.clone()).delays().count(), attempts);
                prop_assert_eq!(FibonacciBackoff::new(attempts, base).with_jitter(j.clone()).delays().count(), attempts);
                prop_assert_eq!(from_iter([base; 3]).jitter(j).delays().count(), 3);
            }
        }
    }
}
