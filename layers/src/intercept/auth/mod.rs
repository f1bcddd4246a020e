//! Bearer-token auth: a server layer, a validator trait, static tokens compared in
//! constant time, and the tonic `Interceptor` form.
//!
//! One idea a file, as in tower-http's middleware folders:
//! - `validator`: [`TokenValidator`], the check a token goes through (with its impl for
//!   closures), and [`AuthError`], why a call is refused and the status it gets;
//! - `static_tokens`: [`StaticTokens`], the built-in validator, the [`Identity`] it hands
//!   out, and [`constant_time_eq`], which it compares tokens with;
//! - `bearer`: reading the `authorization: Bearer <token>` header and checking the token,
//!   the one path both the layer and the interceptor take, down to the refusal status;
//! - `layer`: [`AuthLayer`];
//! - `service`: [`Auth`], the service it makes, which admits or refuses each call;
//! - `future`: [`ResponseFuture`], the inner service's response or the refusal;
//! - `interceptor`: [`auth_interceptor`] and [`AuthInterceptor`], the tonic
//!   `Interceptor` form.

mod bearer;
mod future;
mod interceptor;
mod layer;
mod service;
mod static_tokens;
mod validator;

pub use future::ResponseFuture;
pub use interceptor::{auth_interceptor, AuthInterceptor};
pub use layer::AuthLayer;
pub use service::Auth;
pub use static_tokens::{constant_time_eq, Identity, StaticTokens};
pub use validator::{AuthError, TokenValidator};
