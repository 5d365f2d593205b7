//! Randomness added to, or multiplied into, each delay.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::rng::DelayRng;

use super::InvalidBackoff;
use super::error::{finite, finite_non_negative, unit_interval};
use super::rng::{RngSource, standard_normal_pair, unit};
use super::saturate::secs_to_duration;

/// How each delay is perturbed, so that clients failing together do not retry together.
///
/// A `Jitter` is given to a built-in backoff with `with_jitter` (for example
/// [`PeriodicBackoff::with_jitter`](super::PeriodicBackoff::with_jitter)), which applies
/// it to the delay *before* the backoff's own cap, as pjrpc does; or to any backoff with
/// [`BackoffExt::jitter`](super::BackoffExt::jitter), which applies it to what the
/// backoff yields, *after* its cap (follow it with
/// [`max_delay`](super::BackoffExt::max_delay) to cap the jittered delay). For pjrpc's
/// behaviour, with a capped backoff (Fibonacci's 1 s by default), use `with_jitter`.
///
/// Two families:
///
/// | constructor | delay `d` at retry `i` becomes | from |
/// |---|---|---|
/// | [`none`](Self::none) | `d` | |
/// | [`from_fn(f)`](Self::from_fn) | `d + f(i)` seconds | pjrpc `jitter=lambda attempt: ...` |
/// | [`from_fn_no_index(f)`](Self::from_fn_no_index) | `d + f()` seconds | pjrpc's older `jitter=lambda: ...` |
/// | [`gauss(mu, sigma)`](Self::gauss) | `d + N(mu, sigma)` seconds | pjrpc's `random.gauss(0.5, 0.1)` example |
/// | [`uniform(low, high)`](Self::uniform) | `d + U[low, high)` seconds | `random.uniform` |
/// | [`full`](Self::full) | `d × U[0, 1)` | Brooker's "full jitter", AWS SDKs |
/// | [`equal`](Self::equal) | `d/2 + U[0, d/2)` | Brooker's "equal jitter" |
/// | [`proportional(p)`](Self::proportional) | `d × U[1 − p, 1 + p)` | gRPC (`p = 0.2`) |
///
/// The additive kinds add seconds (possibly negative) to the delay; the multiplicative
/// kinds scale the un-jittered delay. Results below zero become zero and a NaN from a
/// closure counts as no jitter; nothing can panic or overflow.
///
/// # Randomness
///
/// Each request (each call to [`Backoff::delays`](super::Backoff::delays)) gets its own
/// small random generator, owned by its delay iterator: drawing a delay never allocates
/// and never locks.
///
/// - **Unseeded** (the default), that generator is seeded from the thread's random
///   generator, so two requests from one recipe get independent jitter. (tower's
///   `ExponentialBackoffMaker` instead hands every request the same sequence.)
/// - **Seeded** with [`seeded`](Self::seeded), the `n`-th request drawn from the recipe
///   (counting across its clones, in the order their delays are first drawn) is seeded
///   from `(seed, n)`: runs are reproducible, and requests still differ from one
///   another. The count lives in the seeded `Jitter` and is shared by all its clones:
///   one seeded jitter given to two recipes (two methods' strategies, say) counts the
///   requests of both, so seed each recipe's jitter apart to keep their delays apart.
///   With concurrent calls, the order in which they first fail decides which call is
///   the `n`-th, so each call's delays are reproducible only when that order is.
///   A seed gives the same delays on every target, with one reservation for
///   [`gauss`](Self::gauss): its samples go through `f64::ln` and `f64::sin_cos`, whose
///   last bit may differ between platforms, which can move a delay by a nanosecond
///   (only when it falls within about 10⁻⁸ ns of a rounding boundary).
///
/// The closure kinds ([`from_fn`](Self::from_fn), [`from_fn_no_index`](Self::from_fn_no_index))
/// bring their own randomness, if any; `seeded` does not affect them.
///
/// # Default
///
/// [`Jitter::none()`]: every delay unchanged.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
///
/// // pjrpc: PeriodicBackoff(attempts=3, interval=1.0, jitter=lambda i: 0.1 * i)
/// let b = PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(Jitter::from_fn(|i| 0.1 * f64::from(i)));
/// let delays: Vec<_> = b.delays().collect();
/// assert_eq!(delays, [Duration::from_millis(1000), Duration::from_millis(1100), Duration::from_millis(1200)]);
///
/// // Full jitter, seeded for a reproducible test: every delay within [0, 1 s).
/// let b = PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(Jitter::full().seeded(42));
/// assert!(b.delays().all(|d| d < Duration::from_secs(1)));
/// ```
#[derive(Clone)]
pub struct Jitter {
    kind: Kind,
    rng: RngSource,
}

