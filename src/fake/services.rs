//! Real tonic services served beside the stubs, on the same port: server reflection,
//! health, an admin API. A call to one of their paths goes to the service, not to the
//! stubs: it is not in the journal, and no stub or fault header touches it.

use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tower::Service;

use super::call::{BoxError, CallBody};

/// The services added with [`FakeServerBuilder::add_service`](super::FakeServerBuilder::add_service).
#[derive(Clone, Debug, Default)]
pub(crate) struct Services {
    /// Their names (`package.Service`), for the one lookup a call costs.
    names: Arc<HashSet<String>>,
    routes: Routes,
}

impl Services {
    pub(crate) fn add<S>(&mut self, service: S)
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Arc::make_mut(&mut self.names).insert(S::NAME.to_string());
        self.routes = std::mem::take(&mut self.routes).add_service(service);
    }

    /// The routes to serve a call to `path` with, when its service is one of these.
    pub(crate) fn route(&self, path: &str) -> Option<Routes> {
        if self.names.is_empty() {
            return None;
        }
        let service = path.strip_prefix('/')?.split_once('/')?.0;
        self.names.contains(service).then(|| self.routes.clone())
    }
}

/// A response body on the fake's connections: a call the stubs answer, or one a real
/// service does.
pub(crate) enum ResponseBody {
    Call(CallBody),
    Service(Body),
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Call(body) => Pin::new(body).poll_frame(cx),
            Self::Service(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|status| Box::new(status) as BoxError),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Call(body) => body.is_end_stream(),
            Self::Service(body) => body.is_end_stream(),
        }
    }
}
