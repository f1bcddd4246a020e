//! Metadata: property tests of keys, values and sizes, a differential test against
//! tonic's key parser, and maps through every call shape of the in-memory fake.

use grpc_chaos::fake::{method, CallHandle, FakeServer, Reply, Stub};
use grpc_chaos::metadata::{
    decode_binary, encode_binary, normalize_key, KeyError, Metadata, MetadataError, Value,
    DEFAULT_SIZE_LIMIT,
};
use grpc_chaos::pb::HelloRequest;
use grpc_chaos::strategy::{binary_value, invalid_metadata_key, metadata_map, mixed_case_key};
use proptest::prelude::*;
use tonic::metadata::{Ascii, Binary, MetadataKey, MetadataMap};
use tonic::{Code, Request};

use crate::support::*;

/// Per key, the values in order: what must survive a trip over the wire (HTTP/2 keeps
/// order only among values of the same name).
fn by_key(md: &Metadata) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut out = std::collections::BTreeMap::<String, Vec<Value>>::new();
    for (k, v) in md.iter() {
        out.entry(k.to_string()).or_default().push(v.clone());
    }
    out
}

fn received(map: &MetadataMap, prefix: &str) -> std::collections::BTreeMap<String, Vec<Value>> {
    let md = Metadata::from_metadata_map(map).unwrap();
    by_key(&md)
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect()
}

