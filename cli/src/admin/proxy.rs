//! The admin API as `grpc-chaos proxy` serves it: the proxy's journal, listed, watched
//! and reset, with sessions as `serve` has them. A proxy has no stubs and no health of
//! its own, so those methods are UNIMPLEMENTED, saying where they are served.

use std::sync::{Arc, OnceLock, Weak};

use grpc_chaos::proxy::{ProxiedCall, Proxy};
use grpc_chaos::schema::Schema;
use tonic::{Request, Response, Status};

use super::filter::{in_session, CallFilter};
use super::{convert, pb, session_of, watch, AdminAuth, CallStream};

/// The admin API of a proxy: its journal, and who may read it.
///
/// ```
/// use grpc_chaos::schema::Schema;
/// use grpc_chaos_cli::admin::ProxyAdminApi;
/// let admin = ProxyAdminApi::new(Schema::builtin(), None);
/// let service = admin.service(); // add it to the proxy, then attach the proxy
/// ```
#[derive(Clone, Debug)]
pub struct ProxyAdminApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Weak: the proxy holds this API among its services.
    proxy: OnceLock<Weak<Proxy>>,
    schema: Schema,
    auth: AdminAuth,
}

fn no_stubs(what: &str) -> Status {
    Status::unimplemented(format!(
        "grpc-chaos proxy has no {what}: its faults come from --scenario files; \
         stubs and health are `grpc-chaos serve`'s"
    ))
}

impl ProxyAdminApi {
    /// The API for a proxy whose calls' types are `schema`; with a token, every request
    /// must carry `authorization: Bearer TOKEN`.
    pub fn new(schema: Schema, token: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                proxy: OnceLock::new(),
                schema,
                auth: AdminAuth::new(token),
            }),
        }
    }

    /// Points the API at the started proxy; until then every method answers UNAVAILABLE.
    pub fn attach(&self, proxy: &Arc<Proxy>) {
        let _ = self.inner.proxy.set(Arc::downgrade(proxy));
    }

    /// The tonic service to add to the proxy.
    pub fn service(&self) -> pb::admin_server::AdminServer<ProxyAdminApi> {
        pb::admin_server::AdminServer::new(self.clone())
    }

    /// The proxy, and the session of a request that may use the API.
    fn admit<T>(&self, request: &Request<T>) -> Result<(Arc<Proxy>, String), Status> {
        self.inner.auth.check(request.metadata())?;
        let proxy = self
            .inner
            .proxy
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| Status::unavailable("grpc-chaos: the proxy is not running"))?;
        Ok((proxy, session_of(request)))
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for ProxyAdminApi {
    async fn mount(
        &self,
        request: Request<pb::MountRequest>,
    ) -> Result<Response<pb::MountResponse>, Status> {
        self.admit(&request)?;
        Err(no_stubs("stubs to mount"))
    }

    async fn list_stubs(
        &self,
        request: Request<pb::ListStubsRequest>,
    ) -> Result<Response<pb::ListStubsResponse>, Status> {
        self.admit(&request)?;
        Err(no_stubs("stubs"))
    }

    async fn unmount(
        &self,
        request: Request<pb::UnmountRequest>,
    ) -> Result<Response<pb::UnmountResponse>, Status> {
        self.admit(&request)?;
        Err(no_stubs("stubs to unmount"))
    }

    /// Clears the journal (the caller's session's calls only, when it has one).
    async fn reset(
        &self,
        request: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::ResetResponse>, Status> {
        let (proxy, session) = self.admit(&request)?;
        proxy.clear_received_calls_where(|c| in_session(&c.call, &session));
        Ok(Response::new(pb::ResetResponse { stubs_unmounted: 0 }))
    }

    async fn list_calls(
        &self,
        request: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let (proxy, session) = self.admit(&request)?;
        let filter = CallFilter::list(session, request.into_inner())?;
        let origin = proxy.started_at();
        let calls = proxy
            .received_calls()
            .iter()
            .filter(|c| filter.keeps(&c.call, origin))
            .map(|c| convert::proxied_call(c, origin, &self.inner.schema))
            .collect();
        Ok(Response::new(pb::ListCallsResponse { calls }))
    }

    type WatchCallsStream = CallStream;

    async fn watch_calls(
        &self,
        request: Request<pb::WatchCallsRequest>,
    ) -> Result<Response<Self::WatchCallsStream>, Status> {
        let (proxy, session) = self.admit(&request)?;
        let filter = CallFilter::watch(session, request.into_inner());
        let origin = proxy.started_at();
        let schema = self.inner.schema.clone();
        let calls = watch(proxy.watch_calls(), move |call: &ProxiedCall| {
            filter
                .keeps(&call.call, origin)
                .then(|| convert::proxied_call(call, origin, &schema))
        });
        Ok(Response::new(calls))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        self.admit(&request)?;
        Err(no_stubs("expectations to verify"))
    }

    async fn set_health(
        &self,
        request: Request<pb::SetHealthRequest>,
    ) -> Result<Response<pb::SetHealthResponse>, Status> {
        self.admit(&request)?;
        Err(no_stubs("health service"))
    }
}
