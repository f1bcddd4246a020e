//! The admin API, `grpc_chaos.admin.v1.Admin` (`proto/grpc_chaos/admin/v1/admin.proto`),
//! served by `grpc-chaos serve` on the same port as the faked services: it mounts stubs from scenario text,
//! lists and unmounts them, resets, lists and watches the journal, verifies
//! expectations, and sets health statuses, for a test in any language.
//!
//! Everything it does goes through the harness's public API ([`FakeServer`],
//! [`Scenario`], [`StubGuard`]), as a Rust test would.
//!
//! **Sessions.** A request carrying `x-chaos-session: ID` ([`SESSION_HEADER`]) is scoped
//! to that session: the stubs it mounts answer only calls that carry the same header,
//! and its listings, watches, verify and reset see only that session's stubs and calls.
//! Parallel tests that each pick a session share one server without seeing each other.

mod auth;
mod convert;
mod filter;
mod proxy;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use grpc_chaos::fake::{metadata, FakeServer, ReceivedCall, StubGuard};
use grpc_chaos::scenario::Scenario;
use grpc_chaos::schema::Schema;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

use crate::health::Health;

pub use auth::AdminAuth;
pub use proxy::ProxyAdminApi;

use filter::{in_session, CallFilter};

/// The admin API's generated types, client and server.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("grpc_chaos.admin.v1");

    /// The admin proto's encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/admin.bin"));
}

/// The request header that scopes an admin request, and the calls of a test, to one
/// session.
pub const SESSION_HEADER: &str = "x-chaos-session";

/// The admin API's state: the server it programs (attached once started), and the stubs
/// mounted through it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use grpc_chaos::schema::Schema;
/// use grpc_chaos_cli::admin::AdminApi;
/// use grpc_chaos_cli::health::Health;
/// let (health, _health_service) = Health::new();
/// let admin = AdminApi::new(Schema::builtin(), health, 0, None);
/// let service = admin.service(); // add it to the server, then attach the server
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AdminApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Weak: the server's own services hold this API, so a strong handle would be a cycle.
    server: OnceLock<Weak<FakeServer>>,
    schema: Schema,
    health: Health,
    seed: u64,
    auth: AdminAuth,
    mounted: Mutex<Vec<Mounted>>,
    next_id: AtomicU64,
}

/// A stub mounted through the API.
#[derive(Debug)]
struct Mounted {
    id: String,
    session: String,
    guard: StubGuard,
}

impl Mounted {
    /// Whether a request of `session` sees this stub (every session does when empty).
    fn in_session(&self, session: &str) -> bool {
        session.is_empty() || self.session == session
    }
}

/// Whether the admin API is served on `addr`, and why (for the start-up line): always
/// with a token, and without one only on loopback.
///
/// ```
/// let (on, why) = grpc_chaos_cli::admin::mode("0.0.0.0:1".parse().unwrap(), None);
/// assert!(!on);
/// assert!(why.contains("--admin-token"));
/// ```
pub fn mode(addr: std::net::SocketAddr, token: Option<&str>) -> (bool, &'static str) {
    match (token, addr.ip().is_loopback()) {
        (Some(_), _) => (true, "on, with a bearer token"),
        (None, true) => (true, "on (loopback)"),
        (None, false) => (
            false,
            "off: listening beyond loopback needs --admin-token TOKEN",
        ),
    }
}

/// The session a request is scoped to; empty for none.
fn session_of<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The name a mounted text is parsed under: its own, with the extension that says how
/// to read it (the scenario reader goes by the name).
fn scenario_name(body: &pb::MountRequest) -> Result<String, Status> {
    let name = if body.name.is_empty() {
        "admin"
    } else {
        &body.name
    };
    let json = match body.format.as_str() {
        "" => name.ends_with(".json"),
        "json" => true,
        "toml" => false,
        other => {
            return Err(Status::invalid_argument(format!(
                "format {other:?}: expected \"toml\" or \"json\""
            )));
        }
    };
    let extension = if json { ".json" } else { ".toml" };
    Ok(if name.ends_with(extension) {
        name.to_string()
    } else {
        format!("{name}{extension}")
    })
}

