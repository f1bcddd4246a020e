//! A bench kit for the overhead of your own layers and interceptors: a rig for each call
//! shape, and a paired ratio against the same rig without them.
//!
//! ```
//! use grpc_chaos::bench::Bench;
//!
//! // A tonic interceptor that adds a header, on the client: how much does it cost?
//! let add_tenant = |mut request: tonic::Request<()>| {
//!     request.metadata_mut().insert("x-tenant", "blue".parse().unwrap());
//!     Ok(request)
//! };
//! let bench = Bench::unary().client_interceptor(add_tenant);
//! # let bench = bench.rounds(3).calls(10);
//! let paired = bench.paired();
//! println!("add_tenant: {paired}"); // 1.012x the baseline (+310 ns per call; …)
//! assert!(paired.ratio() > 0.5 && paired.ratio() < 5.0);
//! ```
//!
//! **What is measured.** One call, to its end, of `pb.Greeter` (a hand-written service
//! that does nothing but answer: [`BenchGreeter`]), from a tonic client to a tonic server
//! over the in-memory HTTP/2 transport of [`crate::memory`], on one current-thread tokio
//! runtime driven by the calling thread, in wall-clock time. The baseline is the same rig
//! without the layer: its own server and connection, the same messages, the same
//! subscriber, the same boxing of each side's service. So the ratio is what the layer
//! adds to a real round trip through tonic, hyper and h2, and not:
//! - network time (there is no socket, and no kernel), TLS, or a second core;
//! - what the layer would cost under contention from other tasks;
//! - anything tokio's scheduler does differently on a multi-thread runtime.
//!
//! **How.** [`Running::paired`] runs rounds of calls on each side in turn, flipping which
//! side goes first every round, and takes the median of the per-round ratios. On a shared
//! machine, where the speed of the same code drifts by 5–50% between criterion runs, the
//! drift falls on both sides of each ratio alike. [`Paired`] also gives what the layer
//! adds per call and, for streams, per message, and the middle half of the rounds as the
//! spread. [`Paired::at_most`] and [`Paired::assert_at_most`] make a CI budget of it that
//! noise cannot trip by construction.
//!
//! **Defaults.** 31 rounds of 400 messages each (200 unary calls, or 2 calls of a
//! 200-message stream). Over five runs on this project's 2-core shared machine, a no-op
//! layer measured within ±1% of 1.0 with these settings (`benches/README.md` has the
//! figures); fewer rounds spread wider.
//!
//! **With criterion**, start the rig once and call one side per iteration:
//!
//! ```no_run
//! # let mut c = criterion::Criterion::default();
//! let running = grpc_chaos::bench::Bench::unary()
//!     .server_layer(tonic_layers::deadline::EnforceDeadlineLayer::new())
//!     .start();
//! c.bench_function("baseline", |b| b.iter(|| running.baseline()));
//! c.bench_function("deadline layer", |b| b.iter(|| running.candidate()));
//! println!("deadline layer: {}", running.paired());
//! ```

mod greeter;
mod paired;
mod rig;

pub use greeter::BenchGreeter;
pub use paired::{pair, Paired};
pub use rig::{Bench, BenchServer, Running, Shape, DEFAULT_MESSAGES_PER_ROUND, DEFAULT_ROUNDS};
