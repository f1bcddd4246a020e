//! What the benches share: reading criterion's medians back and printing ratios
//! against a baseline measured in the same run, and the hand-written baseline server.
// Each bench uses part of this module.
#![allow(dead_code)]

pub mod greeter;
pub mod policies;
pub mod subscribers;

/// The median criterion measured for `group/id` in this run, in ns.
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let path = format!("target/criterion/{group}/{id}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// Prints each measurement's median and its ratio to the baseline's.
pub fn print_ratios(group: &str, baseline: &str, others: &[&str]) {
    let Some(base) = median_ns(group, baseline) else {
        println!("{group}: no median for {baseline} (was it filtered out?)");
        return;
    };
    println!("{group}: {baseline} median {base:.1} ns (baseline)");
    for id in others {
        if let Some(m) = median_ns(group, id) {
            println!(
                "{group}: {id} median {m:.1} ns, {:.3}x the baseline",
                m / base
            );
        }
    }
}
