//! `[[fault]]` tables compiled to the proxy's [`FaultRule`]s.
//!
//! ```toml
//! [[fault]]
//! name = "slow and flaky inventory"
//! method = "/shop.Inventory/GetItem"     # or service = "shop.Inventory"; neither: every call
//! match = { metadata = { "x-tenant" = "blue" } }   # the stub matchers: metadata, deadline, and
//!                                        # the first request message (`message_contains = {…}`,
//!                                        # `message = {…}` with the types loaded, or
//!                                        # `message_base64`); the proxy reads ahead to it
//!                                        # only when a rule needs it
//! percentage = 30                        # of the matching calls, seeded by --seed
//! delay_ms = 200                         # before forwarding
//! response_delay_ms = 100                # before the response headers go down
//! message_delay = { ms = 50, nth = 3 }   # response message 3 (every one without nth);
//!                                        # direction = "request" for the client's messages
//! abort_after = 2                        # response messages, then `status` (UNAVAILABLE if none)
//! status = { code = "UNAVAILABLE", message = "injected" }   # alone: answered without the upstream
//! reset_after = 1                        # response messages, then RST_STREAM with `reset`
//! reset = "REFUSED_STREAM"               # CANCEL when left out
//! grpc_timeout = { at_most_ms = 100 }    # or "strip", or { factor = 0.5 }
//! request_headers = { set = { "x-canary" = "1" }, remove = ["x-debug"] }
//! response_headers = { set_bin = { "trace-bin" = "AAEC" } }
//! response_trailers = { remove = ["x-cost"] }
//! drop_trailers = true
//! bandwidth_bytes_per_second = 1024      # the response, paced
//! slice_bytes = 3                        # each response DATA frame cut into 3-byte frames
//! drop_connection = true                 # the client's whole connection, after any delay
//! ```

use std::time::Duration;

use toml::Spanned;
use tonic::Status;

use super::compile::{Boxed, Ctx};
use super::model::{FaultSpec, HeaderEditSpec, TimeoutSpec};
use super::ScenarioError;
use crate::fake::{any, method, service, Reason};
use crate::proxy::{Fault, FaultRule};

type Built<T> = Result<T, ScenarioError>;

/// Which side of the call a header edit applies to.
#[derive(Clone, Copy)]
enum Side {
    Request,
    ResponseHeaders,
    ResponseTrailers,
}