#[derive(Clone)]
enum Kind {
    None,
    Indexed(Arc<dyn Fn(u32) -> f64 + Send + Sync>),
    NoIndex(Arc<dyn Fn() -> f64 + Send + Sync>),
    Gauss { mu: f64, sigma: f64 },
    Uniform { low: f64, high: f64 },
    Full,
    Equal,
    Proportional(f64),
}

impl Kind {
    const fn is_random(&self) -> bool {
        matches!(
            self,
            Self::Gauss { .. }
                | Self::Uniform { .. }
                | Self::Full
                | Self::Equal
                | Self::Proportional(_)
        )
    }
}

impl Jitter {
    const fn of(kind: Kind) -> Self {
        Self {
            kind,
            rng: RngSource::unseeded(),
        }
    }

    /// No jitter: every delay is left as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::Jitter;
    ///
    /// assert!(Jitter::none().is_none());
    /// ```
    pub const fn none() -> Self {
        Self::of(Kind::None)
    }

    /// Adds `f(i)` seconds to the delay of retry `i` (counted from 0, up to `u32::MAX`:
    /// later retries are told `u32::MAX`), as pjrpc's `jitter=lambda attempt: ...` does. The result may be negative; a delay that
    /// would fall below zero becomes zero, and a NaN counts as `0.0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff, Jitter};
    ///
    /// // pjrpc: ExponentialBackoff(attempts=4, max_value=3, jitter=lambda i: 0.5)
    /// let b = ExponentialBackoff::doubling(4, Duration::from_secs(1))
    ///     .with_max_delay(Duration::from_secs(3))
    ///     .with_jitter(Jitter::from_fn(|_| 0.5));
    /// let secs: Vec<f64> = b.delays().map(|d| d.as_secs_f64()).collect();
    /// assert_eq!(secs, [1.5, 2.5, 3.0, 3.0]);
    /// ```
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(u32) -> f64 + Send + Sync + 'static,
    {
        Self::of(Kind::Indexed(Arc::new(f)))
    }

    /// Adds `f()` seconds to every delay: the no-argument jitter of pjrpc's older API
    /// (`jitter=lambda: ...`). Negative results and NaN are handled as in
    /// [`from_fn`](Self::from_fn).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(2, Duration::from_secs(1)).with_jitter(Jitter::from_fn_no_index(|| -0.25));
    /// assert!(b.delays().eq([Duration::from_millis(750); 2]));
    /// ```
    pub fn from_fn_no_index<F>(f: F) -> Self
    where
        F: Fn() -> f64 + Send + Sync + 'static,
    {
        Self::of(Kind::NoIndex(Arc::new(f)))
    }

    /// Adds a normally distributed number of seconds, mean `mu` and standard deviation
    /// `sigma`, to each delay: pjrpc's `jitter=lambda: random.gauss(mu, sigma)`.
    ///
    /// # Errors
    ///
    /// [`InvalidBackoff`] if `mu` is not finite, or `sigma` is negative or not finite.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let jitter = Jitter::gauss(0.5, 0.1)?.seeded(7);
    /// let b = PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(jitter);
    /// // 1 s + about 0.5 s each: far outside ±10 sigma would be a bug.
    /// assert!(b.delays().all(|d| d > Duration::from_millis(500) && d < Duration::from_millis(2500)));
    /// # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
    /// ```
    pub fn gauss(mu: f64, sigma: f64) -> Result<Self, InvalidBackoff> {
        let mu = finite("mu", mu)?;
        let sigma = finite_non_negative("sigma", sigma)?;
        Ok(Self::of(Kind::Gauss { mu, sigma }))
    }

