//! `grpc-chaos proxy` as a child process, in front of `grpc-chaos serve`: fault rules
//! from a scenario file, pass-through of the interop service with its metadata echo,
//! SIGTERM, and bad input refused with exit code 2.

use std::time::{Duration, Instant};

use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::grpc::testing::test_service_client::TestServiceClient;
use grpc_chaos::pb::grpc::testing::{Empty, SimpleRequest};
use tonic::{Code, Request};

use crate::served::Served;
use crate::support::*;

/// Two named rules on SayHello, each picked by `x-test`.
pub(crate) const FAULTS: &str = r#"
[[fault]]
name = "slow hello"
method = "/pb.Greeter/SayHello"
match = { metadata = { "x-test" = "slow" } }
delay_ms = 300

[[fault]]
name = "flaky"
service = "pb.Greeter"
match = { metadata = { "x-test" = "fail" } }
status = { code = "UNAVAILABLE", message = "injected by the proxy" }
"#;

/// Writes a file under a fresh temporary folder: the folder, and the file's path.
pub(crate) fn write(name: &str, text: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("grpc-chaos-proxy-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    let path = file.display().to_string();
    (dir, path)
}

fn tagged(name: &str, tag: &str) -> Request<grpc_chaos::pb::HelloRequest> {
    let mut request = Request::new(hello(name));
    request
        .metadata_mut()
        .insert("x-test", tag.parse().unwrap());
    request
}

#[grpc_chaos::test(paused = false)]
async fn the_proxy_applies_its_rules_and_passes_the_rest_through() {
    let server = Served::start(&[]).await;
    let (dir, faults) = write("faults.toml", FAULTS);
    let mut proxy = Served::start_proxy(&server.addr, &["--scenario", &faults]).await;
    std::fs::remove_dir_all(dir).unwrap();
    let mut greeter = GreeterClient::connect(proxy.uri()).await.unwrap();

    let start = Instant::now();
    let reply = greeter.say_hello(tagged("Ada", "slow")).await.unwrap();
    assert_eq!(reply.into_inner().message, "Hello, Ada!");
    assert!(start.elapsed() >= Duration::from_millis(300));

    let status = greeter.say_hello(tagged("Ada", "fail")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "injected by the proxy");

    let start = Instant::now();
    greeter.say_hello(tagged("Ada", "other")).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(300));

    // The interop service through the proxy: its metadata echo comes back intact.
    let mut interop = TestServiceClient::connect(proxy.uri()).await.unwrap();
    interop.empty_call(Empty {}).await.unwrap();
    let mut request = Request::new(SimpleRequest {
        response_size: 314,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "x-grpc-test-echo-initial",
        "test_initial_metadata_value".parse().unwrap(),
    );
    request.metadata_mut().insert_bin(
        "x-grpc-test-echo-trailing-bin",
        tonic::metadata::MetadataValue::from_bytes(&[0xab, 0xab, 0xab]),
    );
    let response = interop.unary_call(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-grpc-test-echo-initial").unwrap(),
        "test_initial_metadata_value"
    );
    assert_eq!(
        response
            .metadata()
            .get_bin("x-grpc-test-echo-trailing-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [0xab, 0xab, 0xab]
    );
    assert_eq!(response.into_inner().payload.unwrap().body.len(), 314);

    proxy.signal("TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)).await, Some(0));
}

#[grpc_chaos::test(paused = false)]
async fn proxy_record_then_serve_replays_the_interop_calls() {
    let server = Served::start(&[]).await;
    let (dir, recording) = write("recorded.toml", "");
    let mut proxy = Served::start_proxy(
        &server.addr,
        &[
            "--record",
            &recording,
            "--redact",
            "x-grpc-test-echo-initial",
        ],
    )
    .await;
    let outcomes = |uri: String| async move {
        let mut interop = TestServiceClient::connect(uri).await.unwrap();
        let mut seen = Vec::new();
        interop.empty_call(Empty {}).await.unwrap();
        let response = interop
            .unary_call(SimpleRequest {
                response_size: 271,
                ..Default::default()
            })
            .await
            .unwrap();
        seen.push(
            response
                .into_inner()
                .payload
                .unwrap()
                .body
                .len()
                .to_string(),
        );
        let status = interop
            .unary_call(SimpleRequest {
                response_status: Some(grpc_chaos::pb::grpc::testing::EchoStatus {
                    code: 2,
                    message: "test status message".into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        seen.push(format!("{:?} {}", status.code(), status.message()));
        seen
    };
    let live = outcomes(proxy.uri()).await;
    proxy.signal("TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)).await, Some(0));

    let text = std::fs::read_to_string(&recording).unwrap();
    assert_eq!(
        grpc_chaos::scenario::Scenario::parse("r.toml", &text, 0)
            .unwrap()
            .len(),
        3,
        "{text}"
    );
    let replay = Served::start(&["--scenario", &recording]).await;
    let replayed = outcomes(replay.uri()).await;
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(live, replayed);
    assert_eq!(live, ["271", "Unknown test status message"]);
    // The recorded stubs answered, not the built-in TestService.
    let mut admin =
        grpc_chaos_cli::admin::pb::admin_client::AdminClient::new(replay.channel().await);
    let calls = admin
        .list_calls(grpc_chaos_cli::admin::pb::ListCallsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 3);
    assert!(
        calls.iter().all(|c| !c.stub.starts_with("built-in")),
        "{calls:?}"
    );
}

#[grpc_chaos::test(paused = false)]
async fn an_unreachable_upstream_is_unavailable() {
    // Bind a port, then free it, so that nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = Served::start_proxy(&free.to_string(), &[]).await;
    let status = GreeterClient::connect(proxy.uri())
        .await
        .unwrap()
        .say_hello(hello("Ada"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[test]
fn a_bad_fault_file_or_upstream_exits_2() {
    let (dir, bad) = write(
        "bad.toml",
        "[[fault]]\nmethod = \"/pb.Greeter/SayHello\"\ngrpc_timeout = \"shrink\"\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .args([
            "proxy",
            "--addr",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
            "--scenario",
            &bad,
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{bad}:3:16: expected \"strip\"")),
        "{stderr}"
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .args(["proxy", "--addr", "127.0.0.1:0", "--upstream", "no port"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--upstream \"no port\""));
}

#[grpc_chaos::test(paused = false)]
async fn with_the_types_loaded_a_rule_matches_the_first_message_as_a_table() {
    use crate::serve_any_proto::catalog::catalog_client::CatalogClient;
    use crate::serve_any_proto::catalog::{get_product_request::Filter, GetProductRequest};
    use crate::serve_any_proto::{anvil, descriptor_set, path};
    use grpc_chaos_cli::admin::pb::{admin_client::AdminClient, ListCallsRequest};

    let server = Served::start(&[
        "--descriptor-set",
        &descriptor_set(),
        "--scenario",
        &path("scenarios/catalog.json"),
    ])
    .await;
    let (dir, faults) = write(
        "catalog-faults.toml",
        r#"
[[fault]]
name = "no eu"
method = "/catalog.v1.Catalog/GetProduct"
match = { message_contains = { filter = { region = "eu" } } }
status = { code = "NOT_FOUND", message = "not in the eu" }
"#,
    );
    let proxy = Served::start_proxy(
        &server.addr,
        &["--descriptor-set", &descriptor_set(), "--scenario", &faults],
    )
    .await;
    std::fs::remove_dir_all(dir).unwrap();
    let mut catalog = CatalogClient::connect(proxy.uri()).await.unwrap();
    let a1 = GetProductRequest {
        sku: "A-1".into(),
        filter: None,
    };
    assert_eq!(catalog.get_product(a1).await.unwrap().into_inner(), anvil());
    let eu = GetProductRequest {
        sku: "anything".into(),
        filter: Some(Filter {
            region: "eu".into(),
            include_hidden: true,
        }),
    };
    let status = catalog.get_product(eu).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "not in the eu")
    );

    // The journal shows both requests in the JSON mapping of the loaded types.
    let calls = AdminClient::new(proxy.channel().await)
        .list_calls(ListCallsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert!(
        calls[0].requests[0].json.contains("\"sku\":\"A-1\""),
        "{:?}",
        calls[0].requests
    );
    assert!(
        calls[1].requests[0].json.contains("\"region\":\"eu\""),
        "{:?}",
        calls[1].requests
    );
    assert_eq!(calls[1].proxied.as_ref().unwrap().rule, "no eu");
}

#[grpc_chaos::test(paused = false)]
async fn with_fault_headers_the_client_chooses_its_fault_and_the_upstream_never_sees_it() {
    let server = Served::start(&[]).await;
    let proxy = Served::start_proxy(&server.addr, &["--fault-headers"]).await;
    let mut greeter = GreeterClient::connect(proxy.uri()).await.unwrap();
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-chaos-status", "5".parse().unwrap());
    let status = greeter.say_hello(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // The upstream `serve` would have answered the header itself: the proxy stripped it.
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-chaos-header", "x-from=proxy".parse().unwrap());
    let response = greeter.say_hello(request).await.unwrap();
    assert_eq!(response.metadata().get("x-from").unwrap(), "proxy");
    let calls = grpc_chaos_cli::admin::pb::admin_client::AdminClient::new(server.channel().await)
        .list_calls(grpc_chaos_cli::admin::pb::ListCallsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 1, "the NOT_FOUND was the proxy's own");
    assert!(
        calls[0]
            .metadata
            .iter()
            .all(|m| !m.key.starts_with("x-chaos-")),
        "{:?}",
        calls[0].metadata
    );
}