impl AdminApi {
    /// The API for a server whose types are `schema` and whose health is `health`;
    /// `seed` seeds the `chance` replies of mounted text. With a token, every request
    /// must carry `authorization: Bearer TOKEN`.
    pub fn new(schema: Schema, health: Health, seed: u64, token: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                server: OnceLock::new(),
                schema,
                health,
                seed,
                auth: AdminAuth::new(token),
                mounted: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Points the API at the started server. Until then (and once it is dropped) every
    /// method answers UNAVAILABLE.
    pub fn attach(&self, server: &Arc<FakeServer>) {
        let _ = self.inner.server.set(Arc::downgrade(server));
    }

    /// The tonic service to add to the server.
    pub fn service(&self) -> pb::admin_server::AdminServer<AdminApi> {
        pb::admin_server::AdminServer::new(self.clone())
    }

    /// The session of a request that may use the API (UNAUTHENTICATED otherwise).
    fn admit<T>(&self, request: &Request<T>) -> Result<String, Status> {
        self.inner.auth.check(request.metadata())?;
        Ok(session_of(request))
    }

    fn server(&self) -> Result<Arc<FakeServer>, Status> {
        self.inner
            .server
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| Status::unavailable("grpc-chaos: the server is not running"))
    }

    fn mounted(&self) -> MutexGuard<'_, Vec<Mounted>> {
        self.inner.mounted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Unmounts (without verifying) the API's stubs `pick` chooses; how many.
    fn unmount_where(&self, pick: impl Fn(&Mounted) -> bool) -> u32 {
        let gone: Vec<Mounted> = {
            let mut mounted = self.mounted();
            let (gone, kept) = std::mem::take(&mut *mounted).into_iter().partition(pick);
            *mounted = kept;
            gone
        };
        let count = gone.len() as u32;
        gone.into_iter().for_each(|m| m.guard.unmount());
        count
    }
}

type CallStream = Pin<Box<dyn Stream<Item = Result<pb::Call, Status>> + Send>>;

