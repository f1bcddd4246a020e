//! Matchers: what a stub checks about a call before it answers: the [`Match`] trait
//! and the built-in matchers.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use regex::Regex;

use super::request::CallRequest;

/// A condition on a call. Implement it for your own matchers, or pass a closure.
///
/// ```
/// use grpc_chaos::fake::{CallRequest, Match};
///
/// struct FromTenant(&'static str);
/// impl Match for FromTenant {
///     fn matches(&self, req: &CallRequest) -> bool {
///         req.ascii_values("x-tenant").contains(&self.0)
///     }
///     fn describe(&self) -> String {
///         format!("tenant {}", self.0)
///     }
/// }
/// ```
pub trait Match: Send + Sync + 'static {
    /// Whether the call matches.
    fn matches(&self, request: &CallRequest) -> bool;

    /// A short description for failure messages.
    fn describe(&self) -> String {
        "custom matcher".to_string()
    }

    /// Whether this matcher needs [`CallRequest::first_message`].
    fn needs_message(&self) -> bool {
        false
    }

    /// What the call carried where this matcher looked, for the message of a call no stub
    /// matched: `received "red"`. `None` (the default) shows nothing. The built-in
    /// matchers redact `authorization` values and `-bin` bytes.
    ///
    /// ```
    /// use grpc_chaos::fake::{metadata, CallRequest, Match};
    /// let request = CallRequest::new("/pb.Greeter/SayHello").with_metadata("x-tenant", "red");
    /// assert_eq!(metadata("x-tenant", "blue").received(&request).unwrap(), r#"received "red""#);
    /// ```
    fn received(&self, request: &CallRequest) -> Option<String> {
        let _ = request;
        None
    }

    /// The one method path (`/package.Service/Method`) this matcher accepts, if it
    /// accepts no other: the server then looks at the stub only for calls to that path,
    /// instead of trying every stub on every call. [`method`] says so; the default,
    /// `None`, is always correct.
    ///
    /// ```
    /// use grpc_chaos::fake::{method, service, Match};
    /// assert_eq!(method("pb.Greeter/SayHello").only_method(), Some("/pb.Greeter/SayHello"));
    /// assert_eq!(service("pb.Greeter").only_method(), None);
    /// ```
    fn only_method(&self) -> Option<&str> {
        None
    }
}

impl<F> Match for F
where
    F: Fn(&CallRequest) -> bool + Send + Sync + 'static,
{
    fn matches(&self, request: &CallRequest) -> bool {
        self(request)
    }
}

