//! Connection hygiene: what keeps a long-running fake from holding connections nobody
//! uses. A connection must send the HTTP/2 preface within the handshake timeout; one with
//! no open stream for the idle timeout is closed gracefully (GOAWAY); keepalive pings
//! find dead peers; and past the connection cap, a new connection is closed at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// The limits on each connection of one server; every one is off unless set.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hygiene {
    /// How long a new connection has to send the HTTP/2 preface.
    pub(crate) handshake_timeout: Option<Duration>,
    /// How long a connection may have no open stream before it is closed.
    pub(crate) idle_timeout: Option<Duration>,
    /// How often to ping a connection that is otherwise quiet, and how long to wait for
    /// the answer before closing it.
    pub(crate) keepalive: Option<(Duration, Duration)>,
    /// How many connections may be open at once; newer ones are closed.
    pub(crate) max_connections: Option<usize>,
}

/// The client preface every HTTP/2 connection starts with (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads the first 24 bytes (the preface, if the peer speaks HTTP/2), and returns the
/// connection with them put back for hyper to read. `Err` when the peer closes first.
pub(crate) async fn read_preface<I>(mut io: I) -> io::Result<Prefaced<I>>
where
    I: AsyncRead + Unpin,
{
    let mut first = vec![0; PREFACE.len()];
    io.read_exact(&mut first).await?;
    // Anything else is hyper's to refuse, with a proper GOAWAY.
    Ok(Prefaced {
        replay: Bytes::from(first),
        io,
    })
}

/// A connection whose first bytes were read ahead: they are read again first.
#[derive(Debug)]
pub(crate) struct Prefaced<I> {
    replay: Bytes,
    io: I,
}

impl<I> Prefaced<I> {
    /// A connection with nothing read ahead.
    pub(crate) fn plain(io: I) -> Self {
        Self {
            replay: Bytes::new(),
            io,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefaced<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            let chunk = self.replay.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefaced<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// How many streams one connection has open.
#[derive(Clone, Debug)]
pub(crate) struct OpenStreams(Arc<watch::Sender<usize>>);

impl OpenStreams {
    pub(crate) fn new() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }

    /// Counts a stream until the guard is dropped.
    pub(crate) fn open(&self) -> StreamGuard {
        // Waiters (`idle_for`) care only about the count leaving or reaching 0, and
        // only if there are any: most changes wake nobody.
        let sender = &self.0;
        sender.send_if_modified(|n| {
            *n += 1;
            *n == 1 && sender.receiver_count() > 0
        });
        StreamGuard(Arc::clone(&self.0))
    }

    /// Resolves once the connection has had no open stream for `limit`.
    pub(crate) async fn idle_for(&self, limit: Duration) {
        let mut streams = self.0.subscribe();
        loop {
            // The sender lives as long as `self`, so these waits cannot fail.
            let _ = streams.wait_for(|n| *n == 0).await;
            tokio::select! {
                () = tokio::time::sleep(limit) => return,
                _ = streams.changed() => {}
            }
        }
    }
}

/// One open stream; it closes when dropped (the response body's end, or the call's).
#[derive(Debug)]
pub(crate) struct StreamGuard(Arc<watch::Sender<usize>>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let sender = &self.0;
        sender.send_if_modified(|n| {
            *n = n.saturating_sub(1);
            *n == 0 && sender.receiver_count() > 0
        });
    }
}

/// A response body that holds its stream open until it is dropped.
pub(crate) struct Counted<B> {
    pub(crate) body: B,
    pub(crate) _stream: StreamGuard,
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_preface_read_ahead_is_read_again_first() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest")
            .await
            .unwrap();
        drop(client);
        let mut io = read_preface(server).await.unwrap();
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest");
    }
}