fn prefixed(md: &Metadata, prefix: &str) -> Metadata {
    let mut out = Metadata::new();
    for (k, v) in md.iter() {
        let key = format!("{prefix}{k}");
        match v {
            Value::Ascii(s) => out.append(&key, s).unwrap(),
            Value::Binary(b) => out.append_bin(&key, b).unwrap(),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn normalize_key_is_idempotent_and_its_output_validates(key in mixed_case_key()) {
        let once = normalize_key(&key).unwrap();
        prop_assert_eq!(&once, &key.to_ascii_lowercase());
        prop_assert_eq!(normalize_key(&once).unwrap(), once);
    }

    #[test]
    fn invalid_keys_give_their_error_class((key, expected) in invalid_metadata_key()) {
        prop_assert_eq!(normalize_key(&key), Err(expected));
    }

    #[test]
    fn any_string_gives_a_key_or_an_error_and_agrees_with_tonic_where_documented(key in any::<String>()) {
        match normalize_key(&key) {
            // Whatever we accept, tonic accepts as the same (lowercased) key.
            Ok(n) if n.ends_with("-bin") => {
                let theirs = MetadataKey::<Binary>::from_bytes(key.as_bytes()).map(|k| k.as_str().to_string());
                prop_assert_eq!(theirs.ok(), Some(n));
            }
            Ok(n) => {
                let theirs = MetadataKey::<Ascii>::from_bytes(key.as_bytes()).map(|k| k.as_str().to_string());
                prop_assert_eq!(theirs.ok(), Some(n));
            }
            // tonic takes reserved names (te, grpc-status, any grpc-*) as metadata; we don't.
            Err(KeyError::Reserved { .. } | KeyError::ReservedPrefix { .. }) => {
                prop_assert!(MetadataKey::<Ascii>::from_bytes(key.as_bytes()).is_ok());
            }
            // tonic takes any HTTP token character (`#`, `!`, `$`, `*`, …), outside gRPC's
            // [0-9a-z_.-]; both refuse the rest.
            Err(KeyError::InvalidChar { .. }) => {
                let http_token = !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                prop_assert_eq!(MetadataKey::<Ascii>::from_bytes(key.as_bytes()).is_ok(), http_token);
            }
            Err(_) => prop_assert!(MetadataKey::<Ascii>::from_bytes(key.as_bytes()).is_err()),
        }
    }

    #[test]
    fn arbitrary_bytes_round_trip_through_bin_padded_or_not(bytes in binary_value(), more in binary_value()) {
        let unpadded = encode_binary(&bytes);
        prop_assert!(!unpadded.ends_with('='));
        let padded = format!("{unpadded}{}", "=".repeat((4 - unpadded.len() % 4) % 4));
        prop_assert_eq!(decode_binary(&unpadded).unwrap(), vec![bytes.clone()]);
        prop_assert_eq!(decode_binary(&padded).unwrap(), vec![bytes.clone()]);
        let joined = format!("{padded},{}", encode_binary(&more));
        prop_assert_eq!(decode_binary(&joined).unwrap(), vec![bytes.clone(), more]);
        prop_assert!(MetadataKey::<Binary>::from_bytes(b"k-bin").is_ok());
    }

    #[test]
    fn values_outside_printable_ascii_are_refused_never_panicking(value in any::<String>()) {
        let mut md = Metadata::new();
        match md.append("x-v", &value) {
            Ok(()) => prop_assert!(value.bytes().all(|b| (0x20..=0x7e).contains(&b))),
            Err(e) => prop_assert!(matches!(e, MetadataError::Value { .. }), "{e}"),
        }
    }
}

fn echo_stub(server: &FakeServer, headers: &Metadata, trailers: &Metadata, code: Code) {
    let status_of = |code: Code| {
        if code == Code::Ok {
            None
        } else {
            Some(tonic::Status::new(code, "failed"))
        }
    };
    let mut unary = Reply::message(&reply("ok"));
    let mut bidi_headers = MetadataMap::new();
    for (k, v) in headers.iter() {
        unary = match v {
            Value::Ascii(s) => unary.header(k, s),
            Value::Binary(b) => unary.header_bin(k, b),
        };
    }
    for (k, v) in trailers.iter() {
        unary = match v {
            Value::Ascii(s) => unary.trailer(k, s),
            Value::Binary(b) => unary.trailer_bin(k, b),
        };
    }
    if let Some(status) = status_of(code) {
        unary = unary.then_status(status);
    }
    bidi_headers.clone_from(&headers.to_metadata_map().unwrap());
    Stub::given(method(SAY_HELLO))
        .respond_with(unary.clone())
        .mount(server);
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(unary.clone())
        .mount(server);
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(unary)
        .mount(server);
    let trailer_map = trailers.to_metadata_map().unwrap();
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(Reply::handler(move |mut call: CallHandle| {
            let (h, t) = (bidi_headers.clone(), trailer_map.clone());
            async move {
                call.send_headers(h).await;
                while let Some(r) = call.next::<HelloRequest>().await? {
                    call.send(&reply(&r.name)).await;
                }
                Err(tonic::Status::with_metadata(
                    code,
                    if code == Code::Ok { "" } else { "failed" },
                    t,
                ))
            }
        }))
        .mount(server);
}

fn round_trip(
    request_md: Metadata,
    headers: Metadata,
    trailers: Metadata,
    ok: bool,
) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let (headers, trailers) = (prefixed(&headers, "h-"), prefixed(&trailers, "t-"));
        let request_md = prefixed(&request_md, "r-");
        let code = if ok { Code::Ok } else { Code::Aborted };
        let server = FakeServer::in_memory();
        echo_stub(&server, &headers, &trailers, code);
        let mut client = greeter(&server);
        let with_md = |name: &str| {
            let mut r = Request::new(hello(name));
            *r.metadata_mut() = request_md.to_metadata_map().unwrap();
            r
        };

        // Unary: tonic merges trailers into the response metadata (or the status's).
        let unary = client.say_hello(with_md("u")).await;
        let md = match &unary {
            Ok(r) => r.metadata().clone(),
            Err(s) => s.metadata().clone(),
        };
        prop_assert_eq!(unary.is_ok(), ok);
        prop_assert_eq!(received(&md, "t-"), by_key(&trailers));
        // On a unary error tonic builds the status from the trailers alone: the initial
        // metadata that came before is not visible through its API.
        if ok {
            prop_assert_eq!(received(&md, "h-"), by_key(&headers));
        }

        // Client streaming: like unary, trailers merged into the response metadata.
        let mut uploads = Request::new(tokio_stream::iter([hello("c1"), hello("c2")]));
        *uploads.metadata_mut() = request_md.to_metadata_map().unwrap();
        let upload = client.say_hello_client_stream(uploads).await;
        prop_assert_eq!(upload.is_ok(), ok);
        let md = match &upload {
            Ok(r) => r.metadata().clone(),
            Err(s) => s.metadata().clone(),
        };
        prop_assert_eq!(received(&md, "t-"), by_key(&trailers));
        if ok {
            prop_assert_eq!(received(&md, "h-"), by_key(&headers));
        }

        // Server streaming: headers at the call, trailers at the end.
        let response = client.say_hello_stream(with_md("s")).await;
        if let Ok(response) = response {
            prop_assert_eq!(received(response.metadata(), "h-"), by_key(&headers));
            let mut stream = response.into_inner();
            while let Ok(Some(_)) = stream.message().await {}
            if ok {
                prop_assert_eq!(
                    received(&stream.trailers().await.unwrap().unwrap(), "t-"),
                    by_key(&trailers)
                );
            }
        }

        // Bidi: a handler sends the headers and the trailers.
        let response = client
            .say_hello_bidi_stream({
                let mut r = Request::new(tokio_stream::iter([hello("a"), hello("b")]));
                *r.metadata_mut() = request_md.to_metadata_map().unwrap();
                r
            })
            .await
            .unwrap();
        prop_assert_eq!(received(response.metadata(), "h-"), by_key(&headers));
        let mut stream = response.into_inner();
        let end = loop {
            match stream.message().await {
                Ok(Some(_)) => {}
                Ok(None) => break stream.trailers().await.unwrap().unwrap_or_default(),
                Err(status) => break status.metadata().clone(),
            }
        };
        prop_assert_eq!(received(&end, "t-"), by_key(&trailers));

        // Every request arrived in the journal exactly.
        for call in server.wait_for_ended_calls(4).await {
            prop_assert_eq!(
                received(&call.metadata, "r-"),
                by_key(&request_md),
                "{}",
                call.method
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn maps_arrive_exactly_both_ways_in_every_call_shape_on_ok_and_error(
        request_md in metadata_map(6, 2048),
        headers in metadata_map(6, 2048),
        trailers in metadata_map(6, 2048),
        ok in any::<bool>(),
    ) {
        round_trip(request_md, headers, trailers, ok)?;
    }
}

#[grpc_chaos::test]
async fn the_size_limit_holds_on_both_sides_of_the_boundary_and_the_connection_survives() {
    let limit = DEFAULT_SIZE_LIMIT;
    let server = FakeServer::builder().metadata_limit(limit).in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("ok")))
        .mount(&server);
    let mut client = greeter(&server);
    // What tonic itself sends besides ours: measure it on a bare call.
    client.say_hello(hello("x")).await.unwrap();
    let base = grpc_chaos::metadata::header_list_size(
        &server.received_calls()[0].metadata.clone().into_headers(),
    );
    let padded_to = |total: usize| {
        let key = "x-pad";
        let len = total - base - key.len() - 32;
        let mut md = Metadata::new();
        md.append(key, &"a".repeat(len)).unwrap();
        let mut r = Request::new(hello("x"));
        *r.metadata_mut() = md.to_metadata_map().unwrap();
        r
    };

    assert!(
        client.say_hello(padded_to(limit)).await.is_ok(),
        "exactly at the limit passes"
    );
    let over = client.say_hello(padded_to(limit + 1)).await.unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert!(
        over.message().contains("over the limit of 8192"),
        "{}",
        over.message()
    );
    // Far over h2's own 16 KiB default: still a status, not a torn-down connection.
    let way_over = client.say_hello(padded_to(100 * 1024)).await.unwrap_err();
    assert_eq!(way_over.code(), Code::ResourceExhausted);
    assert_eq!(
        client
            .say_hello(hello("again"))
            .await
            .unwrap()
            .into_inner()
            .message,
        "ok"
    );
}

#[test]
fn a_client_sees_the_size_error_before_sending() {
    let mut md = Metadata::new();
    md.append("x-big", &"a".repeat(DEFAULT_SIZE_LIMIT)).unwrap();
    let err = md.check_size(DEFAULT_SIZE_LIMIT).unwrap_err();
    assert_eq!(
        err,
        MetadataError::TooLarge {
            size: 5 + DEFAULT_SIZE_LIMIT + 32,
            limit: DEFAULT_SIZE_LIMIT
        }
    );
}

proptest! {
    #[test]
    fn encoded_len_matches_the_encoding(bytes in binary_value()) {
        let v = Value::Binary(bytes);
        prop_assert_eq!(v.encoded_len(), v.encoded().len());
    }
}

#[grpc_chaos::test]
async fn metadata_appended_to_a_request_arrives_whole_beside_what_it_had() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("ok")))
        .mount(&server);
    let mut md = grpc_chaos::metadata::Metadata::pairs([("X-Tenant", "blue")]).unwrap();
    md.append_bin("trace-bin", &[0, 1, 2, 0xff]).unwrap();
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-tenant", "red".parse().unwrap());

    md.append_to(&mut request).unwrap();
    greeter(&server).say_hello(request).await.unwrap();

    let call = &server.wait_for_ended_calls(1).await[0];
    let tenants: Vec<_> = call.metadata.get_all("x-tenant").iter().collect();
    assert_eq!(tenants, ["red", "blue"]);
    let trace = call
        .metadata
        .get_bin("trace-bin")
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(trace.as_ref(), [0, 1, 2, 0xff]);
}
