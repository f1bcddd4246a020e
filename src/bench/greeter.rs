//! The service every rig calls: a hand-written tonic Greeter with configurable message
//! sizes and stream lengths, doing as little as a service can.

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::pb::greeter_server::Greeter;
use crate::pb::{HelloReply, HelloRequest};

type Replies = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

/// The rig's `pb.Greeter`: every method answers with the bench's reply message;
/// `SayHelloStream` with as many as the bench's stream length, and `SayHelloBidiStream`
/// one for each request.
#[derive(Clone, Debug)]
pub struct BenchGreeter {
    pub(super) reply: HelloReply,
    pub(super) messages: usize,
}

#[tonic::async_trait]
impl Greeter for BenchGreeter {
    async fn say_hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(self.reply.clone()))
    }

    type SayHelloStreamStream = Replies;

    async fn say_hello_stream(
        &self,
        _: Request<HelloRequest>,
    ) -> Result<Response<Replies>, Status> {
        let reply = self.reply.clone();
        let replies = std::iter::repeat_n(reply, self.messages).map(Ok);
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn say_hello_client_stream(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut requests = request.into_inner();
        while requests.message().await?.is_some() {}
        Ok(Response::new(self.reply.clone()))
    }

    type SayHelloBidiStreamStream = Replies;

    async fn say_hello_bidi_stream(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<Replies>, Status> {
        let reply = self.reply.clone();
        let echoes = request.into_inner().map(move |m| m.map(|_| reply.clone()));
        Ok(Response::new(Box::pin(echoes)))
    }
}
