//! The HTTP-level layer with cold caches: each call is timed alone, right after the
//! caches were filled with other data, as they are between calls on a real connection
//! (the kernel, the HTTP client and the server run in between).
//!
//! A hot loop (`benches/overhead.rs`) keeps a layer's code and data in the caches from
//! one call to the next, so it shows what the layer computes; this shows what it costs
//! to bring its code and data back, which is what a call over loopback pays. The same
//! three in-memory HTTP services as the `http_level` group of `overhead.rs` are timed
//! in rotating order, call by call, and the medians compared within the run.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{
    BufferOnly, HttpBody, default_strategy, http_answering, http_call_now, median, quick,
};
use tower_jsonrpc_retry::JsonRpcRetryLayer;
use tower_layer::Layer;

/// Writes one byte in every 64-byte line of `junk`, pushing everything else out of the
/// caches it does not fit beside.
fn evict(junk: &mut [u8]) {
    for i in (0..junk.len()).step_by(64) {
        junk[i] = junk[i].wrapping_add(1);
    }
    black_box(&junk);
}

fn main() {
    let calls = if quick() { 60 } else { 3_000 };
    let mut bare = http_answering();
    let mut buffering = BufferOnly {
        inner: http_answering(),
        stream_err: std::io::Error::other,
        read: None,
    };
    let mut layer = JsonRpcRetryLayer::http::<HttpBody>(default_strategy()).layer(http_answering());
    println!("cold: {calls} calls of each service per eviction size");
    // 4 MiB is twice this machine's per-core L2; 32 MiB also fills a 32 MiB L3.
    for mib in [4usize, 32] {
        let mut junk = vec![0u8; mib << 20];
        let mut times: [Vec<f64>; 3] = Default::default();
        for call in 0..calls * 3 {
            // Rotate which service goes first, so none always follows the same one.
            let which = (call + call / 3) % 3;
            evict(&mut junk);
            let start = Instant::now();
            let len = match which {
                0 => http_call_now(&mut bare),
                1 => http_call_now(&mut buffering),
                _ => http_call_now(&mut layer),
            };
            times[which].push(start.elapsed().as_nanos() as f64);
            black_box(len);
        }
        let [bare_ns, buffering_ns, layer_ns] = times.map(|mut t| median(&mut t));
        println!(
            "after {mib:>2} MiB: http_bare {bare_ns:>6.0} ns | http_buffering {buffering_ns:>6.0} ns \
             ({:+.0} ns over bare) | http_layer {layer_ns:>6.0} ns ({:+.0} ns over buffering, {:.2}x its time)",
            buffering_ns - bare_ns,
            layer_ns - buffering_ns,
            layer_ns / buffering_ns,
        );
    }
}
