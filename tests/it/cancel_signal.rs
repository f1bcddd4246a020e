//! The cancellation signal for services under test, through a real tonic server in
//! memory under paused time: handlers and their spawned work see the client go away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use grpc_chaos::cancel::{CallSignal, CancelOnDisconnectLayer};
use grpc_chaos::memory;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

use crate::support::*;

/// What the service saw, with the instant: "signal", "work done", "work cancelled".
type Log = Arc<Mutex<Vec<(&'static str, Instant)>>>;

#[derive(Clone)]
struct Service {
    log: Log,
    work: Duration,
}

impl Service {
    /// Watches the call's signal and spawns work that is cancelled with the call.
    fn watch(&self, signal: &CallSignal) {
        let (log, work) = (Arc::clone(&self.log), self.work);
        let watcher = signal.clone();
        tokio::spawn(async move {
            watcher.cancelled().await;
            log.lock().unwrap().push(("signal", Instant::now()));
        });
        let log = Arc::clone(&self.log);
        let task = signal.spawn(async move { tokio::time::sleep(work).await });
        tokio::spawn(async move {
            let what = if task.await.unwrap().is_some() {
                "work done"
            } else {
                "work cancelled"
            };
            log.lock().unwrap().push((what, Instant::now()));
        });
    }
}

#[tonic::async_trait]
impl Greeter for Service {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        self.watch(
            request
                .extensions()
                .get::<CallSignal>()
                .expect("the layer adds a signal"),
        );
        tokio::time::sleep(self.work).await;
        Ok(Response::new(HelloReply {
            message: "done".into(),
        }))
    }

    type SayHelloStreamStream = ReplyStream;

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        self.watch(
            request
                .extensions()
                .get::<CallSignal>()
                .expect("the layer adds a signal"),
        );
        let ticks = tokio_stream::iter((0..).map(|i| {
            Ok(HelloReply {
                message: i.to_string(),
            })
        }));
        Ok(Response::new(Box::pin(ticks.throttle(ms(100)))))
    }

    unused_greeter_methods!(client_stream, bidi);
}

fn serve(work: Duration) -> (GreeterClient<Channel>, Log) {
    let log: Log = Arc::default();
    let service = Service {
        log: Arc::clone(&log),
        work,
    };
    let channel = memory::serve(|incoming| {
        Server::builder()
            .layer(CancelOnDisconnectLayer::new())
            .add_service(GreeterServer::new(service))
            .serve_with_incoming(incoming)
    });
    (GreeterClient::new(channel), log)
}

#[grpc_chaos::test]
async fn a_unary_handler_and_its_spawned_work_see_the_client_go_away() {
    let (mut client, log) = serve(Duration::from_secs(10));
    let t0 = Instant::now();

    let gave_up =
        tokio::time::timeout(Duration::from_secs(1), client.say_hello(hello("Ada"))).await;
    assert!(gave_up.is_err());
    tokio::time::sleep(Duration::from_secs(20)).await;

    let mut seen = log.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("signal", t0 + Duration::from_secs(1)),
            ("work cancelled", t0 + Duration::from_secs(1))
        ]
    );
}

#[grpc_chaos::test]
async fn a_stream_dropped_mid_way_fires_the_signal_at_that_instant() {
    let (mut client, log) = serve(Duration::from_secs(10));
    let t0 = Instant::now();

    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap();
    stream.message().await.unwrap();
    tokio::time::sleep_until(t0 + ms(250)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_secs(20)).await;

    let mut seen = log.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [("signal", t0 + ms(250)), ("work cancelled", t0 + ms(250))]
    );
}

#[grpc_chaos::test]
async fn a_call_that_completes_never_fires_the_signal() {
    let (mut client, log) = serve(ms(100));
    let t0 = Instant::now();

    assert_eq!(
        client
            .say_hello(hello("Ada"))
            .await
            .unwrap()
            .into_inner()
            .message,
        "done"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;

    assert_eq!(*log.lock().unwrap(), [("work done", t0 + ms(100))]);
}