    /// Adds a uniformly distributed number of seconds in `[low, high)` to each delay
    /// (pjrpc's `jitter=lambda: random.uniform(low, high)`); either bound may be negative.
    ///
    /// # Errors
    ///
    /// [`InvalidBackoff`] if a bound is not finite or `high < low`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(Jitter::uniform(-0.5, 0.5)?);
    /// assert!(b.delays().all(|d| d >= Duration::from_millis(500) && d < Duration::from_millis(1500)));
    /// # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
    /// ```
    pub fn uniform(low: f64, high: f64) -> Result<Self, InvalidBackoff> {
        let low = finite("low", low)?;
        let high = finite("high", high)?;
        if high < low {
            return Err(InvalidBackoff::new("high", "at least low", high));
        }
        Ok(Self::of(Kind::Uniform { low, high }))
    }

    /// "Full jitter": each delay `d` becomes `d × U[0, 1)`.
    ///
    /// With a cap, jitter after it, as [`BackoffExt::jitter`](super::BackoffExt::jitter)
    /// does: a built-in's `with_jitter` applies its own cap after the jitter (pjrpc's
    /// order), and once the uncapped delay is well above the cap, most draws land on the
    /// cap itself, so clients failing together retry together again. So cap, then
    /// jitter: `ExponentialBackoff::doubling(8, base).with_max_delay(cap)
    /// .jitter(Jitter::full())`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, Jitter};
    ///
    /// let b = ExponentialBackoff::doubling(4, Duration::from_secs(1)).jitter(Jitter::full());
    /// for (d, max) in b.delays().zip([1, 2, 4, 8]) {
    ///     assert!(d < Duration::from_secs(max));
    /// }
    /// ```
    pub const fn full() -> Self {
        Self::of(Kind::Full)
    }

    /// "Equal jitter": each delay `d` becomes `d/2 + U[0, d/2)`, which keeps at least
    /// half of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(3, Duration::from_secs(2)).with_jitter(Jitter::equal());
    /// assert!(b.delays().all(|d| d >= Duration::from_secs(1) && d < Duration::from_secs(2)));
    /// ```
    pub const fn equal() -> Self {
        Self::of(Kind::Equal)
    }

    /// Each delay `d` becomes `d × U[1 − p, 1 + p)`: gRPC's current scheme with
    /// `p = 0.2`.
    ///
    /// # Errors
    ///
    /// [`InvalidBackoff`] unless `0 ≤ p ≤ 1`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(3, Duration::from_secs(10)).with_jitter(Jitter::proportional(0.2)?);
    /// assert!(b.delays().all(|d| d >= Duration::from_secs(8) && d < Duration::from_secs(12)));
    /// # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
    /// ```
    pub fn proportional(p: f64) -> Result<Self, InvalidBackoff> {
        Ok(Self::of(Kind::Proportional(unit_interval("p", p)?)))
    }

    /// Makes the random kinds reproducible: the `n`-th request drawn from a recipe
    /// holding this jitter (clones included) is seeded from `(seed, n)`. See
    /// [Randomness](Self#randomness).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let recipe = || PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(Jitter::full().seeded(1));
    /// let (a, b) = (recipe(), recipe());
    /// // Same seed, same sequence of requests: same delays.
    /// assert!(a.delays().eq(b.delays()));
    /// assert!(a.delays().eq(b.delays()));
    /// // But successive requests from one recipe differ.
    /// assert!(!a.delays().eq(a.delays()));
    /// ```
    #[must_use]
    pub fn seeded(mut self, seed: u64) -> Self {
        self.rng = RngSource::seeded(seed);
        self
    }

    /// Whether this is [`Jitter::none()`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::Jitter;
    ///
    /// assert!(!Jitter::full().is_none());
    /// ```
    pub const fn is_none(&self) -> bool {
        matches!(self.kind, Kind::None)
    }

