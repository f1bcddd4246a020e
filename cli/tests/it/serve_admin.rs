//! The admin API (`grpc_chaos.admin.v1.Admin`) of `grpc-chaos serve`, through its
//! generated tonic client and through the CLI's own admin commands: mount, list, watch,
//! verify, reset, sessions side by side, and the token rule.

use std::time::Duration;

use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use grpc_chaos_cli::admin::pb::admin_client::AdminClient;
use grpc_chaos_cli::admin::pb::{
    ending::Kind, ListCallsRequest, ListStubsRequest, MountRequest, ResetRequest, UnmountRequest,
    VerifyRequest, WatchCallsRequest,
};
use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::raw_client;
use crate::served::{cli, Served};

const SLOW_HELLO: &str = r#"
[[stub]]
name = "slow hello"
method = "/pb.Greeter/SayHello"
expect = 2
reply = { delay_ms = 200, message = { message = "from admin" } }
"#;

fn seconds(d: Option<prost_types::Duration>) -> f64 {
    let d = d.expect("an offset");
    d.seconds as f64 + f64::from(d.nanos) / 1e9
}

/// A request carrying a session header, when given one.
fn in_session<T>(body: T, session: Option<&str>) -> Request<T> {
    let mut request = Request::new(body);
    if let Some(session) = session {
        request
            .metadata_mut()
            .insert("x-chaos-session", session.parse().unwrap());
    }
    request
}

fn mount(text: &str) -> MountRequest {
    MountRequest {
        text: text.into(),
        format: String::new(),
        name: String::new(),
    }
}

async fn hello(
    channel: Channel,
    name: &str,
    session: Option<&str>,
) -> Result<String, tonic::Status> {
    let request = in_session(HelloRequest { name: name.into() }, session);
    let reply = GreeterClient::new(channel).say_hello(request).await?;
    Ok(reply.into_inner().message)
}

