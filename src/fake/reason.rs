//! HTTP/2 error codes (RFC 9113 §7), the reason a stream reset carries.

use std::fmt;

/// The error code of an HTTP/2 `RST_STREAM`: what [`Reply::reset`](crate::fake::Reply::reset)
/// sends and what [`CallEnding::Reset`](crate::fake::CallEnding::Reset) records. Codes
/// outside the table are kept as they are (a peer may send any 32-bit value).
///
/// ```
/// use grpc_chaos::fake::Reason;
/// assert_eq!(Reason::CANCEL.code(), 8);
/// assert_eq!(Reason::from(8), Reason::CANCEL);
/// assert_eq!(Reason::REFUSED_STREAM.to_string(), "REFUSED_STREAM (7)");
/// assert_eq!(Reason::from(0x99).to_string(), "unknown (153)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(u32);

impl Reason {
    /// Graceful: not an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// An implementation fault.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// The peer broke flow control.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// A SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// A frame arrived after the stream was half-closed.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// A frame of the wrong size.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// The stream was refused before any processing: safe to retry (gRPC: UNAVAILABLE).
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// The stream is no longer needed (gRPC: CANCELLED).
    pub const CANCEL: Self = Self(0x8);
    /// The header compression context failed.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// A CONNECT tunnel failed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// The peer is generating too much load (gRPC: RESOURCE_EXHAUSTED).
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// The transport's security is too weak (gRPC: PERMISSION_DENIED).
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// HTTP/1.1 is required instead.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    const NAMES: [&'static str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];

    /// The code as sent on the wire.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// The code's name in RFC 9113, or `None` for a code outside its table.
    ///
    /// ```
    /// assert_eq!(grpc_chaos::fake::Reason::CANCEL.name(), Some("CANCEL"));
    /// ```
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.get(self.0 as usize).copied()
    }

    /// The code by its name in RFC 9113 (`"CANCEL"`), as scenario files write it.
    ///
    /// ```
    /// use grpc_chaos::fake::Reason;
    /// assert_eq!(Reason::from_name("ENHANCE_YOUR_CALM"), Some(Reason::ENHANCE_YOUR_CALM));
    /// assert_eq!(Reason::from_name("cancel"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self(i as u32))
    }

    /// The h2 value hyper resets a stream with.
    pub(crate) fn to_h2(self) -> h2::Reason {
        h2::Reason::from(self.0)
    }
}

impl From<u32> for Reason {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Reason({})", self.0),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name().unwrap_or("unknown"), self.0)
    }
}
