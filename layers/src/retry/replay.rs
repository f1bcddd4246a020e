//! The request body, buffered so that later attempts can send it again.
//!
//! One source body feeds every attempt. Frames read from it are kept (up to a limit)
//! and each attempt's [`AttemptBody`] sends the kept frames first, then reads on from
//! the source itself. Past the limit, the attempt that read that far is committed: the
//! buffer is dropped and no other attempt can send the whole request any more.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use tonic::Status;

/// A list whose first item sits in place: the common case (one waiter, a unary
/// request's one frame) allocates nothing.
struct FirstThenRest<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for FirstThenRest<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> FirstThenRest<T> {
    fn push(&mut self, item: T) {
        match self.first {
            None => self.first = Some(item),
            Some(_) => self.rest.push(item),
        }
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        match index {
            0 => self.first.as_mut(),
            _ => self.rest.get_mut(index - 1),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }

    fn into_items(self) -> impl Iterator<Item = T> {
        self.first.into_iter().chain(self.rest)
    }
}

/// Wakes every attempt body waiting on the source, not only the last to poll it: with
/// hedging, several may wait at once (a hedged call that succeeds before its next
/// attempt has only one).
#[derive(Default)]
struct Waiters(Mutex<FirstThenRest<Waker>>);

impl Waiters {
    fn add(&self, waker: &Waker) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }
}

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let list = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        list.into_items().for_each(Waker::wake);
    }
}

struct State {
    source: tonic::body::Body,
    /// The data frames read so far, while the call is not committed.
    kept: FirstThenRest<Bytes>,
    trailers: Option<HeaderMap>,
    ended: bool,
    failed: Option<Status>,
    size: usize,
    limit: usize,
    /// The attempt every other one must give way to.
    committed: Option<u32>,
    /// Attempts that have their verdict: their bodies stop (bit `n` for attempt `n`).
    abandoned: u64,
    wakers: Wakers,
}

/// Whom the source's progress, and a commit or abandonment, wakes.
enum Wakers {
    /// Hedging: every attempt body waiting on the source, through one waker of the
    /// call's own that the source is polled with.
    Shared { waiters: Arc<Waiters>, waker: Waker },
    /// Retries: one attempt at a time reads the source, so it is polled with that
    /// attempt's own waker, and the last one is kept for a commit or abandonment.
    Last(Option<Waker>),
}

impl Wakers {
    fn wake(&mut self) {
        match self {
            Wakers::Shared { waker, .. } => waker.wake_by_ref(),
            Wakers::Last(last) => {
                if let Some(waker) = last.take() {
                    waker.wake();
                }
            }
        }
    }
}

/// The request body of one call, shared by its attempts.
#[derive(Clone)]
pub(crate) struct Replay(Arc<Mutex<State>>);

impl Replay {
    /// `concurrent`: whether several attempts may read at once (hedging).
    pub(crate) fn new(source: tonic::body::Body, limit: usize, concurrent: bool) -> Self {
        let wakers = if concurrent {
            let waiters = Arc::new(Waiters::default());
            Wakers::Shared {
                waker: Waker::from(waiters.clone()),
                waiters,
            }
        } else {
            Wakers::Last(None)
        };
        Self(Arc::new(Mutex::new(State {
            source,
            kept: FirstThenRest::default(),
            trailers: None,
            ended: false,
            failed: None,
            size: 0,
            limit,
            committed: None,
            abandoned: 0,
            wakers,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The body attempt `number` sends.
    pub(crate) fn body(&self, number: u32) -> AttemptBody {
        AttemptBody {
            replay: self.clone(),
            number,
            next: 0,
            trailers_sent: false,
        }
    }

    /// Commits the call to attempt `number` (its response headers arrived), unless
    /// another attempt was committed first: then `false`. The other attempts' bodies
    /// are woken to fail, and nothing more is kept for replay.
    pub(crate) fn commit(&self, number: u32) -> bool {
        let mut state = self.lock();
        if *state.committed.get_or_insert(number) != number {
            return false;
        }
        state.wakers.wake();
        true
    }

    /// Attempt `number` has its verdict (it failed): its body stops, so that it can
    /// neither take more of the request nor commit the call by overflowing the buffer.
    pub(crate) fn abandon(&self, number: u32) {
        let mut state = self.lock();
        state.abandoned |= 1u64.checked_shl(number).unwrap_or(0);
        state.wakers.wake();
    }

    /// The attempt the call is committed to, if any.
    pub(crate) fn committed(&self) -> Option<u32> {
        self.lock().committed
    }
}

/// The request body of one attempt.
pub(crate) struct AttemptBody {
    replay: Replay,
    number: u32,
    /// The index in `kept` of the next frame to send.
    next: usize,
    trailers_sent: bool,
}

impl AttemptBody {
    fn superseded() -> Status {
        Status::cancelled("another attempt of this call was committed")
    }
}

impl Body for AttemptBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let mut state = this.replay.lock();
        let state = &mut *state;
        let abandoned = state.abandoned & 1u64.checked_shl(this.number).unwrap_or(0) != 0;
        if abandoned || state.committed.is_some_and(|n| n != this.number) {
            return Poll::Ready(Some(Err(AttemptBody::superseded())));
        }
        let committed = state.committed == Some(this.number);
        if let Some(kept) = state.kept.get_mut(this.next) {
            this.next += 1;
            // Once the call is this attempt's, nobody replays what it has sent.
            let data = if committed {
                std::mem::take(kept)
            } else {
                kept.clone()
            };
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(status) = &state.failed {
            return Poll::Ready(Some(Err(status.clone())));
        }
        if state.ended {
            return Poll::Ready(match (&state.trailers, this.trailers_sent) {
                (Some(trailers), false) => {
                    this.trailers_sent = true;
                    Some(Ok(Frame::trailers(trailers.clone())))
                }
                _ => None,
            });
        }
        let polled = match &mut state.wakers {
            Wakers::Shared { waiters, waker } => {
                waiters.add(cx.waker());
                Pin::new(&mut state.source).poll_frame(&mut Context::from_waker(waker))
            }
            Wakers::Last(last) => {
                if !last.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *last = Some(cx.waker().clone());
                }
                Pin::new(&mut state.source).poll_frame(cx)
            }
        };
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                state.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(status))) => {
                state.failed = Some(status.clone());
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    state.size += data.len();
                    if committed {
                        // The call is this attempt's: the data only passes through.
                    } else if state.size > state.limit {
                        // Past the limit: the call becomes this attempt's (nothing else
                        // was committed, or the check above would have failed), the
                        // buffer goes, and the other attempts' bodies fail at once.
                        state.committed = Some(this.number);
                        state.kept = FirstThenRest::default();
                        state.wakers.wake();
                    } else {
                        state.kept.push(data.clone());
                        this.next += 1;
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        state.trailers = Some(trailers.clone());
                        state.ended = true;
                        this.trailers_sent = true;
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    // No other kind of frame exists; skip it.
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            },
        }
    }
}