#[grpc_chaos::test(paused = false)]
async fn mount_call_list_watch_verify_and_reset() {
    let served = Served::start(&[]).await;
    let channel = served.channel().await;
    let mut admin = AdminClient::new(channel.clone());

    let ids = admin
        .mount(mount(SLOW_HELLO))
        .await
        .unwrap()
        .into_inner()
        .stub_ids;
    assert_eq!(ids.len(), 1);
    let stubs = admin
        .list_stubs(ListStubsRequest {})
        .await
        .unwrap()
        .into_inner()
        .stubs;
    assert_eq!(
        (stubs[0].id.as_str(), stubs[0].label.as_str()),
        (ids[0].as_str(), "slow hello")
    );

    // Unmet, with the library's own report.
    let verdict = admin.verify(VerifyRequest {}).await.unwrap().into_inner();
    assert!(!verdict.ok);
    assert_eq!(verdict.unmet.len(), 1, "{verdict:?}");
    assert!(
        verdict.report.contains("stub \"slow hello\""),
        "{}",
        verdict.report
    );
    assert!(
        verdict
            .report
            .contains("expected exactly 2 call(s), received 0"),
        "{}",
        verdict.report
    );

    let mut watch = admin
        .watch_calls(WatchCallsRequest {
            method: "/pb.Greeter/SayHello".into(),
        })
        .await
        .unwrap()
        .into_inner();

    // One call the server's deadline ends (grpc-timeout 100 ms, from a bare HTTP/2
    // client: a tonic client would race the server with a timer of its own), one the
    // client abandons after 50 ms without a deadline, and one that runs its course.
    let late = raw_client::call(
        &served.addr,
        "/pb.Greeter/SayHello",
        &[("grpc-timeout", "100000u")],
        &HelloRequest {
            name: "late".into(),
        }
        .encode_to_vec(),
        true,
    )
    .await;
    assert_eq!(late.grpc_status(), Some(4), "{late:?}");
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        hello(channel.clone(), "gone", None),
    )
    .await;
    assert!(abandoned.is_err(), "the client gave up");
    assert_eq!(
        hello(channel.clone(), "Ada", None).await.unwrap(),
        "from admin"
    );

    let mut watched = Vec::new();
    while watched.len() < 3 {
        let call = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap();
        watched.push(call.unwrap().unwrap());
    }
    let kinds: Vec<i32> = watched
        .iter()
        .map(|c| c.ending.as_ref().unwrap().kind)
        .collect();
    assert!(kinds.contains(&(Kind::Cancelled as i32)), "{kinds:?}");

    let calls = admin
        .list_calls(ListCallsRequest {
            method: "/pb.Greeter/SayHello".into(),
            since: None,
            until: None,
        })
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 3);
    // The deadline: the raw header, its parse, and the server's DEADLINE_EXCEEDED at it.
    let late = &calls[0];
    assert_eq!(late.grpc_timeout, "100000u");
    assert_eq!(
        late.timeout,
        Some(prost_types::Duration {
            seconds: 0,
            nanos: 100_000_000
        })
    );
    let ending = late.ending.as_ref().unwrap();
    assert_eq!((ending.kind, ending.code), (Kind::Status as i32, 4));
    let took = seconds(ending.at) - seconds(late.arrived_at);
    assert!((0.099..1.0).contains(&took), "{took}");
    assert!((seconds(late.deadline) - seconds(late.arrived_at) - 0.1).abs() < 1e-6);
    // The cancel: when the server saw the client go, and what had crossed by then.
    let gone = &calls[1];
    let ending = gone.ending.as_ref().unwrap();
    assert_eq!(ending.kind, Kind::Cancelled as i32);
    assert_eq!((ending.requests_received, ending.responses_sent), (1, 0));
    let took = seconds(ending.at) - seconds(gone.arrived_at);
    assert!((0.045..1.0).contains(&took), "{took}");
    assert!(gone.grpc_timeout.is_empty() && gone.timeout.is_none());
    // Messages both ways, raw and as JSON.
    let ok = &calls[2];
    assert_eq!(ok.requests[0].json, r#"{"name":"Ada"}"#);
    assert_eq!(ok.responses[0].json, r#"{"message":"from admin"}"#);
    assert_eq!(ok.stub, "slow hello");
    assert!(ok.metadata.iter().any(|e| e.key == "user-agent"));

    // Filtered by time: only calls that arrived from the third one's arrival on.
    let since = admin
        .list_calls(ListCallsRequest {
            method: String::new(),
            since: ok.arrived_at,
            until: None,
        })
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(since.len(), 1);

    // The stub answered three calls (each of them counts): still not the two expected.
    let verdict = admin.verify(VerifyRequest {}).await.unwrap().into_inner();
    assert!(!verdict.ok, "{verdict:?}");
    assert!(verdict.report.contains("received 3"), "{}", verdict.report);
    let reset = admin.reset(ResetRequest {}).await.unwrap().into_inner();
    assert_eq!(reset.stubs_unmounted, 1);
    assert!(
        admin
            .verify(VerifyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ok
    );
    let calls = admin
        .list_calls(ListCallsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert!(calls.is_empty());
    // The built-in Greeter answers again.
    assert_eq!(hello(channel, "Ada", None).await.unwrap(), "Hello, Ada!");
}

#[grpc_chaos::test(paused = false)]
async fn a_met_expectation_verifies_and_unmount_removes_one_stub() {
    let served = Served::start(&[]).await;
    let channel = served.channel().await;
    let mut admin = AdminClient::new(channel.clone());
    let text = "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\nexpect = \"1..\"\nreply = { message = { message = \"once\" } }\n";
    let ids = admin
        .mount(mount(text))
        .await
        .unwrap()
        .into_inner()
        .stub_ids;
    assert_eq!(hello(channel.clone(), "x", None).await.unwrap(), "once");
    assert!(
        admin
            .verify(VerifyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ok
    );
    let unmounted = admin
        .unmount(UnmountRequest { stub_ids: ids })
        .await
        .unwrap()
        .into_inner()
        .unmounted;
    assert_eq!(unmounted, 1);
    assert_eq!(hello(channel, "x", None).await.unwrap(), "Hello, x!");
}

#[grpc_chaos::test(paused = false)]
async fn malformed_text_is_invalid_argument_with_line_and_column() {
    let served = Served::start(&[]).await;
    let mut admin = AdminClient::new(served.channel().await);
    let status = admin
        .mount(mount(
            "[[stub]]\nmethod = \"/pb.Greeter/SayHelo\"\n[stub.reply]\n",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("admin.toml:2:10: "),
        "{status:?}"
    );
    let json = MountRequest {
        text: "{\"stub\": [{\"nope\": 1}]}".into(),
        format: "json".into(),
        name: "mine.json".into(),
    };
    let status = admin.mount(json).await.unwrap_err();
    assert!(
        status.message().starts_with("mine.json:1:12: "),
        "{status:?}"
    );
}

#[grpc_chaos::test(paused = false)]
async fn two_sessions_share_one_server_without_seeing_each_other() {
    let served = Served::start(&[]).await;
    let channel = served.channel().await;
    let mut admin = AdminClient::new(channel.clone());
    for session in ["a", "b"] {
        let text = format!(
            "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\nreply = {{ message = {{ message = \"session {session}\" }} }}\n"
        );
        admin
            .mount(in_session(mount(&text), Some(session)))
            .await
            .unwrap();
    }
    assert_eq!(
        hello(channel.clone(), "x", Some("a")).await.unwrap(),
        "session a"
    );
    assert_eq!(
        hello(channel.clone(), "x", Some("b")).await.unwrap(),
        "session b"
    );
    assert_eq!(
        hello(channel.clone(), "x", Some("b")).await.unwrap(),
        "session b"
    );
    // No session: neither session's stubs; the built-in Greeter answers.
    assert_eq!(
        hello(channel.clone(), "x", None).await.unwrap(),
        "Hello, x!"
    );

    let calls_of = |session| ListCallsRequest::default().pipe_session(session);
    let a = admin
        .list_calls(calls_of("a"))
        .await
        .unwrap()
        .into_inner()
        .calls;
    let b = admin
        .list_calls(calls_of("b"))
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!((a.len(), b.len()), (1, 2));
    assert!(b.iter().all(|c| c.session == "b"));
    let stubs = admin
        .list_stubs(in_session(ListStubsRequest {}, Some("a")))
        .await
        .unwrap()
        .into_inner()
        .stubs;
    assert_eq!(stubs.len(), 1);
    assert_eq!(stubs[0].session, "a");

    // Resetting a leaves b alone.
    let reset = admin
        .reset(in_session(ResetRequest {}, Some("a")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.stubs_unmounted, 1);
    assert_eq!(
        hello(channel.clone(), "x", Some("a")).await.unwrap(),
        "Hello, x!"
    );
    assert_eq!(hello(channel, "x", Some("b")).await.unwrap(), "session b");
    let b = admin
        .list_calls(calls_of("b"))
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(b.len(), 3);
    let a = admin
        .list_calls(calls_of("a"))
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(a.len(), 1, "only the call made after the reset");
}

/// Puts a list request in a session.
trait PipeSession: Sized {
    fn pipe_session(self, session: &str) -> Request<Self>;
}

impl PipeSession for ListCallsRequest {
    fn pipe_session(self, session: &str) -> Request<Self> {
        in_session(self, Some(session))
    }
}

#[grpc_chaos::test(paused = false)]
async fn a_token_is_required_when_set_and_beyond_loopback_the_api_is_off_without_one() {
    let served = Served::start(&["--admin-token", "s3cret"]).await;
    let mut admin = AdminClient::new(served.channel().await);
    let refused = admin.list_stubs(ListStubsRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut wrong = Request::new(ListStubsRequest {});
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer s3crex".parse().unwrap());
    assert_eq!(
        admin.list_stubs(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut right = Request::new(ListStubsRequest {});
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    admin.list_stubs(right).await.unwrap();

    let mut open = Served::start_on("0.0.0.0:0", &[]).await;
    assert_eq!(
        open.next_line().await,
        "admin API off: listening beyond loopback needs --admin-token TOKEN"
    );
    let port = open.addr.rsplit(':').next().unwrap().to_string();
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let off = AdminClient::new(channel.clone())
        .list_stubs(ListStubsRequest {})
        .await
        .unwrap_err();
    assert_eq!(off.code(), Code::Unimplemented, "{off:?}");
    // Fault headers and the rest go on as before.
    assert_eq!(hello(channel, "x", None).await.unwrap(), "Hello, x!");
}

#[grpc_chaos::test(paused = false)]
async fn the_cli_mounts_lists_verifies_and_resets_a_running_server() {
    let served = Served::start(&[]).await;
    let dir = std::env::temp_dir().join(format!("grpc-chaos-admin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("slow.toml");
    std::fs::write(&file, SLOW_HELLO).unwrap();
    let file = file.display().to_string();
    let addr = served.addr.clone();
    let args = |words: &[&str]| -> Vec<String> {
        words
            .iter()
            .map(|w| w.to_string())
            .chain(["--addr".to_string(), addr.clone()])
            .collect()
    };

    let (code, out, err) = cli(&args(&["mount", &file])).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("mounted stub-"), "{out}");

    let mut request = Request::new(HelloRequest { name: "Ada".into() });
    request.set_timeout(Duration::from_secs(3));
    GreeterClient::new(served.channel().await)
        .say_hello(request)
        .await
        .unwrap();

    let (code, out, err) = cli(&args(&["calls"])).await;
    assert_eq!(code, Some(0), "{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains("/pb.Greeter/SayHello") && row.contains("3000000u") && row.contains("Ok"),
        "{out}"
    );
    let (code, out, _) = cli(&args(&["calls", "--json"])).await;
    assert_eq!(code, Some(0));
    let call: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(call["method"], "/pb.Greeter/SayHello");
    assert_eq!(call["grpcTimeout"], "3000000u");
    assert_eq!(call["timeout"], "3s");

    let (code, _, err) = cli(&args(&["verify"])).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("expected exactly 2 call(s), received 1"),
        "{err}"
    );

    let (code, out, _) = cli(&args(&["reset"])).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("unmounted 1 stub(s)"), "{out}");
    let (code, out, _) = cli(&args(&["verify"])).await;
    assert_eq!(code, Some(0), "{out}");

    // A malformed file: the server's line and column, under the file's own name.
    std::fs::write(dir.join("bad.toml"), "[[stub]]\nmethod = 5\n").unwrap();
    let bad = dir.join("bad.toml").display().to_string();
    let (code, _, err) = cli(&args(&["mount", &bad])).await;
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("{bad}:2:10: ")), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
