//! gRPC length-prefixed message framing (PROTOCOL-HTTP2.md: `Length-Prefixed-Message`):
//! a 1-byte compressed flag, a 4-byte big-endian length, then the message.
//!
//! [`encode`] frames one message; [`FrameReader`] finds the messages in a byte stream
//! whatever the chunking of the DATA frames, without copying a byte unless asked to;
//! [`split_message`] takes whole framed messages off a buffer.
//!
//! ```
//! use tonic_layers::framing::{encode, FrameReader, Step};
//!
//! let wire = [encode(b"hi"), encode(b"")].concat();
//! let mut reader = FrameReader::capturing();
//! let mut seen = Vec::new();
//! for chunk in wire.chunks(3) {
//!     let mut data = chunk;
//!     while let Some(step) = reader.read(&mut data) {
//!         if let Step::Message(m) = step {
//!             seen.push((m.index(), m.bytes().unwrap().to_vec()));
//!         }
//!     }
//! }
//! assert_eq!(seen, vec![(1, b"hi".to_vec()), (2, vec![])]);
//! assert_eq!(reader.pending(), 0);
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// The prefix: a compressed flag and a big-endian length.
pub const PREFIX_LEN: usize = 5;

/// Frames one uncompressed message.
///
/// # Panics
/// Never for messages under 4 GiB; a longer one cannot be framed and its length wraps,
/// so callers cap sizes first (gRPC implementations cap them far lower).
///
/// ```
/// assert_eq!(&tonic_layers::framing::encode(b"ab")[..], &[0, 0, 0, 0, 2, b'a', b'b']);
/// ```
pub fn encode(message: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + message.len());
    buf.put_u8(0);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.freeze()
}

/// Takes one whole framed message, prefix included, off the front of `buffer`; `None`
/// (leaving the buffer as it is) until all of it is there. For a relay that passes
/// messages on framed, as they came.
///
/// ```
/// use bytes::BytesMut;
/// use tonic_layers::framing::{encode, split_message};
///
/// let mut buffer = BytesMut::from(&[encode(b"hi"), encode(b"there")].concat()[..9]);
/// assert_eq!(split_message(&mut buffer).as_deref(), Some(&encode(b"hi")[..]));
/// assert_eq!(split_message(&mut buffer), None);
/// assert_eq!(buffer.len(), 2);
/// ```
pub fn split_message(buffer: &mut BytesMut) -> Option<Bytes> {
    if buffer.len() < PREFIX_LEN {
        return None;
    }
    let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
    (buffer.len() - PREFIX_LEN >= len).then(|| buffer.split_to(PREFIX_LEN + len).freeze())
}

/// A message's prefix, as soon as its 5 bytes have arrived (before the message itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Prefix {
    /// The compressed flag byte: 0 or 1 by the spec; anything else is the peer's error.
    pub flag: u8,
    /// The message length the prefix declares.
    pub len: usize,
}

/// One whole message, as [`FrameReader`] saw it.
#[derive(Debug)]
pub struct Message<'a> {
    index: u64,
    prefix: Prefix,
    captured: Option<&'a mut BytesMut>,
}

impl Message<'_> {
    /// Its 1-based position in the stream.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Its length in bytes, without the prefix.
    pub fn len(&self) -> usize {
        self.prefix.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.prefix.len == 0
    }

    /// Whether its compressed flag is set.
    pub fn compressed(&self) -> bool {
        self.prefix.flag != 0
    }

    /// Its bytes, when the reader captures them.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.captured.as_deref().map(|b| &b[..])
    }

    /// Takes its bytes without a copy, when the reader captures them.
    pub fn take(self) -> Option<Bytes> {
        self.captured.map(|b| b.split().freeze())
    }
}

/// What [`FrameReader::read`] found.
#[derive(Debug)]
pub enum Step<'a> {
    /// A prefix arrived; its message follows (or is empty, and follows at once).
    Prefix(Prefix),
    /// A message is complete.
    Message(Message<'a>),
}

/// What [`FrameReader::advance`] found: [`Step`] without the borrow.
#[derive(Clone, Copy)]
enum Found {
    Prefix(Prefix),
    Message(Prefix),
}

