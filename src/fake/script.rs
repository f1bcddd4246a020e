//! Scripts: what a reply resolves to for one call (headers, messages and the ending,
//! each at its instant), and how a reply's sequences, chances and responders resolve.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use tonic::Status;

use super::handler::Handler;
use super::reason::Reason;
use super::request::CallRequest;
use crate::metadata::{encode_binary, header_name};
use crate::rng::SplitMix64;

/// How a call ends once the messages are sent.
#[derive(Clone, Debug)]
pub(super) enum Ending {
    /// The handler's own result (only for handler replies).
    FromHandler,
    Status(Status),
    Hang,
    Reset(Reason),
}

/// One resolved reply: what the fake does for one call.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    pub(super) header_delay: Duration,
    pub(super) headers: HeaderMap,
    pub(super) messages: Vec<(Duration, Bytes)>,
    pub(super) ending: Ending,
    /// How long after the last message (or the headers) the ending comes.
    pub(super) ending_delay: Duration,
    pub(super) trailers: HeaderMap,
    /// An async function that produces the messages and the status instead of
    /// `messages` (which stays empty for handler replies).
    pub(super) handler: Option<Handler>,
    /// At most this many messages are sent; then the ending comes at once (abort).
    pub(super) max_messages: Option<usize>,
    /// Whether the request's `x-grpc-test-echo-initial` and
    /// `x-grpc-test-echo-trailing-bin` are echoed (the interop `custom_metadata` case).
    pub(super) echo_test_metadata: bool,
    /// Whether the ending waits for the client to half-close its request stream.
    pub(super) wait_for_half_close: bool,
    /// Mistakes made while building (bad header names or values); the call fails with
    /// INTERNAL naming them instead of panicking in the builder.
    pub(super) problems: Vec<String>,
}

impl Script {
    pub(super) fn from_status(status: Status) -> Self {
        Self::new(Ending::Status(status))
    }

    pub(super) fn hang() -> Self {
        Self::new(Ending::Hang)
    }

    /// No delay, headers or messages; then `ending`, after the client half-closes.
    pub(super) fn new(ending: Ending) -> Self {
        Self {
            header_delay: Duration::ZERO,
            headers: HeaderMap::new(),
            messages: Vec::new(),
            ending,
            ending_delay: Duration::ZERO,
            trailers: HeaderMap::new(),
            handler: None,
            max_messages: None,
            echo_test_metadata: false,
            wait_for_half_close: true,
            problems: Vec::new(),
        }
    }
}

/// What a reply is made of: one script, or a choice among replies made afresh for each
/// call (in turn, at random, or from the request).
#[derive(Clone)]
pub(super) enum Kind {
    Script(Box<Script>),
    Sequence {
        replies: Vec<Kind>,
        next: Arc<AtomicUsize>,
    },
    Chance {
        seed: u64,
        rng: Arc<Mutex<SplitMix64>>,
        probability: f64,
        hit: Box<Kind>,
        miss: Box<Kind>,
    },
    Dynamic(Arc<Responder>),
}

/// Builds the reply for a call from the call itself.
pub(super) type Responder = dyn Fn(&CallRequest) -> Kind + Send + Sync;

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Script(s) => f.debug_tuple("Script").field(s).finish(),
            Kind::Sequence { replies, .. } => {
                let replies: Vec<AsReply<'_>> = replies.iter().map(AsReply).collect();
                f.debug_tuple("Sequence").field(&replies).finish()
            }
            Kind::Chance {
                seed, probability, ..
            } => f
                .debug_struct("Chance")
                .field("seed", seed)
                .field("probability", probability)
                .finish(),
            Kind::Dynamic(_) => f.write_str("Dynamic"),
        }
    }
}

/// Shows a kind as the `Reply` it was given as, the way `Reply`'s derived `Debug` does.
struct AsReply<'a>(&'a Kind);

impl fmt::Debug for AsReply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reply").field(self.0).finish()
    }
}