/// The calls `keep` turns into messages, as they end; DATA_LOSS for a watcher that fell
/// behind the backlog.
fn watch<C: Clone + Send + 'static>(
    ended: tokio::sync::broadcast::Receiver<C>,
    keep: impl Fn(&C) -> Option<pb::Call> + Send + 'static,
) -> CallStream {
    let ended = tokio_stream::wrappers::BroadcastStream::new(ended);
    Box::pin(ended.filter_map(move |ended| match ended {
        Ok(call) => keep(&call).map(Ok),
        Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
            Some(Err(Status::data_loss(format!(
                "grpc-chaos: this watch fell {n} calls behind and missed them; list calls to catch up"
            ))))
        }
    }))
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminApi {
    async fn mount(
        &self,
        request: Request<pb::MountRequest>,
    ) -> Result<Response<pb::MountResponse>, Status> {
        let server = self.server()?;
        let session = self.admit(&request)?;
        let body = request.into_inner();
        let name = scenario_name(&body)?;
        let scenario = Scenario::parse_with(&self.inner.schema, &name, &body.text, self.inner.seed)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        for change in scenario.health() {
            self.inner.health.apply(change.clone()).await;
        }
        let mut ids = Vec::new();
        let mut mounted = self.mounted();
        for stub in scenario.into_stubs() {
            let stub = if session.is_empty() {
                stub
            } else {
                stub.and(metadata(SESSION_HEADER, session.clone()))
            };
            let id = format!(
                "stub-{}",
                self.inner.next_id.fetch_add(1, Ordering::Relaxed)
            );
            ids.push(id.clone());
            mounted.push(Mounted {
                id,
                session: session.clone(),
                guard: stub.mount_as_scoped(&server),
            });
        }
        Ok(Response::new(pb::MountResponse { stub_ids: ids }))
    }

    async fn list_stubs(
        &self,
        request: Request<pb::ListStubsRequest>,
    ) -> Result<Response<pb::ListStubsResponse>, Status> {
        let session = self.admit(&request)?;
        let stubs = self
            .mounted()
            .iter()
            .filter(|m| m.in_session(&session))
            .map(|m| pb::Stub {
                id: m.id.clone(),
                label: m.guard.label(),
                session: m.session.clone(),
                calls: m.guard.call_count() as u64,
            })
            .collect();
        Ok(Response::new(pb::ListStubsResponse { stubs }))
    }

    async fn unmount(
        &self,
        request: Request<pb::UnmountRequest>,
    ) -> Result<Response<pb::UnmountResponse>, Status> {
        let session = self.admit(&request)?;
        let ids = request.into_inner().stub_ids;
        let unmounted = self.unmount_where(|m| ids.contains(&m.id) && m.in_session(&session));
        Ok(Response::new(pb::UnmountResponse { unmounted }))
    }

    async fn reset(
        &self,
        request: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::ResetResponse>, Status> {
        let server = self.server()?;
        let session = self.admit(&request)?;
        let stubs_unmounted = self.unmount_where(|m| m.in_session(&session));
        server.clear_received_calls_where(|call| in_session(call, &session));
        Ok(Response::new(pb::ResetResponse { stubs_unmounted }))
    }

    async fn list_calls(
        &self,
        request: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let server = self.server()?;
        let session = self.admit(&request)?;
        let filter = CallFilter::list(session, request.into_inner())?;
        let origin = server.started_at();
        let calls = server
            .received_calls()
            .iter()
            .filter(|c| filter.keeps(c, origin))
            .map(|c| convert::call(c, origin, &self.inner.schema))
            .collect();
        Ok(Response::new(pb::ListCallsResponse { calls }))
    }

    type WatchCallsStream = CallStream;

    async fn watch_calls(
        &self,
        request: Request<pb::WatchCallsRequest>,
    ) -> Result<Response<Self::WatchCallsStream>, Status> {
        let server = self.server()?;
        let session = self.admit(&request)?;
        let filter = CallFilter::watch(session, request.into_inner());
        let origin = server.started_at();
        let schema = self.inner.schema.clone();
        let calls = watch(server.watch_calls(), move |call: &ReceivedCall| {
            filter
                .keeps(call, origin)
                .then(|| convert::call(call, origin, &schema))
        });
        Ok(Response::new(calls))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let server = self.server()?;
        let session = self.admit(&request)?;
        let verdict = if session.is_empty() {
            server.try_verify()
        } else {
            let mounted = self.mounted();
            let guards: Vec<&StubGuard> = mounted
                .iter()
                .filter(|m| m.in_session(&session))
                .map(|m| &m.guard)
                .collect();
            server.try_verify_only(&guards)
        };
        Ok(Response::new(match verdict {
            Ok(()) => pb::VerifyResponse {
                ok: true,
                unmet: Vec::new(),
                report: String::new(),
            },
            Err(e) => pb::VerifyResponse {
                ok: false,
                unmet: e.unmet().to_vec(),
                report: e.to_string(),
            },
        }))
    }

    async fn set_health(
        &self,
        request: Request<pb::SetHealthRequest>,
    ) -> Result<Response<pb::SetHealthResponse>, Status> {
        self.admit(&request)?;
        let body = request.into_inner();
        let serving = match body.status.as_str() {
            "SERVING" => true,
            "NOT_SERVING" => false,
            other => {
                return Err(Status::invalid_argument(format!(
                    "status {other:?}: expected \"SERVING\" or \"NOT_SERVING\""
                )))
            }
        };
        if !body.service.is_empty() && !self.inner.schema.has_service(&body.service) {
            return Err(Status::not_found(format!(
                "no loaded proto defines the service {:?}",
                body.service
            )));
        }
        self.inner.health.set(&body.service, serving).await;
        Ok(Response::new(pb::SetHealthResponse {}))
    }
}
