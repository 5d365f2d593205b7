//! Cost of drawing delays: every backoff of `tower_jsonrpc_retry::backoff`, side by side
//! with tower's `ExponentialBackoffMaker` and backon's `ExponentialBuilder`.
//!
//! `cargo bench --bench backoff` prints criterion's figures (one iteration = one delay
//! drawn), then a plain ns-per-delay table. `BENCH_QUICK=1` shortens everything to a
//! few seconds.
//!
//! # Allocation check
//!
//! The check counts allocations with a `#[global_allocator]` wrapper around
//! `std::alloc::System` (the one `unsafe impl` of the project, in this bench only).
//!
//! With the counter it asserts and prints: drawing a delay allocates nothing, and a
//! fresh iterator from a `BoxBackoff` allocates at most once.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use tower_jsonrpc_retry::backoff::{
    Backoff, BackoffExt, BoxBackoff, DecorrelatedJitterBackoff, ExponentialBackoff,
    FibonacciBackoff, Jitter, PeriodicBackoff,
};

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

    struct Counting;

    // SAFETY: every call is forwarded unchanged to `System`; the counter has no effect
    // on the memory handed out.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// How many allocations `f` made (the bench is single-threaded while this runs).
    pub(crate) fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        let r = f();
        (ALLOCATIONS.load(Ordering::SeqCst) - before, r)
    }
}

/// Retries enough that no iterator runs out during a measurement.
const ENDLESS: usize = usize::MAX;

fn recipes() -> Vec<(&'static str, BoxBackoff)> {
    let s = Duration::from_secs(1);
    vec![
        ("periodic", PeriodicBackoff::new(ENDLESS, s).boxed()),
        (
            "periodic+gauss",
            PeriodicBackoff::new(ENDLESS, s)
                .with_jitter(gauss())
                .boxed(),
        ),
        (
            "exponential",
            ExponentialBackoff::doubling(ENDLESS, s).boxed(),
        ),
        (
            "exponential+full",
            ExponentialBackoff::doubling(ENDLESS, s)
                .with_jitter(Jitter::full())
                .boxed(),
        ),
        (
            "exponential+closure",
            ExponentialBackoff::doubling(ENDLESS, s)
                .with_jitter(Jitter::from_fn(|_| 0.5))
                .boxed(),
        ),
        (
            "fibonacci",
            FibonacciBackoff::new(ENDLESS, s)
                .without_max_delay()
                .boxed(),
        ),
        (
            "fibonacci+equal",
            FibonacciBackoff::new(ENDLESS, s)
                .with_jitter(Jitter::equal())
                .boxed(),
        ),
        (
            "decorrelated",
            DecorrelatedJitterBackoff::new(ENDLESS, s, Duration::from_secs(60)).boxed(),
        ),
    ]
}

fn gauss() -> Jitter {
    Jitter::gauss(0.5, 0.1).unwrap_or_default()
}

