//! The journal of `grpc-chaos proxy`, through its admin API and `grpc-chaos calls`:
//! each call with the fault it got, the upstream's status beside the client's, and the
//! upstream's time beside the time injected; sessions and reset as `serve` has them.

use std::time::Duration;

use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos_cli::admin::pb::admin_client::AdminClient;
use grpc_chaos_cli::admin::pb::{ListCallsRequest, MountRequest, ResetRequest};
use tonic::{Code, Request};

use crate::proxy_cli::{write, FAULTS};
use crate::served::{cli, Served};
use crate::support::*;

fn seconds(d: Option<prost_types::Duration>) -> f64 {
    d.map_or(0.0, |d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

fn tagged(tag: &str, session: Option<&str>) -> Request<grpc_chaos::pb::HelloRequest> {
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-test", tag.parse().unwrap());
    if let Some(session) = session {
        request
            .metadata_mut()
            .insert("x-chaos-session", session.parse().unwrap());
    }
    request
}

fn listing(session: Option<&str>) -> Request<ListCallsRequest> {
    let mut request = Request::new(ListCallsRequest::default());
    if let Some(session) = session {
        request
            .metadata_mut()
            .insert("x-chaos-session", session.parse().unwrap());
    }
    request
}

#[grpc_chaos::test(paused = false)]
async fn the_proxy_journal_says_what_was_injected_and_what_the_upstream_took() {
    let server = Served::start(&[]).await;
    let (dir, faults) = write("journal-faults.toml", FAULTS);
    let mut proxy = Served::start_proxy(&server.addr, &["--scenario", &faults]).await;
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(proxy.next_line().await.trim(), "admin API on (loopback)");

    let mut greeter = GreeterClient::connect(proxy.uri()).await.unwrap();
    greeter.say_hello(tagged("slow", None)).await.unwrap();
    let status = greeter.say_hello(tagged("fail", None)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    greeter
        .say_hello(tagged("other", Some("s1")))
        .await
        .unwrap();

    let mut admin = AdminClient::new(proxy.channel().await);
    let calls = admin
        .list_calls(listing(None))
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 3, "{calls:?}");
    let hops: Vec<_> = calls.iter().map(|c| c.proxied.clone().unwrap()).collect();

    // Slow: 300 ms injected, the upstream's own time small beside it.
    assert_eq!(hops[0].rule, "slow hello");
    assert_eq!(hops[0].fault, "delay 300ms");
    assert!(seconds(hops[0].injected_time) >= 0.3, "{:?}", hops[0]);
    assert!(seconds(hops[0].upstream_time) < 0.3, "{:?}", hops[0]);
    assert!(hops[0].upstream_answered && hops[0].upstream_code == 0);
    assert!(
        calls[0].requests[0].json.contains("Ada"),
        "{:?}",
        calls[0].requests
    );
    assert!(
        calls[0].responses[0].json.contains("Hello, Ada!"),
        "{:?}",
        calls[0].responses
    );

    // Flaky: answered by the proxy, never forwarded.
    assert_eq!(hops[1].rule, "flaky");
    assert!(hops[1].forwarded_at.is_none() && !hops[1].upstream_answered);
    let ending = calls[1].ending.clone().unwrap();
    assert_eq!(
        (ending.code, ending.message.as_str()),
        (14, "injected by the proxy")
    );

    // Untouched, in session s1.
    assert_eq!(hops[2].rule, "");
    assert_eq!(calls[2].session, "s1");
    let mine = admin
        .list_calls(listing(Some("s1")))
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(mine.len(), 1);

    // `grpc-chaos calls` against the proxy shows the fault and the split of the time.
    let (code, out, err) = cli(&["calls".into(), "--addr".into(), proxy.addr.clone()]).await;
    assert_eq!(code, Some(0), "{err}");
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("upstream") && header.contains("injected") && header.contains("fault"),
        "{out}"
    );
    let slow = lines.next().unwrap();
    assert!(slow.contains("slow hello: delay 300ms"), "{out}");

    // A proxy has no stubs.
    let status = admin
        .mount(MountRequest {
            text: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status.message().contains("grpc-chaos serve"),
        "{}",
        status.message()
    );

    // Reset in session s1 forgets only its call; without a session, everything.
    let mut reset = Request::new(ResetRequest {});
    reset
        .metadata_mut()
        .insert("x-chaos-session", "s1".parse().unwrap());
    admin.reset(reset).await.unwrap();
    assert_eq!(
        admin
            .list_calls(listing(None))
            .await
            .unwrap()
            .into_inner()
            .calls
            .len(),
        2
    );
    admin.reset(ResetRequest {}).await.unwrap();
    assert!(admin
        .list_calls(listing(None))
        .await
        .unwrap()
        .into_inner()
        .calls
        .is_empty());

    proxy.signal("TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)).await, Some(0));
}
