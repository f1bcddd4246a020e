//! `#[grpc_chaos::test]`: a wait that cannot end fails at once under paused time, and a
//! test that stops the clock fails alone, by name, with the other tests still reported.

use std::process::Command;
use std::time::Duration;

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use tokio::time::Instant;

use crate::runner_fixture::FIXTURE_VAR;
use crate::support::*;

#[grpc_chaos::test]
async fn a_wait_for_a_call_that_never_comes_fails_at_once_naming_the_test_and_the_calls() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("hi")))
        .named("SayHello")
        .mount(&server);
    greeter(&server).say_hello(hello("Ada")).await.unwrap();
    let (t0, real) = (Instant::now(), std::time::Instant::now());

    let timeout = server
        .wait_for_calls_within(2, Duration::from_secs(45))
        .await
        .unwrap_err();

    // The clock jumped straight to the limit: no real waiting.
    assert_eq!(t0.elapsed(), Duration::from_secs(45));
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "{:?}",
        real.elapsed()
    );
    assert_eq!(timeout.calls().len(), 1);
    assert_eq!(
        timeout.to_string(),
        "grpc-chaos: waited 45s for 2 calls; 1 received (in test \
         test_runner::a_wait_for_a_call_that_never_comes_fails_at_once_naming_the_test_and_the_calls)\
         \n  #0 /pb.Greeter/SayHello at +0.000s, 1 request message(s), stub \"SayHello\", Ok at +0.000s"
    );
}

#[grpc_chaos::test]
#[should_panic(
    expected = "grpc-chaos: waited 60s for 1 ended call; 1 received (in test \
                test_runner::wait_for_ended_calls_panics_after_the_default_limit_with_the_calls)\
                \n  #0 /pb.Greeter/SayHello at +0.000s, 1 request message(s), stub \"SayHello\", in progress"
)]
async fn wait_for_ended_calls_panics_after_the_default_limit_with_the_calls() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .named("SayHello")
        .mount(&server);
    let client = greeter(&server);
    let _call = tokio::spawn(async move { client.clone().say_hello(hello("Ada")).await });
    server.wait_for_ended_calls(1).await;
}

#[grpc_chaos::test(virtual_limit = "90s")]
#[should_panic(
    expected = "test_runner::the_virtual_limit_fails_a_body_that_waits_forever: still running \
                after 90s of virtual time"
)]
async fn the_virtual_limit_fails_a_body_that_waits_forever() {
    std::future::pending::<()>().await;
}

#[grpc_chaos::test(paused = false, wall_limit = "120s")]
async fn a_stuck_test_fails_alone_and_the_run_reports_every_test() {
    // The fixture tests run in a child of this very test binary, with libtest's capture on
    // as under `cargo test`.
    let binary = std::env::current_exe().unwrap();
    let started = std::time::Instant::now();
    let output = tokio::process::Command::from(Command::new(binary))
        .args(["runner_fixture::", "--ignored", "--test-threads=4"])
        .env(FIXTURE_VAR, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!("{stdout}\n--- stderr ---\n{stderr}");

    // libtest ended normally, with a failed run, not a killed process.
    assert_eq!(output.status.code(), Some(101), "{shown}");
    for line in [
        "test runner_fixture::passes ... ok",
        "test runner_fixture::spins_past_its_wall_limit ... FAILED",
        "test runner_fixture::blocks_on_a_std_mutex ... FAILED",
        "test runner_fixture::waits_for_a_call_that_never_comes ... FAILED",
        "test runner_fixture::fails_an_assertion_of_its_own ... FAILED",
        "test result: FAILED. 1 passed; 4 failed;",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{shown}");
    }
    for message in [
        "runner_fixture::spins_past_its_wall_limit: still running after 1s of wall-clock \
         time, so the watchdog failed it",
        "runner_fixture::blocks_on_a_std_mutex: still running after 1s of wall-clock time",
        "grpc-chaos: waited 60s for 2 calls; 1 received (in test \
         runner_fixture::waits_for_a_call_that_never_comes)",
        "the details of an ordinary failure",
    ] {
        assert!(stdout.contains(message), "missing {message:?} in:\n{shown}");
    }
    // The stuck tests did not hold the run for the 20 s they would have taken.
    assert!(took < Duration::from_secs(15), "took {took:?}:\n{shown}");
}
