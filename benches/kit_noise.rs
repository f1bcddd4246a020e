//! How steady the bench kit's paired ratio is: a layer that does nothing, measured five
//! times at each of a few settings. The spread of those five medians is the noise a
//! real layer's ratio has to stand out from; `grpc_chaos::bench`'s defaults come from
//! this run (the figures are in `benches/README.md`).
//!
//! `cargo bench --bench kit_noise`

use grpc_chaos::bench::{Bench, DEFAULT_MESSAGES_PER_ROUND, DEFAULT_ROUNDS};

fn main() {
    let settings = [
        (11, 100),
        (31, 100),
        (31, DEFAULT_MESSAGES_PER_ROUND),
        (DEFAULT_ROUNDS, 2_000),
        (61, 2_000),
    ];
    for (rounds, calls) in settings {
        let medians: Vec<f64> = (0..5)
            .map(|_| {
                let bench = Bench::unary()
                    .client_layer(tower::layer::util::Identity::new())
                    .rounds(rounds)
                    .calls(calls);
                bench.paired().ratio()
            })
            .collect();
        let (low, high) = medians
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &m| (l.min(m), h.max(m)));
        println!(
            "no-op unary, {rounds} rounds of {calls} calls: medians {} (spread {:.3}-{:.3})",
            medians
                .iter()
                .map(|m| format!("{m:.3}"))
                .collect::<Vec<_>>()
                .join(" "),
            low,
            high
        );
    }
    for messages in [100, 1_000] {
        let medians: Vec<f64> = (0..5)
            .map(|_| {
                Bench::server_streaming(messages)
                    .client_layer(tower::layer::util::Identity::new())
                    .paired()
                    .ratio()
            })
            .collect();
        println!(
            "no-op stream of {messages}, defaults: medians {}",
            medians
                .iter()
                .map(|m| format!("{m:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
