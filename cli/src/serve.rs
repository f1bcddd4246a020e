//! `grpc-chaos serve`: the fake server with the built-in and loaded services, fault
//! headers, enforced deadlines, and beside the stubs on the same port server reflection,
//! health and (on loopback, or with a token) the admin API.

use std::sync::Arc;
use std::time::Duration;

use grpc_chaos::builtin;
use grpc_chaos::fake::FakeServer;
use grpc_chaos::scenario::Scenario;
use grpc_chaos::schema::Schema;

use crate::admin::{self, AdminApi};
use crate::health::Health;
use crate::signal::shutdown_signal;
use crate::{CliError, ServeArgs, SHUTDOWN_GRACE};

/// Request metadata over this gets RESOURCE_EXHAUSTED (the limit HTTP/2 servers such as
/// tonic's apply by default, where they answer HTTP 431 or tear the connection down).
const METADATA_LIMIT: usize = 16 * 1024;
/// How long `serve` waits for a keepalive ping's answer before closing the connection.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Every file the server knows, for reflection: the built-in and loaded protos, health,
/// the admin API, and both versions of reflection itself.
fn reflection_files(schema: &Schema) -> Vec<prost_types::FileDescriptorProto> {
    let mut files = Vec::new();
    for bytes in [
        schema.encode_descriptor_set().as_slice(),
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        admin::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        // Each set was encoded by prost or protox just now or at build time.
        let set: prost_types::FileDescriptorSet = prost::Message::decode(bytes).unwrap_or_default();
        for file in set.file {
            if !files
                .iter()
                .any(|f: &prost_types::FileDescriptorProto| f.name == file.name)
            {
                files.push(file);
            }
        }
    }
    files
}

/// Serves until SIGINT or SIGTERM, then drains.
pub(crate) async fn serve(
    args: &ServeArgs,
    schema: Schema,
    scenarios: Vec<Scenario>,
) -> Result<(), CliError> {
    let addr = args.addr;
    // Watch the signals before announcing the address: a signal sent as soon as the
    // first line is read must find its handler in place.
    let shutdown = shutdown_signal()?;
    let (health, health_service) = Health::new();
    for service in schema.services() {
        health.set(&service, true).await;
    }
    let files = reflection_files(&schema);
    let set = prost_types::FileDescriptorSet { file: files };
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_file_descriptor_set(set.clone())
    };
    let reflection_failed = |e| CliError::Admin(format!("server reflection: {e}"));
    let reflection_v1 = reflection().build_v1().map_err(reflection_failed)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_failed)?;
    let (admin_on, admin_line) = admin::mode(args.addr, args.admin_token.as_deref());
    let admin = AdminApi::new(
        schema.clone(),
        health.clone(),
        args.seed,
        args.admin_token.clone(),
    );
    let mut builder = FakeServer::builder()
        .enforce_deadlines(true)
        .lenient_timeouts(args.lenient_timeouts)
        .fault_headers(true)
        .journal_limit(args.journal.journal_calls)
        .journal_bytes(args.journal.journal_bytes)
        .journal_message_bytes(args.journal.journal_message_bytes)
        .handshake_timeout(args.handshake_timeout)
        .idle_timeout(args.idle_timeout)
        .keepalive(args.keepalive, KEEPALIVE_TIMEOUT)
        .max_connections(args.max_connections)
        .metadata_limit(METADATA_LIMIT)
        .shapes(schema.shapes())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    if admin_on {
        builder = builder.add_service(admin.service());
    }
    let server = Arc::new(
        builder
            .start_on(addr)
            .await
            .map_err(|source| CliError::Listen { addr, source })?,
    );
    admin.attach(&server);
    // Scenarios first: on a priority tie, the stub mounted first answers.
    for scenario in scenarios {
        for change in scenario.health() {
            health.apply(change.clone()).await;
        }
        scenario.mount(&server);
    }
    builtin::mount_all(&server);
    let bound = server.addr().unwrap_or(addr);
    // The first line on stdout is the contract scripts read the port from.
    println!("listening on {bound}");
    println!("admin API {admin_line}");
    tracing::info!(%bound, "grpc-chaos fake server ready");
    shutdown.await;
    tracing::info!(
        live_calls = server.live_calls(),
        "shutting down: no new calls, letting in-flight calls end"
    );
    if tokio::time::timeout(SHUTDOWN_GRACE, server.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            live_calls = server.live_calls(),
            "grace period over; cancelling the calls left"
        );
    }
    // Unmet `expect` counts are reported, not panicked over, when a server stops.
    if let Err(unmet) = server.try_verify() {
        tracing::warn!("{unmet}");
    }
    server.reset();
    Ok(())
}
