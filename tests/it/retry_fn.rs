//! `call_with_retry` against the fake: exact schedules, one deadline budget, pushback,
//! and property tests over random policies and failure sequences.

use std::time::Duration;

use grpc_chaos::deadline::Deadline;
use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloReply;
use grpc_chaos::retry::{call_with_retry, RetryPolicy};
use proptest::prelude::*;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::*;

async fn say_hello_with_retry(
    policy: &RetryPolicy,
    deadline: Option<Deadline>,
    client: &GreeterClient<Channel>,
) -> Result<HelloReply, Status> {
    call_with_retry(policy, deadline, |attempt| {
        let mut client = client.clone();
        async move {
            let mut request = tonic::Request::new(hello("Ada"));
            attempt.apply(&mut request);
            client
                .say_hello(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await
}

fn policy(max: u32, initial_ms: u64, max_ms: u64, mult: f64) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max)
        .initial_backoff(ms(initial_ms))
        .max_backoff(ms(max_ms))
        .backoff_multiplier(mult)
        .retryable_status_codes([Code::Unavailable])
        .build()
        .unwrap()
}

#[grpc_chaos::test]
async fn the_schedule_is_exact_without_jitter_and_attempt_3_succeeds() {
    let server = FakeServer::in_memory();
    let unavailable = || Reply::error(Code::Unavailable, "down");
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            unavailable(),
            unavailable(),
            Reply::message(&reply("third time")),
        ]))
        .expect(3)
        .mount(&server);
    let client = greeter(&server);
    let t0 = Instant::now();

    let answer =
        say_hello_with_retry(&policy(5, 100, 1000, 2.0).without_jitter(), None, &client).await;

    assert_eq!(answer.unwrap().message, "third time");
    let calls = server.received_calls();
    assert_eq!(arrivals(&calls, t0), [ms(0), ms(100), ms(300)]);
    assert_eq!(
        previous_attempts(&calls),
        [None, Some("1".into()), Some("2".into())]
    );
}

#[grpc_chaos::test]
async fn a_budget_spent_between_attempts_ends_at_the_deadline_with_no_attempt_after() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::error(Code::Unavailable, "down"))
        .mount(&server);
    let client = greeter(&server);
    let t0 = Instant::now();

    let status = say_hello_with_retry(
        &policy(5, 100, 1000, 2.0).without_jitter(),
        Some(Deadline::after(ms(250))),
        &client,
    )
    .await
    .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        status.message().contains("Unavailable"),
        "{}",
        status.message()
    );
    assert_eq!(t0.elapsed(), ms(250));
    let calls = server.received_calls();
    assert_eq!(arrivals(&calls, t0), [ms(0), ms(100)]);
    // Each attempt carried what was left of the one budget.
    assert_eq!(timeouts(&calls), [Some(Ok(ms(250))), Some(Ok(ms(150)))]);
}

#[grpc_chaos::test]
async fn non_retryable_codes_are_never_retried() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::error(Code::InvalidArgument, "bad"))
        .expect(1)
        .mount(&server);

    let status = say_hello_with_retry(&policy(5, 10, 100, 2.0), None, &greeter(&server))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
}

#[grpc_chaos::test]
async fn pushback_is_honoured_to_the_millisecond_and_a_negative_one_stops_retries() {
    let server = FakeServer::in_memory();
    let pushed =
        |v: &str| Reply::error(Code::Unavailable, "busy").trailer("grpc-retry-pushback-ms", v);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            pushed("250"),
            pushed("0"),
            Reply::message(&reply("ok")),
        ]))
        .up_to_n_times(3)
        .mount(&server);
    let client = greeter(&server);
    let t0 = Instant::now();

    let answer =
        say_hello_with_retry(&policy(5, 100, 1000, 2.0).without_jitter(), None, &client).await;

    assert_eq!(answer.unwrap().message, "ok");
    assert_eq!(
        arrivals(&server.received_calls(), t0),
        [ms(0), ms(250), ms(250)]
    );

    for garbage in ["-1", "soon"] {
        server.reset();
        Stub::given(method(SAY_HELLO))
            .respond_with(pushed(garbage))
            .expect(1)
            .mount(&server);
        let status = say_hello_with_retry(&policy(5, 1, 10, 2.0), None, &client)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{garbage}");
        server.verify();
    }
}

