//! `grpc-chaos proxy`: the harness's chaos proxy on TCP, in front of a real server,
//! with its journal behind the admin API on the same port (on loopback, or with a
//! token). The admin API's own path is the one thing it does not forward: a `serve`
//! upstream's admin API is reached at its own address.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use grpc_chaos::proxy::{FaultRule, Proxy, RecordedCall, Upstream};
use grpc_chaos::scenario::Scenario;
use grpc_chaos::schema::Schema;

use crate::admin::{self, ProxyAdminApi};
use crate::signal::shutdown_signal;
use crate::{CliError, ProxyArgs, SHUTDOWN_GRACE};

/// The upstream's socket address, from `host:port` or `http://host:port`.
async fn resolve(upstream: &str) -> Result<SocketAddr, CliError> {
    let authority = upstream
        .strip_prefix("http://")
        .unwrap_or(upstream)
        .trim_end_matches('/');
    let bad = |why: String| CliError::Usage(format!("--upstream {upstream:?}: {why}"));
    let mut found = tokio::net::lookup_host(authority)
        .await
        .map_err(|e| bad(format!("expected host:port ({e})")))?;
    found.next().ok_or_else(|| bad("no address".into()))
}

/// Appends each recorded call to the file, as a stub (one write per call).
/// Messages of methods `schema` knows are written as tables, others as base64.
fn recorder(
    path: &Path,
    redact: Vec<String>,
    schema: Schema,
) -> Result<impl Fn(RecordedCall) + Send + Sync + 'static, CliError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| CliError::Usage(format!("--record {}: {e}", path.display())))?;
    let file = Mutex::new(file);
    let name = path.display().to_string();
    Ok(move |call: RecordedCall| {
        let text = Scenario::recorded_stub_with(&schema, &call, &redact);
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(format!("\n{text}").as_bytes()) {
            tracing::warn!("cannot append to {name}: {e}");
        }
    })
}

/// Reads the `[[fault]]` rules of every `--scenario`, then forwards until SIGINT or
/// SIGTERM and drains.
pub(crate) async fn run(args: &ProxyArgs) -> Result<(), CliError> {
    let schema = args.protos.load()?;
    let mut rules = Vec::new();
    for path in &args.scenarios {
        let mut scenario =
            Scenario::load_with(&schema, path, args.seed).map_err(CliError::Input)?;
        if !scenario.is_empty() {
            tracing::warn!(
                file = %path.display(),
                "the proxy ignores [[stub]] tables; serve them with `grpc-chaos serve`"
            );
        }
        rules.extend(scenario.take_faults());
    }
    proxy(args, schema, rules).await
}

/// Forwards until SIGINT or SIGTERM, then drains.
async fn proxy(args: &ProxyArgs, schema: Schema, rules: Vec<FaultRule>) -> Result<(), CliError> {
    let upstream = resolve(&args.upstream).await?;
    let shutdown = shutdown_signal()?;
    let rule_count = rules.len();
    let addr = args.addr;
    let (admin_on, admin_line) = admin::mode(addr, args.admin_token.as_deref());
    let admin = ProxyAdminApi::new(schema.clone(), args.admin_token.clone());
    let mut builder = Proxy::builder(Upstream::tcp(upstream))
        .rules(rules)
        .seed(args.seed)
        .fault_headers(args.fault_headers)
        .journal_limit(args.journal.journal_calls)
        .journal_bytes(args.journal.journal_bytes)
        .journal_message_bytes(args.journal.journal_message_bytes);
    if admin_on {
        builder = builder.add_service(admin.service());
    }
    if let Some(n) = args.max_active_faults {
        builder = builder.max_active_faults(n);
    }
    if let Some(path) = &args.record {
        builder = builder.record(recorder(path, args.redact.clone(), schema)?);
    }
    let proxy = Arc::new(
        builder
            .start_on(addr)
            .await
            .map_err(|source| CliError::Listen { addr, source })?,
    );
    admin.attach(&proxy);
    let bound = proxy.addr().unwrap_or(addr);
    // The first line on stdout is the contract scripts read the port from, as for serve.
    println!("listening on {bound}");
    println!("admin API {admin_line}");
    tracing::info!(%bound, %upstream, rules = rule_count, "grpc-chaos proxy ready");
    shutdown.await;
    tracing::info!("shutting down: no new calls, letting in-flight calls end");
    if tokio::time::timeout(SHUTDOWN_GRACE, proxy.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; cancelling the calls left");
    }
    Ok(())
}