impl Ctx<'_> {
    pub(super) fn fault(&self, spec: &Spanned<FaultSpec>) -> Built<FaultRule> {
        let f = spec.get_ref();
        let mut rule = match (&f.method, &f.service) {
            (Some(path), _) => {
                if !path.get_ref().starts_with('/') || path.get_ref().matches('/').count() != 2 {
                    return Err(self.at(
                        path,
                        "expected a method path like \"/package.Service/Method\"",
                    ));
                }
                FaultRule::given(method(path.get_ref().clone()))
            }
            (None, Some(name)) => FaultRule::given(service(name.clone())),
            (None, None) => FaultRule::given(any()),
        };
        if let (Some(path), Some(_)) = (&f.method, &f.service) {
            return Err(self.at(path, "give `method` or `service`, not both"));
        }
        // Tables of the first request message need the method's types (`--proto`).
        let tables = f.matches.message.is_some() || f.matches.message_contains.is_some();
        let request_type = match &f.method {
            Some(path) => self.known_method(path, tables)?.map(|(input, _)| input),
            None => None,
        };
        for m in self.matchers(&f.matches, request_type)? {
            rule = rule.and(Boxed(m));
        }
        if let Some(p) = &f.percentage {
            if !(0.0..=100.0).contains(p.get_ref()) {
                return Err(self.at(p, "expected a percentage from 0 to 100"));
            }
            rule = rule.percentage(*p.get_ref());
        }
        if let Some(name) = &f.name {
            rule = rule.named(name.clone());
        }
        Ok(rule.with(self.fault_actions(spec)?))
    }

    fn fault_actions(&self, spec: &Spanned<FaultSpec>) -> Built<Fault> {
        let f = spec.get_ref();
        let mut fault = Fault::new();
        if let Some(ms) = f.delay_ms {
            fault = fault.delay(Duration::from_millis(ms));
        }
        if let Some(ms) = f.response_delay_ms {
            fault = fault.delay_response(Duration::from_millis(ms));
        }
        if let Some(spec) = &f.message_delay {
            let d = spec.get_ref();
            let delay = Duration::from_millis(d.ms);
            fault = match d.direction.as_ref().map(|w| w.get_ref().as_str()) {
                None | Some("response") => fault.delay_messages(delay, d.nth),
                Some("request") => fault.delay_request_messages(delay, d.nth),
                Some(_) => {
                    let at = d.direction.as_ref().map(Spanned::span);
                    return Err(self.error(at, "expected \"request\" or \"response\""));
                }
            };
        }
        let status = f.status.as_ref().map(|s| self.status(s)).transpose()?;
        match (f.abort_after, status) {
            (Some(n), status) => {
                fault = fault.abort_after(n, status.unwrap_or_else(|| Status::unavailable("")));
            }
            (None, Some(status)) => fault = fault.answer(status),
            (None, None) => {}
        }
        match (f.reset_after, &f.reset) {
            (Some(n), reason) => {
                let reason = reason.as_ref().map(|r| self.reason(r)).transpose()?;
                fault = fault.reset_after(n, reason.unwrap_or(Reason::CANCEL));
            }
            (None, Some(reason)) => {
                return Err(self.at(reason, "`reset` goes with `reset_after = N`"))
            }
            (None, None) => {}
        }
        if let Some(t) = &f.grpc_timeout {
            fault = match t.get_ref() {
                TimeoutSpec::Word(w) if w == "strip" => fault.strip_timeout(),
                TimeoutSpec::AtMost { at_most_ms } => {
                    fault.timeout_at_most(Duration::from_millis(*at_most_ms))
                }
                TimeoutSpec::Factor { factor } if (0.0..=1.0).contains(factor) => {
                    fault.scale_timeout(*factor)
                }
                _ => {
                    return Err(self.at(
                        t,
                        "expected \"strip\", { at_most_ms = N } or { factor = F } (0 to 1)",
                    ))
                }
            };
        }
        fault = self.headers(spec, fault, &f.request_headers, Side::Request)?;
        fault = self.headers(spec, fault, &f.response_headers, Side::ResponseHeaders)?;
        fault = self.headers(spec, fault, &f.response_trailers, Side::ResponseTrailers)?;
        if f.drop_trailers == Some(true) {
            fault = fault.drop_trailers();
        }
        if let Some(rate) = f.bandwidth_bytes_per_second {
            fault = fault.bandwidth(rate);
        }
        if let Some(bytes) = f.slice_bytes {
            fault = fault.slice(bytes);
        }
        if f.drop_connection == Some(true) {
            fault = fault.drop_connection();
        }
        Ok(fault)
    }

    fn headers(
        &self,
        spec: &Spanned<FaultSpec>,
        mut fault: Fault,
        edit: &HeaderEditSpec,
        side: Side,
    ) -> Built<Fault> {
        let bad = |e: String| self.at(spec, format!("metadata: {e}"));
        for key in &edit.remove {
            fault = match side {
                Side::Request => fault.remove_request_header(key),
                Side::ResponseHeaders => fault.remove_response_header(key),
                Side::ResponseTrailers => fault.remove_response_trailer(key),
            }
            .map_err(bad)?;
        }
        let text = edit.set.iter().map(|(k, v)| Ok((k, v.as_bytes().to_vec())));
        let binary = edit
            .set_bin
            .iter()
            .map(|(k, v)| self.base64(v).map(|bytes| (k, bytes)));
        for entry in text.chain(binary) {
            let (key, value) = entry?;
            if key.ends_with("-bin") != edit.set_bin.contains_key(key.as_str()) {
                return Err(self.at(spec, format!("metadata: put {key} in `set_bin` with a base64 value (and only -bin keys there)")));
            }
            fault = match side {
                Side::Request => fault.set_request_header(key, &value),
                Side::ResponseHeaders => fault.set_response_header(key, &value),
                Side::ResponseTrailers => fault.set_response_trailer(key, &value),
            }
            .map_err(bad)?;
        }
        Ok(fault)
    }
}