fn run_random(
    max: u32,
    initial_ms: u64,
    max_ms: u64,
    mult: f64,
    budget_ms: u64,
    failures: Vec<bool>,
    seed: u64,
) -> Result<Vec<Duration>, TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let server = FakeServer::in_memory();
        let replies = failures.iter().map(|fail| {
            if *fail {
                Reply::error(Code::Unavailable, "down")
            } else {
                Reply::message(&reply("ok"))
            }
        });
        Stub::given(method(SAY_HELLO))
            .respond_with(Reply::sequence(replies))
            .mount(&server);
        let p = policy(max, initial_ms, max_ms, mult).seed(seed);
        let t0 = Instant::now();
        let deadline = Deadline::after(ms(budget_ms));
        let _ = say_hello_with_retry(&p, Some(deadline), &greeter(&server)).await;

        let calls = server.received_calls();
        prop_assert!(calls.len() as u32 <= max.min(5), "{} attempts", calls.len());
        prop_assert!(t0.elapsed() <= ms(budget_ms));
        let times = arrivals(&calls, t0);
        for (n, gap) in times.windows(2).map(|w| w[1] - w[0]).enumerate() {
            // tokio's timers tick in whole milliseconds: a 0.5 ms backoff sleeps 1 ms.
            let bound = p.backoff_bound(n as u32 + 1);
            let bound = ms(bound.as_nanos().div_ceil(1_000_000) as u64);
            prop_assert!(gap <= bound, "backoff {} is {gap:?}, over {bound:?}", n + 1);
        }
        // Only failures are retried: every attempt but the last failed.
        for (i, _) in calls.iter().enumerate().take(calls.len().saturating_sub(1)) {
            prop_assert!(failures
                .get(i)
                .copied()
                .unwrap_or(*failures.last().unwrap()));
        }
        Ok(times)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_policies_keep_a6s_bounds_and_replay_from_their_seed(
        max in 2u32..9,
        initial_ms in 1u64..500,
        max_ms in 1u64..2000,
        mult in 0.5f64..4.0,
        budget_ms in 1u64..5000,
        failures in prop::collection::vec(any::<bool>(), 1..8),
        seed in any::<u64>(),
    ) {
        let first = run_random(max, initial_ms, max_ms, mult, budget_ms, failures.clone(), seed)?;
        let again = run_random(max, initial_ms, max_ms, mult, budget_ms, failures, seed)?;
        prop_assert_eq!(first, again);
    }
}