    /// The per-request state: clones the closure handle, seeds a generator if needed.
    pub(crate) fn start(&self) -> JitterState {
        JitterState {
            rng: self.kind.is_random().then(|| self.rng.rng()),
            kind: self.kind.clone(),
            spare_normal: None,
        }
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::none()
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Jitter");
        s.field("kind", &self.kind);
        if let Some(seed) = self.rng.seed() {
            s.field("seed", &seed);
        }
        s.finish()
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Indexed(_) => f.write_str("FromFn(|i| ..)"),
            Self::NoIndex(_) => f.write_str("FromFn(|| ..)"),
            Self::Gauss { mu, sigma } => f
                .debug_struct("Gauss")
                .field("mu", mu)
                .field("sigma", sigma)
                .finish(),
            Self::Uniform { low, high } => f
                .debug_struct("Uniform")
                .field("low", low)
                .field("high", high)
                .finish(),
            Self::Full => f.write_str("Full"),
            Self::Equal => f.write_str("Equal"),
            Self::Proportional(p) => f.debug_tuple("Proportional").field(p).finish(),
        }
    }
}

/// The jitter of one request: what a delay iterator owns.
pub(crate) struct JitterState {
    kind: Kind,
    rng: Option<DelayRng>,
    /// The second sample of the last Box–Muller pair, for the next gaussian draw.
    spare_normal: Option<f64>,
}

impl JitterState {
    /// Jitters `secs` (finite, non-negative) for retry `index`; the result may be
    /// negative or infinite, and is for [`secs_to_duration`].
    pub(crate) fn apply_secs(&mut self, index: usize, secs: f64) -> f64 {
        let Some(rng) = self.rng.as_mut() else {
            return match &self.kind {
                Kind::Indexed(f) => secs + not_nan(f(u32::try_from(index).unwrap_or(u32::MAX))),
                Kind::NoIndex(f) => secs + not_nan(f()),
                // The random kinds always carry a generator.
                _ => secs,
            };
        };
        match self.kind {
            Kind::Gauss { mu, sigma } => {
                let z = self.spare_normal.take().unwrap_or_else(|| {
                    let (z, spare) = standard_normal_pair(rng);
                    self.spare_normal = Some(spare);
                    z
                });
                // In sixteenths, so that no partial sum overflows (|z| < 9): a delay
                // saturated at `f64::MAX` seconds plus a huge `mu` would reach infinity,
                // and then a huge negative `sigma * z` would make NaN, read as no wait.
                // Scaling by a power of two is exact: other sums are unchanged.
                (secs / 16.0 + mu / 16.0 + sigma / 16.0 * z) * 16.0
            }
            Kind::Uniform { low, high } => {
                // Weighted, not `low + (high - low) * u`: the width of two finite bounds
                // can overflow to infinity.
                let u = unit(rng);
                secs + low * (1.0 - u) + high * u
            }
            Kind::Full => secs * unit(rng),
            Kind::Equal => secs / 2.0 + secs / 2.0 * unit(rng),
            Kind::Proportional(p) => secs * (1.0 - p + 2.0 * p * unit(rng)),
            Kind::None | Kind::Indexed(_) | Kind::NoIndex(_) => secs,
        }
    }

    /// Jitters a delay for retry `index`; without jitter, returns it exactly.
    pub(crate) fn apply(&mut self, index: usize, delay: Duration) -> Duration {
        if matches!(self.kind, Kind::None) {
            delay
        } else {
            self.apply_to_secs(index, delay.as_secs_f64())
        }
    }

    /// Jitters a delay of `secs` seconds for retry `index`, as a `Duration`.
    pub(crate) fn apply_to_secs(&mut self, index: usize, secs: f64) -> Duration {
        let jittered = secs_to_duration(self.apply_secs(index, secs));
        let Some((low, high)) = self.half_open_range(secs) else {
            return jittered;
        };
        // Drawn in seconds and rounded to whole nanoseconds, a delay could land outside
        // the range (on its excluded end, or a nanosecond below a fractional start):
        // keep it to the whole nanoseconds inside, unless the range is too narrow to
        // hold one. A range whose end saturates at `Duration::MAX` excludes nothing a
        // `Duration` holds: a draw past it stays `Duration::MAX`, as saturation promises.
        let first = ceil_nanos(low);
        let end = ceil_nanos(high);
        match end.checked_sub(Duration::from_nanos(1)) {
            _ if end == Duration::MAX => jittered.max(first),
            Some(last) if last >= first => jittered.clamp(first, last),
            _ => jittered,
        }
    }

