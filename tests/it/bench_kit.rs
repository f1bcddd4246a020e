//! The bench kit measures honestly: a layer that adds a known amount of work shows a
//! ratio clearly above 1, and a layer that adds nothing shows 1 within the noise. These
//! run on the kit's own (real-time) runtime, so they are plain `#[test]`s.

use std::task::{Context, Poll};

use grpc_chaos::bench::{Bench, Shape};
use tower::{Layer, Service};

/// Passes every call through, doing `spins` rounds of arithmetic first (work the
/// optimiser cannot drop, not a sleep).
#[derive(Clone, Copy)]
struct Spin(u64);

impl<S> Layer<S> for Spin {
    type Service = Spinning<S>;
    fn layer(&self, inner: S) -> Spinning<S> {
        Spinning(inner, self.0)
    }
}

#[derive(Clone)]
struct Spinning<S>(S, u64);

impl<S: Service<R>, R> Service<R> for Spinning<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, request: R) -> S::Future {
        let mut x = 0u64;
        for i in 0..self.1 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        self.0.call(request)
    }
}

#[test]
fn a_layer_that_adds_work_shows_a_ratio_clearly_above_one() {
    // Calibrate: about as much work as the baseline call itself.
    let base = Bench::unary()
        .calls(20)
        .rounds(3)
        .paired()
        .baseline_ns_per_call();
    let spins = spins_for(base);
    let paired = Bench::unary().client_layer(Spin(spins)).calls(50).paired();

    println!("spin layer ({spins} spins): {paired}");
    assert!(paired.ratio() > 1.3, "{paired}");
    assert!(paired.extra_ns_per_call() > 0.3 * base, "{paired}");
}

#[test]
fn a_layer_that_adds_nothing_shows_one_within_the_noise() {
    let paired = Bench::unary().server_layer(Spin(0)).calls(50).paired();

    println!("no-op layer: {paired}");
    assert!((0.85..1.15).contains(&paired.ratio()), "{paired}");
}

#[test]
fn every_shape_runs_and_counts_its_messages() {
    for bench in [
        Bench::server_streaming(20),
        Bench::client_streaming(20),
        Bench::bidi(20),
    ] {
        let paired = bench
            .client_layer(Spin(0))
            .message_bytes(64)
            .rounds(3)
            .calls(4)
            .paired();
        assert!(
            (paired.extra_ns_per_message() * 20.0 - paired.extra_ns_per_call()).abs() < 1e-6,
            "{paired}"
        );
    }
    assert_ne!(Shape::Unary, Shape::Bidi(1));
}

#[test]
#[should_panic(expected = "grpc-chaos bench: a candidate call failed")]
fn a_layer_that_refuses_the_calls_cannot_be_measured() {
    let refuse = |_: tonic::Request<()>| Err(tonic::Status::permission_denied("no"));
    let _ = Bench::unary()
        .server_interceptor(refuse)
        .rounds(1)
        .calls(1)
        .paired();
}

/// How many spins take about `ns` nanoseconds on this machine.
fn spins_for(ns: f64) -> u64 {
    let spins = 100_000;
    let started = std::time::Instant::now();
    let mut x = 0u64;
    for i in 0..spins {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    std::hint::black_box(x);
    let per_spin = started.elapsed().as_nanos() as f64 / spins as f64;
    (ns / per_spin.max(0.01)) as u64
}