/// Times `n` calls of `next` and returns nanoseconds per call.
fn ns_per_call(n: u32, mut next: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        next();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// One criterion benchmark per backoff, each iteration one delay.
fn bench_delays(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut g = c.benchmark_group("delay");
    let s = Duration::from_secs(1);

    macro_rules! unboxed {
        ($name:expr, $recipe:expr) => {{
            let recipe = $recipe;
            let mut d = recipe.delays();
            g.bench_function($name, |b| b.iter(|| black_box(d.next())));
        }};
    }
    unboxed!("periodic", PeriodicBackoff::new(ENDLESS, s));
    unboxed!(
        "periodic+gauss",
        PeriodicBackoff::new(ENDLESS, s).with_jitter(gauss())
    );
    unboxed!("exponential", ExponentialBackoff::doubling(ENDLESS, s));
    unboxed!(
        "exponential+full",
        ExponentialBackoff::doubling(ENDLESS, s).with_jitter(Jitter::full())
    );
    unboxed!(
        "exponential+full+cap(combinators)",
        ExponentialBackoff::doubling(ENDLESS, s)
            .jitter(Jitter::full())
            .max_delay(Duration::from_secs(60))
    );
    unboxed!(
        "fibonacci",
        FibonacciBackoff::new(ENDLESS, s).without_max_delay()
    );
    unboxed!(
        "fibonacci+equal",
        FibonacciBackoff::new(ENDLESS, s).with_jitter(Jitter::equal())
    );
    unboxed!(
        "decorrelated",
        DecorrelatedJitterBackoff::new(ENDLESS, s, Duration::from_secs(60))
    );
    unboxed!(
        "boxed exponential+full",
        ExponentialBackoff::doubling(ENDLESS, s)
            .with_jitter(Jitter::full())
            .boxed()
    );

    {
        use backon::BackoffBuilder;
        let mut d = backon::ExponentialBuilder::default()
            .without_max_times()
            .with_jitter()
            .build();
        g.bench_function("backon ExponentialBuilder+jitter", |b| {
            b.iter(|| black_box(d.next()))
        });
    }
    {
        use tower::retry::backoff::{Backoff as _, ExponentialBackoffMaker, MakeBackoff};
        let _guard = rt.enter();
        let maker = ExponentialBackoffMaker::new(
            s,
            Duration::from_secs(60),
            1.0,
            tower::util::rng::HasherRng::default(),
        );
        if let Ok(mut maker) = maker {
            let mut d = maker.make_backoff();
            // tower's delays come as `tokio::time::Sleep` futures: the timer entry is part of its cost.
            g.bench_function("tower ExponentialBackoffMaker (Sleep)", |b| {
                b.iter(|| black_box(d.next_backoff()))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("fresh iterator");
    let unboxed = ExponentialBackoff::doubling(3, s).with_jitter(Jitter::full());
    let boxed = unboxed.clone().boxed();
    g.bench_function("exponential+full", |b| {
        b.iter(|| black_box(unboxed.delays()))
    });
    g.bench_function("boxed exponential+full", |b| {
        b.iter(|| black_box(boxed.delays()))
    });
    g.finish();
}

/// A plain table for the record, from the same process as criterion's run.
fn summary(quick: bool, rt: &tokio::runtime::Runtime) {
    let n = if quick { 200_000 } else { 5_000_000 };
    println!("\nns per delay ({n} draws each)");
    for (name, recipe) in recipes() {
        let mut d = recipe.delays();
        // Boxed: includes one virtual call per delay.
        println!(
            "  {name:<40} {:>7.2}   (boxed)",
            ns_per_call(n, || {
                black_box(d.next());
            })
        );
    }
    {
        let mut d = ExponentialBackoff::doubling(ENDLESS, Duration::from_secs(1))
            .with_jitter(Jitter::full())
            .delays();
        println!(
            "  {:<40} {:>7.2}",
            "exponential+full (unboxed)",
            ns_per_call(n, || {
                black_box(d.next());
            })
        );
    }
    {
        use backon::BackoffBuilder;
        let mut d = backon::ExponentialBuilder::default()
            .without_max_times()
            .with_jitter()
            .build();
        println!(
            "  {:<40} {:>7.2}",
            "backon ExponentialBuilder+jitter",
            ns_per_call(n, || {
                black_box(d.next());
            })
        );
    }
    {
        use tower::retry::backoff::{Backoff as _, ExponentialBackoffMaker, MakeBackoff};
        let _guard = rt.enter();
        let maker = ExponentialBackoffMaker::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            1.0,
            tower::util::rng::HasherRng::default(),
        );
        if let Ok(mut maker) = maker {
            let mut d = maker.make_backoff();
            println!(
                "  {:<40} {:>7.2}",
                "tower ExponentialBackoffMaker (Sleep)",
                ns_per_call(n, || {
                    drop(black_box(d.next_backoff()));
                })
            );
        }
    }
}

fn check_allocations() {
    println!("\nallocations (counting global allocator)");
    for (name, recipe) in recipes() {
        let mut d = recipe.delays();
        d.next(); // warm: thread-local state of the random source
        let (n, ()) = counting::count(|| {
            for _ in 0..10_000 {
                black_box(d.next());
            }
        });
        println!("  {name:<40} drawing 10000 delays: {n} allocations");
        assert_eq!(n, 0, "{name}: drawing a delay must not allocate");

        let (n, fresh) = counting::count(|| recipe.delays());
        drop(black_box(fresh));
        println!("  {name:<40} fresh BoxBackoff iterator: {n} allocation(s)");
        assert!(
            n <= 1,
            "{name}: a fresh boxed iterator must cost at most one allocation"
        );
    }
    let unboxed = ExponentialBackoff::doubling(3, Duration::from_secs(1))
        .with_jitter(Jitter::full().seeded(1));
    let (n, fresh) = counting::count(|| unboxed.delays());
    drop(black_box(fresh));
    println!(
        "  {:<40} fresh unboxed iterator: {n} allocation(s)",
        "exponential+full(seeded)"
    );
    assert_eq!(n, 0);
    let chained = ExponentialBackoff::doubling(3, Duration::from_secs(1))
        .jitter(Jitter::full())
        .max_delay(Duration::from_secs(2))
        .max_total_delay(Duration::from_secs(5))
        .map(|d| d * 2)
        .chain(PeriodicBackoff::new(2, Duration::from_secs(1)));
    chained.delays().next();
    let (n, count) = counting::count(|| chained.delays().count());
    println!(
        "  {:<40} fresh iterator + all {count} delays: {n} allocation(s)",
        "stacked combinators"
    );
    assert_eq!(n, 0);
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let Ok(rt) = rt else {
        eprintln!("cannot build a tokio runtime");
        return;
    };

    check_allocations();

    let mut c = Criterion::default().configure_from_args();
    if quick {
        c = c
            .warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(150))
            .sample_size(10)
            .without_plots();
    }
    bench_delays(&mut c, &rt);
    c.final_summary();

    summary(quick, &rt);
}
