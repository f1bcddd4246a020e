//! Bad input from the client, sent through `grpc-chaos proxy` to `grpc-chaos serve` with
//! a bare HTTP/2 client: each case ends that call with a defined status, and the proxy
//! answers the next call.

use crate::raw_client::{self, prefix};
use crate::served::Served;
use crate::support::*;

/// What the case is, extra headers, the raw body, and the status it must get.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bytes::Bytes, u32);

#[grpc_chaos::test(paused = false)]
async fn bad_requests_get_their_status_through_the_proxy_and_it_stays_up() {
    let server = Served::start(&[]).await;
    let proxy = Served::start_proxy(&server.addr, &[]).await;
    let big = "a".repeat(20 * 1024);
    let huge = "a".repeat(100 * 1024);
    let cases: Vec<Case> = vec![
        (
            "a length prefix longer than the body",
            vec![],
            prefix(0, 100, b"abc"),
            13,
        ),
        (
            "compressed without grpc-encoding",
            vec![],
            prefix(1, 3, b"abc"),
            13,
        ),
        (
            "a message that is not the method's type",
            vec![],
            raw_client::frame(&[0xff, 0xff]),
            13,
        ),
        (
            "20 KB of metadata",
            vec![("x-big", big.as_str())],
            raw_client::frame(&[]),
            8,
        ),
        (
            "100 KB of metadata",
            vec![("x-huge", huge.as_str())],
            raw_client::frame(&[]),
            8,
        ),
    ];
    for (what, headers, body, status) in cases {
        let response = raw_client::call_raw(&proxy.addr, SAY_HELLO, &headers, body, true).await;
        assert_eq!(response.grpc_status(), Some(status), "{what}: {response:?}");
        raw_client::still_answers(&proxy.addr).await;
    }

    // Half a message, then the socket goes.
    raw_client::abandon_mid_frame(&proxy.addr, SAY_HELLO).await;
    raw_client::still_answers(&proxy.addr).await;
}
