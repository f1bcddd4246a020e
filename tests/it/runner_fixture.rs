//! Tests that fail on purpose, for `test_runner` to run in a child test process and read
//! its output. They are ignored, and do nothing unless `GRPC_CHAOS_RUNNER_FIXTURE` is
//! set, so `cargo test -- --include-ignored` still passes.

use std::time::Duration;

use grpc_chaos::fake::FakeServer;

use crate::support::*;

/// The variable `test_runner` sets for the child run.
pub const FIXTURE_VAR: &str = "GRPC_CHAOS_RUNNER_FIXTURE";

fn fixture_off() -> bool {
    std::env::var_os(FIXTURE_VAR).is_none()
}

/// Spins on the CPU for `real` seconds: the tokio clock cannot move meanwhile.
fn spin_for(real: Duration) {
    let until = std::time::Instant::now() + real;
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
}

#[grpc_chaos::test(wall_limit = "1s")]
#[ignore = "run by test_runner::a_stuck_test_fails_alone_and_the_run_reports_every_test"]
async fn spins_past_its_wall_limit() {
    if fixture_off() {
        return;
    }
    spin_for(Duration::from_secs(20));
}

#[grpc_chaos::test(wall_limit = "1s")]
#[ignore = "run by test_runner::a_stuck_test_fails_alone_and_the_run_reports_every_test"]
async fn blocks_on_a_std_mutex() {
    if fixture_off() {
        return;
    }
    let lock = std::sync::Arc::new(std::sync::Mutex::new(()));
    let (held, is_held) = std::sync::mpsc::channel();
    let holder = std::sync::Arc::clone(&lock);
    std::thread::spawn(move || {
        let _guard = holder.lock().unwrap();
        held.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(20));
    });
    is_held.recv().unwrap();
    let _blocked = lock.lock();
}

#[grpc_chaos::test]
#[ignore = "run by test_runner::a_stuck_test_fails_alone_and_the_run_reports_every_test"]
async fn waits_for_a_call_that_never_comes() {
    if fixture_off() {
        return;
    }
    let server = FakeServer::in_memory();
    let _ = greeter(&server).say_hello(hello("Ada")).await;
    server.wait_for_calls(2).await;
}

#[grpc_chaos::test]
#[ignore = "run by test_runner::a_stuck_test_fails_alone_and_the_run_reports_every_test"]
async fn fails_an_assertion_of_its_own() {
    if fixture_off() {
        return;
    }
    assert_eq!(1 + 1, 3, "the details of an ordinary failure");
}

#[grpc_chaos::test]
#[ignore = "run by test_runner::a_stuck_test_fails_alone_and_the_run_reports_every_test"]
async fn passes() {
    tokio::time::sleep(Duration::from_secs(30)).await;
}