impl Kind {
    /// The n-th call gets the n-th of `replies`, which must not be empty; once they are
    /// used up, the last one answers every later call.
    pub(super) fn sequence(replies: Vec<Kind>) -> Self {
        Kind::Sequence {
            replies,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// `hit` with `probability` (in 0..=1) and `miss` otherwise, drawn from a generator
    /// seeded with `seed`.
    pub(super) fn chance(seed: u64, probability: f64, hit: Kind, miss: Kind) -> Self {
        Kind::Chance {
            seed,
            rng: Arc::new(Mutex::new(SplitMix64::new(seed))),
            probability,
            hit: Box::new(hit),
            miss: Box::new(miss),
        }
    }

    /// Applies a change to every script this may resolve to.
    pub(super) fn map(self, f: impl Fn(&mut Script) + Clone + Send + Sync + 'static) -> Self {
        match self {
            Kind::Script(mut s) => {
                f(&mut s);
                Kind::Script(s)
            }
            Kind::Sequence { replies, next } => Kind::Sequence {
                replies: replies.into_iter().map(|r| r.map(f.clone())).collect(),
                next,
            },
            Kind::Chance {
                seed,
                rng,
                probability,
                hit,
                miss,
            } => Kind::Chance {
                seed,
                rng,
                probability,
                hit: Box::new(hit.map(f.clone())),
                miss: Box::new(miss.map(f)),
            },
            Kind::Dynamic(responder) => {
                Kind::Dynamic(Arc::new(move |req| responder(req).map(f.clone())))
            }
        }
    }

    /// Whether resolving needs the first request message.
    pub(super) fn needs_message(&self) -> bool {
        match self {
            Kind::Script(_) => false,
            Kind::Sequence { replies, .. } => replies.iter().any(Kind::needs_message),
            Kind::Chance { hit, miss, .. } => hit.needs_message() || miss.needs_message(),
            Kind::Dynamic(_) => true,
        }
    }

    /// Picks the script for the next call (advancing sequences and random generators).
    pub(super) fn resolve(&self, request: &CallRequest) -> Script {
        match self {
            Kind::Script(s) => (**s).clone(),
            Kind::Dynamic(responder) => responder(request).into_script(request),
            Kind::Sequence { replies, next } => {
                let i = next.fetch_add(1, Ordering::SeqCst).min(replies.len() - 1);
                replies[i].resolve(request)
            }
            Kind::Chance {
                rng,
                probability,
                hit,
                miss,
                ..
            } => {
                let draw = rng.lock().unwrap_or_else(|p| p.into_inner()).next_f64();
                if draw < *probability {
                    hit.resolve(request)
                } else {
                    miss.resolve(request)
                }
            }
        }
    }

    /// [`resolve`](Self::resolve) for a reply used once, as a responder's is: its one
    /// script is moved out, not copied.
    fn into_script(self, request: &CallRequest) -> Script {
        match self {
            Kind::Script(s) => *s,
            kind => kind.resolve(request),
        }
    }

    /// A short description for failure messages (names the seed of random replies).
    pub(super) fn describe(&self) -> String {
        match self {
            Kind::Script(s) => {
                let ending = match &s.ending {
                    Ending::Status(st) => format!("status {:?}", st.code()),
                    Ending::FromHandler => "the handler's status".to_string(),
                    Ending::Hang => "hang".to_string(),
                    Ending::Reset(r) => format!("reset {r:?}"),
                };
                format!("{} message(s) then {ending}", s.messages.len())
            }
            Kind::Sequence { replies, .. } => format!("sequence of {} replies", replies.len()),
            Kind::Chance {
                seed, probability, ..
            } => {
                format!("chance {probability} (seed {seed})")
            }
            Kind::Dynamic(_) => "a reply built from the request".to_string(),
        }
    }
}

/// Appends an ASCII metadata entry to `map`, or a problem naming `what` (`header` or
/// `trailer`) when the key or the value is invalid.
pub(super) fn add_ascii(
    map: &mut HeaderMap,
    problems: &mut Vec<String>,
    what: &str,
    key: &str,
    value: &str,
) {
    let name = match header_name(key, false) {
        Ok(name) => name,
        Err(e) => return problems.push(format!("{what} {e}")),
    };
    match HeaderValue::from_str(value) {
        Ok(v) if value.bytes().all(|b| (0x20..=0x7e).contains(&b)) => {
            map.append(name, v);
        }
        _ => problems.push(format!(
            "{what} {key:?}: value {value:?} is not printable ASCII (0x20-0x7E); use a -bin key for bytes"
        )),
    }
}

/// Appends a binary metadata entry to `map` as unpadded base64, or a problem naming
/// `what` when the key is invalid or does not end in `-bin`.
pub(super) fn add_binary(
    map: &mut HeaderMap,
    problems: &mut Vec<String>,
    what: &str,
    key: &str,
    value: &[u8],
) {
    match header_name(key, true) {
        Ok(name) => {
            // Base64 is always a valid header value.
            if let Ok(v) = HeaderValue::from_str(&encode_binary(value)) {
                map.append(name, v);
            }
        }
        Err(e) => problems.push(format!("{what} {e}")),
    }
}