/// A boxed matcher is a matcher, so matchers chosen at run time can be stored and
/// combined.
///
/// ```
/// use grpc_chaos::fake::{method, service, CallRequest, Match};
/// let ms: Vec<Box<dyn Match>> = vec![Box::new(method("/pb.Greeter/SayHello")), Box::new(service("pb.Greeter"))];
/// let req = CallRequest::new("/pb.Greeter/SayHello");
/// assert!(ms.iter().all(|m| m.matches(&req)));
/// assert_eq!(ms[0].describe(), method("/pb.Greeter/SayHello").describe());
/// ```
impl Match for Box<dyn Match> {
    fn matches(&self, request: &CallRequest) -> bool {
        (**self).matches(request)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn needs_message(&self) -> bool {
        (**self).needs_message()
    }
    fn received(&self, request: &CallRequest) -> Option<String> {
        (**self).received(request)
    }
    fn only_method(&self) -> Option<&str> {
        (**self).only_method()
    }
}

/// A matcher with its own description, from a closure.
///
/// ```
/// use grpc_chaos::fake::{custom, Stub, Reply};
/// let stub = Stub::given(custom("long path", |req| req.method.len() > 20)).respond_with(Reply::empty());
/// ```
pub fn custom(
    description: impl Into<String>,
    f: impl Fn(&CallRequest) -> bool + Send + Sync + 'static,
) -> impl Match {
    Custom {
        description: description.into(),
        f,
    }
}

struct Custom<F> {
    description: String,
    f: F,
}

impl<F: Fn(&CallRequest) -> bool + Send + Sync + 'static> Match for Custom<F> {
    fn matches(&self, request: &CallRequest) -> bool {
        (self.f)(request)
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Matches every call.
///
/// ```
/// use grpc_chaos::fake::{any, Reply, Stub};
/// let stub = Stub::given(any()).respond_with(Reply::error(tonic::Code::Unavailable, "down"));
/// ```
pub fn any() -> impl Match {
    custom("any call", |_| true)
}

/// Matches one method by its full path, `/package.Service/Method` (the leading `/` may be left out).
///
/// ```
/// use grpc_chaos::fake::method;
/// let m = method("pb.Greeter/SayHello");
/// ```
pub fn method(path: impl Into<String>) -> impl Match {
    let path = path.into();
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    PathIs(path)
}

struct PathIs(String);

impl Match for PathIs {
    fn matches(&self, request: &CallRequest) -> bool {
        request.method == self.0
    }
    fn describe(&self) -> String {
        format!("method == {:?}", self.0)
    }
    fn only_method(&self) -> Option<&str> {
        Some(&self.0)
    }
}

/// Matches every method of one service, `package.Service`.
///
/// ```
/// use grpc_chaos::fake::service;
/// let m = service("pb.Greeter");
/// ```
pub fn service(name: impl Into<String>) -> impl Match {
    let prefix = format!("/{}/", name.into().trim_matches('/'));
    custom(
        format!("service == {:?}", prefix.trim_matches('/')),
        move |req| req.method.starts_with(&prefix),
    )
}

/// Matches paths against a regular expression.
///
/// # Panics
/// When the pattern does not compile, naming it: a test's own pattern is part of the
/// test. For a pattern from input, use [`try_path_regex`].
///
/// ```
/// use grpc_chaos::fake::{path_regex, CallRequest, Match};
/// let m = path_regex(r"^/pb\.Greeter/SayHello.*$");
/// assert!(m.matches(&CallRequest::new("/pb.Greeter/SayHelloStream")));
/// ```
#[track_caller]
pub fn path_regex(pattern: &str) -> impl Match + use<> {
    try_path_regex(pattern).unwrap_or_else(|e| panic!("grpc-chaos: path_regex: {e}"))
}

/// [`path_regex`] for a pattern that may not compile.
///
/// # Errors
/// The regex's own error when the pattern does not compile.
///
/// ```
/// assert!(grpc_chaos::fake::try_path_regex("(").is_err());
/// ```
pub fn try_path_regex(pattern: &str) -> Result<impl Match + use<>, regex::Error> {
    let re = Regex::new(pattern)?;
    Ok(custom(format!("path matches /{pattern}/"), move |req| {
        re.is_match(&req.method)
    }))
}

/// Matches when one of the ASCII values of `key` equals `value`.
///
/// ```
/// use grpc_chaos::fake::metadata;
/// let m = metadata("x-tenant", "blue");
/// ```
pub fn metadata(key: impl Into<String>, value: impl Into<String>) -> impl Match {
    let (key, value) = (key.into().to_ascii_lowercase(), value.into());
    on_key(
        format!("metadata {key:?} == {value:?}"),
        key,
        move |req, key| req.ascii_values(key).contains(&value.as_str()),
    )
}

/// Matches when the request has `key` (ASCII or `-bin`).
///
/// ```
/// use grpc_chaos::fake::metadata_exists;
/// let m = metadata_exists("authorization");
/// ```
pub fn metadata_exists(key: impl Into<String>) -> impl Match {
    let key = key.into().to_ascii_lowercase();
    on_key(format!("metadata {key:?} exists"), key, |req, key| {
        if key.ends_with("-bin") {
            req.metadata.get_bin(key).is_some()
        } else {
            req.metadata.get(key).is_some()
        }
    })
}

/// Matches when the request does not have `key`.
///
/// ```
/// use grpc_chaos::fake::metadata_absent;
/// let m = metadata_absent("authorization");
/// ```
pub fn metadata_absent(key: impl Into<String>) -> impl Match {
    let key = key.into().to_ascii_lowercase();
    on_key(format!("metadata {key:?} is absent"), key, |req, key| {
        req.metadata.get(key).is_none() && req.metadata.get_bin(key).is_none()
    })
}

/// Matches when one of the ASCII values of `key` matches a regular expression.
///
/// # Panics
/// When the pattern does not compile, naming it. For a pattern from input, use
/// [`try_metadata_regex`].
///
/// ```
/// use grpc_chaos::fake::{metadata_regex, CallRequest, Match};
/// let m = metadata_regex("authorization", "^Bearer .+$");
/// let request = CallRequest::new("/pb.Greeter/SayHello").with_metadata("authorization", "Bearer t0k3n");
/// assert!(m.matches(&request));
/// ```
#[track_caller]
pub fn metadata_regex(key: impl Into<String>, pattern: &str) -> impl Match {
    try_metadata_regex(key, pattern).unwrap_or_else(|e| panic!("grpc-chaos: metadata_regex: {e}"))
}

/// [`metadata_regex`] for a pattern that may not compile.
///
/// # Errors
/// The regex's own error when the pattern does not compile.
///
/// ```
/// assert!(grpc_chaos::fake::try_metadata_regex("x-tenant", "(").is_err());
/// ```
pub fn try_metadata_regex(
    key: impl Into<String>,
    pattern: &str,
) -> Result<impl Match, regex::Error> {
    let re = Regex::new(pattern)?;
    let key = key.into().to_ascii_lowercase();
    Ok(on_key(
        format!("metadata {key:?} matches /{pattern}/"),
        key,
        move |req, key| req.ascii_values(key).iter().any(|v| re.is_match(v)),
    ))
}

/// Matches when one of the values of the `-bin` key `key` decodes to `bytes`
/// (padded or unpadded base64, as the spec requires a receiver to accept).
///
/// ```
/// use grpc_chaos::fake::metadata_bin;
/// let m = metadata_bin("trace-bin", [1u8, 2, 3]);
/// ```
pub fn metadata_bin(key: impl Into<String>, bytes: impl AsRef<[u8]>) -> impl Match {
    let (key, bytes) = (key.into().to_ascii_lowercase(), bytes.as_ref().to_vec());
    on_key(
        format!("binary metadata {key:?} == {bytes:?}"),
        key,
        move |req, key| req.binary_values(key).contains(&bytes),
    )
}

/// Keys whose values are secrets: a failure message shows only their length.
const SECRET_KEYS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// A matcher on one metadata key, whose failure message shows that key's values.
fn on_key(
    description: String,
    key: String,
    f: impl Fn(&CallRequest, &str) -> bool + Send + Sync + 'static,
) -> impl Match {
    OnKey {
        description,
        key,
        f,
    }
}

struct OnKey<F> {
    description: String,
    key: String,
    f: F,
}

impl<F: Fn(&CallRequest, &str) -> bool + Send + Sync + 'static> Match for OnKey<F> {
    fn matches(&self, request: &CallRequest) -> bool {
        (self.f)(request, &self.key)
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
    fn received(&self, request: &CallRequest) -> Option<String> {
        let values: Vec<String> = if self.key.ends_with("-bin") {
            let values = request.binary_values(&self.key);
            values
                .iter()
                .map(|v| format!("<{} bytes>", v.len()))
                .collect()
        } else if SECRET_KEYS.contains(&self.key.as_str()) {
            let values = request.ascii_values(&self.key);
            values
                .iter()
                .map(|v| format!("<redacted, {} bytes>", v.len()))
                .collect()
        } else {
            let values = request.ascii_values(&self.key);
            values.iter().map(|v| format!("{v:?}")).collect()
        };
        Some(match values.is_empty() {
            true => "received none".to_string(),
            false => format!("received {}", values.join(", ")),
        })
    }
}

/// Matches when the first request message decodes as `T` and the predicate holds.
///
/// For streaming requests this is the first message; a request stream that ends
/// without a message does not match.
///
/// ```
/// use grpc_chaos::fake::message;
/// use grpc_chaos::pb::HelloRequest;
/// let m = message(|req: &HelloRequest| req.name == "Ada");
/// ```
pub fn message<T, F>(predicate: F) -> impl Match
where
    T: prost::Message + Default + fmt::Debug + 'static,
    F: Fn(&T) -> bool + Send + Sync + 'static,
{
    MessageIs {
        predicate,
        description: None,
        _t: PhantomData::<fn() -> T>,
    }
}

/// Matches when the first request message decodes as `T` and equals `expected`.
///
/// ```
/// use grpc_chaos::fake::message_eq;
/// use grpc_chaos::pb::HelloRequest;
/// let m = message_eq(HelloRequest { name: "Ada".into() });
/// ```
pub fn message_eq<T>(expected: T) -> impl Match
where
    T: prost::Message + Default + PartialEq + fmt::Debug + Send + Sync + 'static,
{
    let description = format!("message == {expected:?}");
    MessageIs {
        predicate: move |m: &T| *m == expected,
        description: Some(description),
        _t: PhantomData::<fn() -> T>,
    }
}

struct MessageIs<T, F> {
    predicate: F,
    description: Option<String>,
    _t: PhantomData<fn() -> T>,
}

impl<T, F> Match for MessageIs<T, F>
where
    T: prost::Message + Default + fmt::Debug + 'static,
    F: Fn(&T) -> bool + Send + Sync + 'static,
{
    fn matches(&self, request: &CallRequest) -> bool {
        request
            .first_message
            .as_ref()
            .and_then(|bytes| T::decode(bytes.clone()).ok())
            .is_some_and(|m| (self.predicate)(&m))
    }
    fn describe(&self) -> String {
        self.description
            .clone()
            .unwrap_or_else(|| format!("message predicate on {}", std::any::type_name::<T>()))
    }
    fn needs_message(&self) -> bool {
        true
    }
    fn received(&self, request: &CallRequest) -> Option<String> {
        Some(received_message::<T>(request))
    }
}

/// What a diagnosis says of a call whose first message it does not have.
pub(crate) const NO_MESSAGE: &str =
    "received no message, or it was not read because no stub could match without it";

/// What a call's first message was, decoded as `T` where it decodes.
fn received_message<T: prost::Message + Default + fmt::Debug>(request: &CallRequest) -> String {
    match &request.first_message {
        None => NO_MESSAGE.to_string(),
        Some(bytes) => match T::decode(bytes.clone()) {
            Ok(message) => format!("received {message:?}"),
            Err(_) => format!(
                "received {} bytes that do not decode as {}",
                bytes.len(),
                std::any::type_name::<T>()
            ),
        },
    }
}

/// Matches calls that carry a valid `grpc-timeout` (a deadline).
///
/// ```
/// use grpc_chaos::fake::deadline_present;
/// let m = deadline_present();
/// ```
pub fn deadline_present() -> impl Match {
    on_timeout("deadline present".into(), |req| {
        matches!(req.timeout, Some(Ok(_)))
    })
}

/// Matches calls without a `grpc-timeout` header.
///
/// ```
/// use grpc_chaos::fake::deadline_absent;
/// let m = deadline_absent();
/// ```
pub fn deadline_absent() -> impl Match {
    on_timeout("deadline absent".into(), |req| req.timeout.is_none())
}

/// Matches calls whose `grpc-timeout` is valid and at most `limit`.
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos::fake::deadline_at_most;
/// let m = deadline_at_most(Duration::from_millis(100));
/// ```
pub fn deadline_at_most(limit: Duration) -> impl Match {
    on_timeout(
        format!("deadline at most {limit:?}"),
        move |req| matches!(req.timeout, Some(Ok(t)) if t <= limit),
    )
}

/// A matcher on the call's `grpc-timeout`, whose failure message shows what came.
fn on_timeout(
    description: String,
    f: impl Fn(&CallRequest) -> bool + Send + Sync + 'static,
) -> impl Match {
    OnTimeout(Custom { description, f })
}

struct OnTimeout<F>(Custom<F>);

impl<F: Fn(&CallRequest) -> bool + Send + Sync + 'static> Match for OnTimeout<F> {
    fn matches(&self, request: &CallRequest) -> bool {
        self.0.matches(request)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn received(&self, request: &CallRequest) -> Option<String> {
        Some(match &request.timeout {
            None => "received no grpc-timeout".to_string(),
            Some(Ok(timeout)) => format!("received a timeout of {timeout:?}"),
            Some(Err(e)) => format!("received a malformed grpc-timeout ({e})"),
        })
    }
}

/// A boxed matcher, as a stub holds them.
pub(super) struct BoxedMatch(pub(super) Box<dyn Match>);

impl fmt::Debug for BoxedMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
    }
}