    /// The range `[low, high)` a random kind draws from, in seconds, for a delay of
    /// `secs` seconds; `None` for the kinds with no excluded end.
    fn half_open_range(&self, secs: f64) -> Option<(f64, f64)> {
        match self.kind {
            Kind::Full => Some((0.0, secs)),
            Kind::Equal => Some((secs / 2.0, secs)),
            Kind::Proportional(p) => Some((secs * (1.0 - p), secs * (1.0 + p))),
            Kind::Uniform { low, high } => Some((secs + low, secs + high)),
            _ => None,
        }
    }
}

/// The least whole number of nanoseconds not below `secs` seconds (saturating).
fn ceil_nanos(secs: f64) -> Duration {
    let rounded = secs_to_duration(secs);
    if rounded.as_secs_f64() < secs {
        rounded.saturating_add(Duration::from_nanos(1))
    } else {
        rounded
    }
}

fn not_nan(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x }
}

impl fmt::Debug for JitterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JitterState")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(j: &Jitter, secs: f64, n: usize) -> Vec<f64> {
        let mut s = j.start();
        (0..n).map(|i| s.apply_secs(i, secs)).collect()
    }

    /// A seed's delays are pinned: the same on every target and every release, so a
    /// test that asserts them keeps passing wherever it runs.
    #[test]
    fn a_seed_gives_these_delays_everywhere() {
        use crate::backoff::{Backoff, PeriodicBackoff};
        let recipe =
            PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(Jitter::full().seeded(42));
        let first: Vec<u128> = recipe.delays().map(|d| d.as_nanos()).collect();
        let second: Vec<u128> = recipe.delays().map(|d| d.as_nanos()).collect();
        assert_eq!(first, [868_568_604, 650_113_447, 754_710_564]);
        assert_eq!(second, [883_977_443, 714_110_451, 949_303_847]);
    }

    /// A saturated delay jittered by a huge Gaussian stays saturated where the exact sum
    /// is positive: no partial sum overflows into infinity minus infinity (NaN, which
    /// reads as no wait).
    #[test]
    fn a_huge_gauss_on_a_saturated_delay_saturates() {
        let n = 400;
        let z = draw(&Jitter::gauss(0.0, 1.0).unwrap().seeded(1), 0.0, n);
        let huge = Jitter::gauss(f64::MAX, f64::MAX).unwrap().seeded(1);
        let mut state = huge.start();
        let mut checked = 0;
        for (i, z) in z.into_iter().enumerate() {
            // The exact sum is f64::MAX * (2 + z).
            let delay = state.apply_to_secs(i, f64::MAX);
            if z > -1.9 {
                assert_eq!(delay, Duration::MAX, "retry {i}, z = {z}");
                checked += usize::from(z < -1.0);
            }
        }
        // Draws where `sigma * z` alone overflows to minus infinity were among them.
        assert!(checked > 10, "{checked}");
    }

    /// `uniform`'s bounds may be equal ("`high < low`" is the only ordering error): the
    /// jitter is then that constant.
    #[test]
    fn uniform_accepts_equal_bounds() {
        let j = Jitter::uniform(0.5, 0.5).unwrap().seeded(1);
        assert_eq!(draw(&j, 1.0, 3), [1.5, 1.5, 1.5]);
        let j = Jitter::uniform(-0.25, -0.25).unwrap();
        assert_eq!(draw(&j, 1.0, 2), [0.75, 0.75]);
    }

    /// Each random kind covers its whole range, not just part of it: over 1,000 draws
    /// some land in the bottom 5% and some in the top 5% of it. (For any seed, a kind
    /// that does cover its range fails this with probability below 2 × 0.95^1000 ≈ 1e-22
    /// per kind.)
    #[test]
    fn random_kinds_cover_their_whole_range() {
        let cases = [
            (Jitter::full().seeded(1), 2.0, 0.0, 2.0),
            (Jitter::equal().seeded(2), 2.0, 1.0, 2.0),
            (
                Jitter::proportional(0.2).unwrap().seeded(3),
                10.0,
                8.0,
                12.0,
            ),
            (
                Jitter::uniform(-0.5, 0.25).unwrap().seeded(4),
                1.0,
                0.5,
                1.25,
            ),
        ];
        for (j, secs, low, high) in cases {
            let xs = draw(&j, secs, 1_000);
            let margin = (high - low) * 0.05;
            let (min, max) = xs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            assert!(min >= low && min < low + margin, "{j:?}: min {min}");
            assert!(max < high && max >= high - margin, "{j:?}: max {max}");
        }
    }

    /// A uniform range with a negative lower bound keeps its excluded upper end after
    /// rounding, as the zero-based ones do.
    #[test]
    fn uniform_below_the_delay_stays_below_it_after_rounding() {
        // [4 ns, 5 ns): a draw close to 5 ns would round up to it.
        let delay = Duration::from_nanos(5);
        let mut s = Jitter::uniform(-1e-9, 0.0).unwrap().seeded(1).start();
        assert!((0..10_000).all(|i| s.apply(i, delay) < delay));
    }

    /// The other random kinds are pinned too (README: a seed gives the same delays on
    /// every target and with every `rand` release); the gaussian one draws its samples
    /// in pairs, so its third delay comes from a second pair.
    #[test]
    fn every_random_kind_gives_these_delays_for_a_seed() {
        use crate::backoff::{Backoff, PeriodicBackoff};
        let cases = [
            (
                Jitter::gauss(0.5, 0.1).unwrap(),
                [1_381_702_048, 1_336_932_529, 1_661_083_137],
            ),
            (
                Jitter::uniform(-0.5, 0.5).unwrap(),
                [1_368_568_604, 1_150_113_447, 1_254_710_564],
            ),
            (Jitter::equal(), [934_284_302, 825_056_723, 877_355_282]),
            (
                Jitter::proportional(0.2).unwrap(),
                [1_147_427_441, 1_060_045_379, 1_101_884_226],
            ),
        ];
        for (jitter, nanos) in cases {
            let recipe = PeriodicBackoff::new(3, Duration::from_secs(1))
                .with_jitter(jitter.clone().seeded(42));
            let delays: Vec<u128> = recipe.delays().map(|d| d.as_nanos()).collect();
            assert_eq!(delays, nanos, "{jitter:?}");
        }
    }

    #[test]
    fn none_is_identity() {
        let mut s = Jitter::none().start();
        assert_eq!(
            s.apply(3, Duration::from_millis(7)),
            Duration::from_millis(7)
        );
        assert_eq!(s.apply_secs(0, 2.5), 2.5);
    }

    #[test]
    fn closures_add_seconds_and_nan_is_zero() {
        let j = Jitter::from_fn(|i| f64::from(i) / 4.0);
        assert_eq!(draw(&j, 1.0, 3), [1.0, 1.25, 1.5]);
        let j = Jitter::from_fn_no_index(|| f64::NAN);
        assert_eq!(draw(&j, 1.0, 2), [1.0, 1.0]);
        let mut s = Jitter::from_fn(|_| -5.0).start();
        assert_eq!(s.apply(0, Duration::from_secs(1)), Duration::ZERO);
        let mut s = Jitter::from_fn(|_| f64::INFINITY).start();
        assert_eq!(s.apply(0, Duration::from_secs(1)), Duration::MAX);
    }

    #[test]
    fn full_and_equal_stay_below_the_delay_after_rounding() {
        // 10 ns: a draw close to 1 would round up to the delay itself.
        let delay = Duration::from_nanos(10);
        for j in [Jitter::full().seeded(3), Jitter::equal().seeded(4)] {
            let mut s = j.start();
            assert!((0..10_000).all(|i| s.apply(i, delay) < delay));
            let mut s = j.start();
            assert!((0..10_000).all(|i| s.apply_to_secs(i, 1e-8) < delay));
        }
    }

    #[test]
    fn proportional_and_uniform_stay_below_their_upper_bound_after_rounding() {
        // 10 ns × (1 + 0.2) and 5 ns + 1 ns: draws close to the top would round up to
        // the excluded bound.
        let mut s = Jitter::proportional(0.2).unwrap().seeded(1).start();
        let top = Duration::from_nanos(12);
        assert!((0..10_000).all(|i| s.apply(i, Duration::from_nanos(10)) < top));
        let mut s = Jitter::uniform(0.0, 1e-9).unwrap().seeded(1).start();
        let top = Duration::from_nanos(6);
        assert!((0..10_000).all(|i| s.apply(i, Duration::from_nanos(5)) < top));
        // A range narrower than a nanosecond is not pushed below its start.
        let second = Duration::from_secs(1);
        let mut s = Jitter::uniform(0.0, 1e-10).unwrap().seeded(1).start();
        assert!((0..100).all(|i| s.apply(i, second) == second));
        let mut s = Jitter::proportional(1e-12).unwrap().seeded(1).start();
        assert!((0..100).all(|i| s.apply(i, second) == second));
        // Both still reach the nanosecond below.
        let mut s = Jitter::proportional(0.2).unwrap().seeded(1).start();
        assert!(
            (0..10_000)
                .any(|i| s.apply(i, Duration::from_nanos(10)) == top * 2 - Duration::from_nanos(1))
        );
    }

    #[test]
    fn rounding_keeps_to_the_whole_nanoseconds_inside_the_range() {
        let ten = Duration::from_nanos(10);
        let ns = Duration::from_nanos;
        // The least and the most of many draws.
        let span = |j: Jitter| {
            let mut s = j.seeded(1).start();
            let got: Vec<Duration> = (0..20_000).map(|i| s.apply(i, ten)).collect();
            (got.iter().min().copied(), got.iter().max().copied())
        };
        // 10 ns × (1 ± 0.26) = [7.4, 12.6) ns: 8 to 12 ns, both reached.
        let got = span(Jitter::proportional(0.26).unwrap());
        assert_eq!(got, (Some(ns(8)), Some(ns(12))));
        // 10 ns × (1 ± 0.24) = [7.6, 12.4) ns: 8 to 12 ns, 12 included.
        let got = span(Jitter::proportional(0.24).unwrap());
        assert_eq!(got, (Some(ns(8)), Some(ns(12))));
        // 10 ns + U[-2.6, 0) ns = [7.4, 10) ns: 8 to 9 ns.
        let got = span(Jitter::uniform(-2.6e-9, 0.0).unwrap());
        assert_eq!(got, (Some(ns(8)), Some(ns(9))));
        // 1 ns + U[0.2, 0.8) ns = [1.2, 1.8) ns holds no whole nanosecond: left as drawn
        // and rounded, never a panic for a clamp whose bounds cross.
        let mut s = Jitter::uniform(0.2e-9, 0.8e-9).unwrap().seeded(1).start();
        let got: Vec<Duration> = (0..1_000).map(|i| s.apply(i, ns(1))).collect();
        assert!(got.iter().all(|d| *d == ns(1) || *d == ns(2)), "{got:?}");
    }

    /// Equal jitter keeps at least half of a delay that is not whole nanoseconds (a
    /// built-in's: 1 ns × 2.6 is 2.6 ns, whose `[1.3, 2.6)` ns holds 2 ns alone), so a
    /// draw in `[1.3, 1.5)` ns is not rounded down to 1 ns.
    #[test]
    fn equal_jitter_keeps_half_of_a_fractional_delay_after_rounding() {
        use crate::backoff::{Backoff, ExponentialBackoff};
        let b = ExponentialBackoff::new(2, Duration::from_nanos(1), 2.6)
            .unwrap()
            .with_jitter(Jitter::equal().seeded(5));
        for _ in 0..1_000 {
            assert_eq!(b.delays().nth(1), Some(Duration::from_nanos(2)));
        }
    }

    #[test]
    fn uniform_over_the_widest_bounds_still_spreads() {
        // The bounds' width overflows f64: the draw must not.
        let j = Jitter::uniform(-f64::MAX, f64::MAX).unwrap().seeded(1);
        let mut s = j.start();
        let delays: Vec<Duration> = (0..200)
            .map(|i| s.apply(i, Duration::from_secs(1)))
            .collect();
        let zeros = delays.iter().filter(|d| d.is_zero()).count();
        assert!((50..150).contains(&zeros), "{zeros} of 200 below zero");
    }

    #[test]
    fn multiplicative_bounds() {
        let n = 2_000;
        for x in draw(&Jitter::full().seeded(1), 2.0, n) {
            assert!((0.0..2.0).contains(&x));
        }
        for x in draw(&Jitter::equal().seeded(2), 2.0, n) {
            assert!((1.0..2.0).contains(&x));
        }
        for x in draw(&Jitter::proportional(0.2).unwrap().seeded(3), 10.0, n) {
            assert!((8.0..12.0).contains(&x), "{x}");
        }
        for x in draw(&Jitter::uniform(-0.5, 0.25).unwrap().seeded(4), 1.0, n) {
            assert!((0.5..1.25).contains(&x));
        }
        assert_eq!(
            draw(&Jitter::proportional(0.0).unwrap(), 3.0, 2),
            [3.0, 3.0]
        );
    }

    #[test]
    fn gauss_mean_and_spread() {
        let xs = draw(&Jitter::gauss(0.5, 0.1).unwrap().seeded(5), 1.0, 10_000);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((mean - 1.5).abs() < 0.01, "{mean}");
        assert!((var.sqrt() - 0.1).abs() < 0.01, "{var}");
    }

    #[test]
    fn seeded_is_reproducible_and_distinct_per_request() {
        let a = Jitter::full().seeded(9);
        let b = Jitter::full().seeded(9);
        let (a1, a2) = (draw(&a, 1.0, 5), draw(&a, 1.0, 5));
        assert_eq!(a1, draw(&b, 1.0, 5));
        assert_eq!(a2, draw(&b, 1.0, 5));
        assert_ne!(a1, a2);
        // Clones share the request counter.
        let c = a.clone();
        assert_ne!(draw(&c, 1.0, 5), a2);
    }

    #[test]
    fn unseeded_differs_per_request() {
        let j = Jitter::full();
        assert_ne!(draw(&j, 1.0, 5), draw(&j, 1.0, 5));
    }

    #[test]
    fn constructors_reject_bad_numbers() {
        assert_eq!(Jitter::gauss(f64::NAN, 0.1).unwrap_err().parameter(), "mu");
        assert_eq!(
            Jitter::gauss(0.0, f64::INFINITY).unwrap_err().parameter(),
            "sigma"
        );
        assert_eq!(Jitter::gauss(0.0, -0.1).unwrap_err().parameter(), "sigma");
        assert!(Jitter::gauss(-0.5, 0.0).is_ok());
        assert_eq!(Jitter::proportional(-0.1).unwrap_err().parameter(), "p");
        assert_eq!(Jitter::proportional(f64::NAN).unwrap_err().parameter(), "p");
        assert_eq!(Jitter::uniform(1.0, 0.0).unwrap_err().parameter(), "high");
        assert_eq!(
            Jitter::uniform(f64::NEG_INFINITY, 0.0)
                .unwrap_err()
                .parameter(),
            "low"
        );
    }

    #[test]
    fn debug_shows_kind_and_seed() {
        assert_eq!(
            format!("{:?}", Jitter::full().seeded(3)),
            "Jitter { kind: Full, seed: 3 }"
        );
        assert_eq!(
            format!("{:?}", Jitter::from_fn(|_| 0.0)),
            "Jitter { kind: FromFn(|i| ..) }"
        );
    }
}
