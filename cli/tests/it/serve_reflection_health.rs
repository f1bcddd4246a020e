//! `grpc-chaos serve` serves server reflection (v1 and v1alpha, tonic-reflection) and
//! health (tonic-health) beside the stubs, on the same port: clients built from those
//! crates' own types list every service, fetch a loaded file, and follow a status change.

use std::time::Duration;

use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1 as reflection_v1;
use tonic_reflection::pb::v1alpha as reflection_v1alpha;

use crate::served::Served;
use grpc_chaos_cli::admin::pb::admin_client::AdminClient;
use grpc_chaos_cli::admin::pb::SetHealthRequest;

fn descriptor_set() -> String {
    concat!(env!("OUT_DIR"), "/catalog.bin").to_string()
}

/// Sends one v1 reflection request and reads its answer.
async fn reflect_v1(
    served: &Served,
    request: reflection_v1::server_reflection_request::MessageRequest,
) -> reflection_v1::server_reflection_response::MessageResponse {
    use reflection_v1::server_reflection_client::ServerReflectionClient;
    let mut client = ServerReflectionClient::new(served.channel().await);
    let request = reflection_v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    answers
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[grpc_chaos::test(paused = false)]
async fn reflection_lists_every_service_and_fetches_a_loaded_file() {
    use reflection_v1::server_reflection_request::MessageRequest;
    use reflection_v1::server_reflection_response::MessageResponse;
    let served = Served::start(&["--descriptor-set", &descriptor_set()]).await;

    let MessageResponse::ListServicesResponse(list) =
        reflect_v1(&served, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "catalog.v1.Catalog",
        "pb.Greeter",
        "grpc.testing.TestService",
        "grpc.health.v1.Health",
        "grpc_chaos.admin.v1.Admin",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    let MessageResponse::FileDescriptorResponse(files) = reflect_v1(
        &served,
        MessageRequest::FileContainingSymbol("catalog.v1.Catalog".into()),
    )
    .await
    else {
        panic!("expected files");
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
        .collect();
    let catalog = files
        .iter()
        .find(|f| f.name() == "catalog/v1/catalog.proto")
        .expect("the file that declares the service");
    assert_eq!(catalog.service[0].method.len(), 4);
    // Its imports are there by name, so a client can build every type.
    for import in &catalog.dependency {
        let MessageResponse::FileDescriptorResponse(files) =
            reflect_v1(&served, MessageRequest::FileByFilename(import.clone())).await
        else {
            panic!("expected {import}");
        };
        let file =
            prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
                .unwrap();
        assert_eq!(file.name(), import);
    }
    assert!(catalog
        .dependency
        .contains(&"catalog/v1/money.proto".to_string()));

    // v1alpha, for older tools (grpcurl before 1.8, Postman, evans).
    use reflection_v1alpha::server_reflection_client::ServerReflectionClient;
    let mut alpha = ServerReflectionClient::new(served.channel().await);
    let request = reflection_v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            reflection_v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let reflection_v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list) =
        answer
    else {
        panic!("expected a service list");
    };
    assert!(list.service.iter().any(|s| s.name == "catalog.v1.Catalog"));
}

#[grpc_chaos::test(paused = false)]
async fn health_is_serving_and_watch_follows_a_change_made_through_the_admin_api() {
    let served = Served::start(&["--descriptor-set", &descriptor_set()]).await;
    let mut health = HealthClient::new(served.channel().await);
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    for service in ["", "catalog.v1.Catalog", "pb.Greeter"] {
        let status = health
            .check(check(service))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health.check(check("no.Such")).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut watch = health
        .watch(check("catalog.v1.Catalog"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let mut admin = AdminClient::connect(served.uri()).await.unwrap();
    admin
        .set_health(SetHealthRequest {
            service: "catalog.v1.Catalog".into(),
            status: "NOT_SERVING".into(),
        })
        .await
        .unwrap();
    let changed = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert_eq!(
        changed.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    let status = health
        .check(check("catalog.v1.Catalog"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);

    let bad = admin
        .set_health(SetHealthRequest {
            service: "catalog.v1.Catalog".into(),
            status: "DOWN".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

#[grpc_chaos::test(paused = false)]
async fn a_scenario_sets_health_at_start_and_after_a_delay() {
    let dir = std::env::temp_dir().join(format!("grpc-chaos-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("health.toml");
    std::fs::write(
        &file,
        "[[health]]\nservice = \"pb.Greeter\"\nstatus = \"NOT_SERVING\"\n\n[[health]]\nservice = \"pb.Greeter\"\nstatus = \"SERVING\"\nafter_ms = 1000\n",
    )
    .unwrap();
    let served = Served::start(&["--scenario", &file.display().to_string()]).await;
    std::fs::remove_dir_all(&dir).unwrap();
    let mut health = HealthClient::new(served.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "pb.Greeter".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap().status;
    assert_eq!(first, ServingStatus::NotServing as i32);
    let then = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert_eq!(then.unwrap().unwrap().status, ServingStatus::Serving as i32);
}
