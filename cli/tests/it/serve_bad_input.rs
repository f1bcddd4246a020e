//! Bad input from the wire, sent to `grpc-chaos serve` with a bare HTTP/2 client: each
//! case gets a defined answer, and the server answers the next call.

use prost::Message as _;

use crate::raw_client::{self, prefix};
use crate::served::Served;
use crate::support::*;

/// What the case is, the path, extra headers, the raw body, and the status it must get.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, bytes::Bytes, u32);

#[grpc_chaos::test(paused = false)]
async fn each_bad_request_gets_its_status_and_the_server_stays_up() {
    let served = Served::start(&[]).await;
    let greeting = hello("Ada").encode_to_vec();
    let big = "a".repeat(20 * 1024);
    let huge = "a".repeat(100 * 1024);
    let cases: Vec<Case> = vec![
        (
            "length prefix longer than the body",
            SAY_HELLO,
            vec![],
            prefix(0, 100, b"abc"),
            13,
        ),
        (
            "compressed flag without grpc-encoding",
            SAY_HELLO,
            vec![],
            prefix(1, 3, b"abc"),
            13,
        ),
        (
            "compressed with an encoding it does not speak",
            SAY_HELLO,
            vec![("grpc-encoding", "gzip")],
            prefix(1, 3, b"abc"),
            12,
        ),
        (
            "an unknown compressed-flag value",
            SAY_HELLO,
            vec![],
            prefix(7, 3, b"abc"),
            13,
        ),
        (
            "a message that is not the method's type",
            SAY_HELLO,
            vec![],
            raw_client::frame(&[0xff, 0xff, 0xff]),
            13,
        ),
        (
            "a malformed grpc-timeout",
            SAY_HELLO,
            vec![("grpc-timeout", "1 S")],
            raw_client::frame(&greeting),
            13,
        ),
        (
            "20 KB of metadata",
            SAY_HELLO,
            vec![("x-big", big.as_str())],
            raw_client::frame(&greeting),
            8,
        ),
        (
            "100 KB of metadata",
            SAY_HELLO,
            vec![("x-huge", huge.as_str())],
            raw_client::frame(&greeting),
            8,
        ),
        (
            "an unknown method",
            "/no.Such/Method",
            vec![],
            raw_client::frame(&greeting),
            12,
        ),
    ];

    for (what, path, headers, body, status) in cases {
        let response = raw_client::call_raw(&served.addr, path, &headers, body, true).await;
        assert_eq!(response.grpc_status(), Some(status), "{what}: {response:?}");
        raw_client::still_answers(&served.addr).await;
    }
}

#[grpc_chaos::test(paused = false)]
async fn an_abrupt_close_mid_frame_leaves_the_server_up() {
    let served = Served::start(&[]).await;
    raw_client::abandon_mid_frame(&served.addr, SAY_HELLO).await;
    raw_client::still_answers(&served.addr).await;
}

#[grpc_chaos::test(paused = false)]
async fn an_uppercase_header_name_is_a_protocol_error_and_other_connections_go_on() {
    let served = Served::start(&[]).await;

    let answer = raw_client::send_raw_headers(&served.addr, SAY_HELLO, &[("X-Upper", "v")]).await;

    // HTTP/2 makes uppercase names malformed. hyper's h2 answers with a connection
    // error, GOAWAY(PROTOCOL_ERROR = 1), so the call never reaches the fake; every other
    // connection goes on.
    assert_eq!(answer, raw_client::FrameAnswer::GoAway(1));
    raw_client::still_answers(&served.addr).await;
}