/// Reads gRPC messages out of a byte stream fed in chunks of any size: a chunk may hold
/// part of a message, or several.
#[derive(Debug, Default)]
pub struct FrameReader {
    prefix: [u8; PREFIX_LEN],
    /// Prefix bytes read of the current message; `PREFIX_LEN` once its body is read.
    filled: usize,
    /// The current message's prefix, once complete, and the body bytes still to come.
    current: Option<(Prefix, usize)>,
    index: u64,
    capture: Option<BytesMut>,
}

impl FrameReader {
    /// A reader that counts messages and their sizes, and keeps no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader that also keeps each message's bytes ([`Message::bytes`]).
    pub fn capturing() -> Self {
        Self {
            capture: Some(BytesMut::new()),
            ..Self::default()
        }
    }

    /// Consumes `data` up to the next prefix or whole message and says which, or uses it
    /// all and returns `None`. Call it until it returns `None` for each chunk.
    pub fn read(&mut self, data: &mut &[u8]) -> Option<Step<'_>> {
        Some(match self.advance(data)? {
            Found::Prefix(prefix) => Step::Prefix(prefix),
            Found::Message(prefix) => Step::Message(self.message(prefix)),
        })
    }

    /// Consumes `data` up to the end of the next whole message and returns it, or uses it
    /// all and returns `None`: [`read`](Self::read) without its prefix steps. A reader
    /// that keeps no bytes takes a message that lies whole in `data` in one step.
    ///
    /// ```
    /// use tonic_layers::framing::{encode, FrameReader};
    ///
    /// let wire = [encode(b"hi"), encode(b"there")].concat();
    /// let (mut reader, mut data) = (FrameReader::new(), &wire[..9]);
    /// assert_eq!(reader.next_message(&mut data).map(|m| m.len()), Some(2));
    /// assert_eq!(reader.next_message(&mut data).map(|m| m.len()), None);
    /// let mut data = &wire[9..];
    /// assert_eq!(reader.next_message(&mut data).map(|m| (m.index(), m.len())), Some((2, 5)));
    /// assert_eq!(reader.pending(), 0);
    /// ```
    pub fn next_message(&mut self, data: &mut &[u8]) -> Option<Message<'_>> {
        loop {
            // Nothing to read, and no empty message due: the common last call, answered
            // without the general reader.
            if data.is_empty() && !matches!(self.current, Some((_, 0))) {
                return None;
            }
            if self.current.is_none()
                && self.filled == 0
                && self.capture.is_none()
                && let Some((&[flag, a, b, c, d], rest)) = data.split_first_chunk::<PREFIX_LEN>()
            {
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                if let Some(after) = rest.get(len..) {
                    *data = after;
                    self.index += 1;
                    return Some(self.message(Prefix { flag, len }));
                }
            }
            if let Found::Message(prefix) = self.advance(data)? {
                return Some(self.message(prefix));
            }
        }
    }

    /// The message just completed, numbered.
    fn message(&mut self, prefix: Prefix) -> Message<'_> {
        Message {
            index: self.index,
            prefix,
            captured: self.capture.as_mut(),
        }
    }

    /// [`read`](Self::read)'s work, returning what it found without borrowing the
    /// captured bytes.
    fn advance(&mut self, data: &mut &[u8]) -> Option<Found> {
        loop {
            match self.current {
                None => {
                    if data.is_empty() {
                        return None;
                    }
                    let n = (PREFIX_LEN - self.filled).min(data.len());
                    self.prefix[self.filled..self.filled + n].copy_from_slice(&data[..n]);
                    self.filled += n;
                    *data = &data[n..];
                    if self.filled == PREFIX_LEN {
                        let [flag, a, b, c, d] = self.prefix;
                        let prefix = Prefix {
                            flag,
                            len: u32::from_be_bytes([a, b, c, d]) as usize,
                        };
                        self.current = Some((prefix, prefix.len));
                        if let Some(capture) = &mut self.capture {
                            capture.clear();
                        }
                        return Some(Found::Prefix(prefix));
                    }
                }
                Some((prefix, 0)) => {
                    self.current = None;
                    self.filled = 0;
                    self.index += 1;
                    return Some(Found::Message(prefix));
                }
                Some((prefix, remaining)) => {
                    if data.is_empty() {
                        return None;
                    }
                    let n = remaining.min(data.len());
                    if let Some(capture) = &mut self.capture {
                        capture.extend_from_slice(&data[..n]);
                    }
                    *data = &data[n..];
                    self.current = Some((prefix, remaining - n));
                }
            }
        }
    }

    /// Bytes of an unfinished message read so far (prefix included): 0 when the stream
    /// is between messages, as it must be when it ends.
    pub fn pending(&self) -> usize {
        match self.current {
            None => self.filled,
            Some((prefix, remaining)) => PREFIX_LEN + prefix.len - remaining,
        }
    }

    /// How many whole messages have been read.
    pub fn messages(&self) -> u64 {
        self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(reader: &mut FrameReader, wire: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            let mut data = piece;
            while let Some(step) = reader.read(&mut data) {
                if let Step::Message(m) = step {
                    out.push(m.take().unwrap().to_vec());
                }
            }
        }
        out
    }

    #[test]
    fn reassembles_messages_across_any_chunking() {
        let wire = [encode(b"hello"), encode(b""), encode(b"world!")].concat();
        for chunk in 1..wire.len() {
            let mut reader = FrameReader::capturing();
            assert_eq!(
                messages(&mut reader, &wire, chunk),
                vec![&b"hello"[..], b"", b"world!"],
                "chunk size {chunk}"
            );
            assert_eq!(reader.pending(), 0);
            assert_eq!(reader.messages(), 3);
        }
    }

    #[test]
    fn every_split_into_two_chunks_gives_the_same_messages() {
        let wire = [encode(b"abc"), encode(b""), encode(b"hello world")].concat();
        for split in 0..=wire.len() {
            let mut reader = FrameReader::capturing();
            let mut out = messages(&mut reader, &wire[..split], wire.len().max(1));
            out.extend(messages(&mut reader, &wire[split..], wire.len().max(1)));
            assert_eq!(
                out,
                vec![&b"abc"[..], b"", b"hello world"],
                "split at {split}"
            );
        }
    }

    #[test]
    fn reports_the_prefix_before_the_body_and_what_is_left_over() {
        let mut reader = FrameReader::new();
        let mut data: &[u8] = &[1, 0, 0, 0, 9, 7];
        match reader.read(&mut data) {
            Some(Step::Prefix(p)) => assert_eq!(p, Prefix { flag: 1, len: 9 }),
            other => panic!("{other:?}"),
        }
        assert!(reader.read(&mut data).is_none());
        assert_eq!(reader.pending(), 6);
        let mut rest: &[u8] = &[0; 8];
        match reader.read(&mut rest) {
            Some(Step::Message(m)) => {
                assert!(m.compressed());
                assert_eq!((m.index(), m.len(), m.bytes()), (1, 9, None));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rest.len(), 0);
        assert_eq!(reader.pending(), 0);
    }

    /// Each message's (index, length, flag) and what is left pending, as `read` sees it.
    fn by_steps(reader: &mut FrameReader, chunks: &[&[u8]]) -> (Vec<(u64, usize, bool)>, usize) {
        let mut seen = Vec::new();
        for chunk in chunks {
            let mut data = *chunk;
            while let Some(step) = reader.read(&mut data) {
                if let Step::Message(m) = step {
                    seen.push((m.index(), m.len(), m.compressed()));
                }
            }
        }
        (seen, reader.pending())
    }

    /// The same, as `next_message` sees it.
    fn by_messages(reader: &mut FrameReader, chunks: &[&[u8]]) -> (Vec<(u64, usize, bool)>, usize) {
        let mut seen = Vec::new();
        for chunk in chunks {
            let mut data = *chunk;
            while let Some(m) = reader.next_message(&mut data) {
                seen.push((m.index(), m.len(), m.compressed()));
            }
        }
        (seen, reader.pending())
    }

    proptest::proptest! {
        #[test]
        fn next_message_sees_what_read_sees_whatever_the_chunking(
            messages in proptest::collection::vec((proptest::collection::vec(proptest::num::u8::ANY, 0..40), proptest::bool::ANY), 0..6),
            cuts in proptest::collection::vec(0usize..300, 0..8),
            truncate in 0usize..10,
        ) {
            let mut wire: Vec<u8> = Vec::new();
            for (body, compressed) in &messages {
                wire.push(u8::from(*compressed));
                wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
                wire.extend_from_slice(body);
            }
            wire.truncate(wire.len().saturating_sub(truncate));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(wire.len())).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &wire[w[0]..w[1]]).collect();
            for capturing in [false, true] {
                let reader = || if capturing { FrameReader::capturing() } else { FrameReader::new() };
                proptest::prop_assert_eq!(
                    by_messages(&mut reader(), &chunks),
                    by_steps(&mut reader(), &chunks)
                );
            }
        }
    }
}