/// Attempts a call makes when attempt `n` meets `codes[n - 1]` (the last code repeats).
fn attempts_against(policy: &RetryPolicy, codes: &[Code]) -> (usize, Code) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let attempts = std::cell::Cell::new(0);
    let end = rt.block_on(call_with_retry(policy, None, |attempt| {
        attempts.set(attempt.number as usize);
        let code = codes[(attempt.number as usize - 1).min(codes.len() - 1)];
        async move {
            match code {
                Code::Ok => Ok(()),
                code => Err(Status::new(code, "scripted")),
            }
        }
    }));
    (attempts.get(), end.err().map_or(Code::Ok, |s| s.code()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_non_retryable_code_ends_the_call_at_once(
        max in 2u32..9,
        codes in prop::collection::vec(
            prop_oneof![Just(Code::Unavailable), Just(Code::InvalidArgument), Just(Code::Internal), Just(Code::Ok)],
            1..8,
        ),
    ) {
        let (attempts, end) = attempts_against(&policy(max, 1, 10, 2.0), &codes);

        // The call stops at the first code that is not UNAVAILABLE, or at the cap.
        let first_final = codes.iter().position(|c| *c != Code::Unavailable);
        let cap = max.min(5) as usize;
        let expected = first_final.map_or(cap, |i| (i + 1).min(cap));
        prop_assert_eq!(attempts, expected, "codes {:?}", codes);
        let last = codes[(attempts - 1).min(codes.len() - 1)];
        prop_assert_eq!(end, last);
    }
}

#[test]
fn invalid_policies_are_rejected_as_a6_says() {
    use grpc_chaos::retry::PolicyError;
    let codes = [Code::Unavailable];
    assert_eq!(
        RetryPolicy::builder()
            .max_attempts(1)
            .initial_backoff(ms(1))
            .max_backoff(ms(1))
            .backoff_multiplier(2.0)
            .retryable_status_codes(codes)
            .build()
            .unwrap_err(),
        PolicyError::MaxAttempts(1)
    );
    assert_eq!(
        RetryPolicy::builder()
            .max_attempts(2)
            .initial_backoff(ms(0))
            .max_backoff(ms(1))
            .backoff_multiplier(2.0)
            .retryable_status_codes(codes)
            .build()
            .unwrap_err(),
        PolicyError::InitialBackoff
    );
    assert_eq!(
        RetryPolicy::builder()
            .max_attempts(2)
            .initial_backoff(ms(1))
            .max_backoff(ms(0))
            .backoff_multiplier(2.0)
            .retryable_status_codes(codes)
            .build()
            .unwrap_err(),
        PolicyError::MaxBackoff
    );
    assert!(matches!(
        RetryPolicy::builder()
            .max_attempts(2)
            .initial_backoff(ms(1))
            .max_backoff(ms(1))
            .backoff_multiplier(0.0)
            .retryable_status_codes(codes)
            .build()
            .unwrap_err(),
        PolicyError::Multiplier(_)
    ));
    assert!(matches!(
        RetryPolicy::builder()
            .max_attempts(2)
            .initial_backoff(ms(1))
            .max_backoff(ms(1))
            .backoff_multiplier(f64::NAN)
            .retryable_status_codes(codes)
            .build()
            .unwrap_err(),
        PolicyError::Multiplier(_)
    ));
    assert_eq!(
        RetryPolicy::builder()
            .max_attempts(2)
            .initial_backoff(ms(1))
            .max_backoff(ms(1))
            .backoff_multiplier(2.0)
            .retryable_status_codes([])
            .build()
            .unwrap_err(),
        PolicyError::NoRetryableCodes
    );
}

#[grpc_chaos::test]
async fn throttling_stops_retries_after_failures_and_recovers_after_successes() {
    let server = down_or_up_fake();
    let bucket = std::sync::Arc::new(grpc_chaos::retry::RetryThrottle::new(4, 1.0).unwrap());
    let p = policy(5, 1, 10, 2.0).throttled_by(bucket.clone());
    let client = greeter(&server);
    let call = |case: &'static str| {
        let (p, client) = (p.clone(), client.clone());
        async move {
            let outcome = call_with_retry(&p, None, |attempt| {
                let mut client = client.clone();
                async move {
                    let mut r = hello_in_case(case);
                    attempt.apply(&mut r);
                    client.say_hello(r).await
                }
            })
            .await;
            outcome.map(|_| ()).map_err(|s| s.code())
        }
    };

    // 4 tokens: failures take 4 -> 3 (retry) -> 2 (at half: stop). Two attempts went out.
    assert_eq!(call("down").await, Err(Code::Unavailable));
    assert_eq!(server.received_calls().len(), 2);
    assert_eq!(bucket.tokens(), 2.0);
    // Throttled: a further failure is not retried at all.
    assert_eq!(call("down").await, Err(Code::Unavailable));
    assert_eq!(server.received_calls().len(), 3);
    // Successes refill the bucket; retries come back.
    for _ in 0..3 {
        call("up").await.unwrap();
    }
    assert_eq!(bucket.tokens(), 4.0);
    server.clear_received_calls();
    assert_eq!(call("down").await, Err(Code::Unavailable));
    assert_eq!(
        server.received_calls().len(),
        2,
        "retried again once tokens are above half"
    );
}

#[grpc_chaos::test]
async fn each_call_draws_its_own_jitter_and_the_seed_replays_every_call() {
    // Each call fails once and then succeeds: its length is its one backoff.
    async fn backoffs_of_three_calls(policy: &RetryPolicy) -> Vec<Duration> {
        let mut out = Vec::new();
        for _ in 0..3 {
            let t0 = Instant::now();
            call_with_retry(policy, None, |attempt| async move {
                match attempt.number {
                    1 => Err(Status::unavailable("once")),
                    _ => Ok(()),
                }
            })
            .await
            .unwrap();
            out.push(t0.elapsed());
        }
        out
    }
    let seeded = || policy(2, 10_000, 10_000, 1.0).seed(11);

    let first = backoffs_of_three_calls(&seeded()).await;
    let replay = backoffs_of_three_calls(&seeded()).await;

    // Calls spread out (A6 jitters to keep clients apart), and a seed replays them all.
    assert!(first[0] != first[1] && first[1] != first[2], "{first:?}");
    assert_eq!(first, replay);
    for backoff in &first {
        assert!(*backoff <= ms(10_000));
    }
}
