//! `grpc-chaos export istio|envoy FILE`: the `[[fault]]` rules a service mesh can hold,
//! as an Istio `VirtualService` or as Envoy's `envoy.filters.http.fault` configuration,
//! in JSON (which `kubectl apply -f` and Envoy both read). What a mesh cannot express is
//! listed on stderr, rule by rule: nothing is dropped silently.

use std::time::Duration;

use grpc_chaos::scenario::{HeaderMatch, MeshRule, PathMatch, Scenario};
use serde_json::{json, Map, Value};

use crate::{CliError, ExportArgs, Mesh};

/// `grpc-chaos export`: the rules on stdout, what is left out on stderr.
///
/// # Errors
/// A scenario file that cannot be read or is malformed (exit code 2).
pub(crate) fn run(args: &ExportArgs) -> Result<(), CliError> {
    let scenario = Scenario::load(&args.file, 0).map_err(CliError::Input)?;
    let rules = scenario.mesh_rules();
    for line in left_out(rules) {
        eprintln!("grpc-chaos export: {line}");
    }
    let config = match args.mesh {
        Mesh::Istio => istio(rules, &args.host, &args.name),
        Mesh::Envoy => envoy(rules, &args.host, &args.name),
    };
    println!("{config:#}");
    Ok(())
}

/// The status code's canonical name (`UNAVAILABLE`), as Istio writes `grpcStatus`.
fn code_name(code: tonic::Code) -> String {
    let name = format!("{code:?}");
    // `DeadlineExceeded` → `DEADLINE_EXCEEDED`.
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A duration as protobuf JSON writes it: `"0.200s"`.
fn seconds(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

/// Whether a mesh can do anything of this rule.
fn exportable(rule: &MeshRule) -> bool {
    rule.delay.is_some()
        || rule.abort.is_some()
        || !rule.request_headers.0.is_empty()
        || !rule.request_headers.1.is_empty()
        || !rule.response_headers.0.is_empty()
        || !rule.response_headers.1.is_empty()
}

/// One line per part of a rule a mesh cannot express, for stderr.
pub fn left_out(rules: &[MeshRule]) -> Vec<String> {
    let mut lines = Vec::new();
    for rule in rules {
        for what in &rule.unsupported {
            lines.push(format!("rule {:?}: not exported: {what}", rule.name));
        }
        if !exportable(rule) {
            lines.push(format!(
                "rule {:?}: nothing a mesh can express; skipped",
                rule.name
            ));
        }
    }
    lines
}

/// An Istio `VirtualService` named `name` for `host`: one HTTP route per rule, then the
/// default route.
///
/// ```
/// let s = grpc_chaos::scenario::Scenario::parse("f.toml", "[[fault]]\nservice = \"pb.Greeter\"\nstatus = { code = \"UNAVAILABLE\" }\npercentage = 5\n", 0).unwrap();
/// let vs = grpc_chaos_cli::export::istio(s.mesh_rules(), "greeter", "chaos");
/// assert_eq!(vs["spec"]["http"][0]["fault"]["abort"]["grpcStatus"], "UNAVAILABLE");
/// assert_eq!(vs["spec"]["http"][0]["match"][0]["uri"]["prefix"], "/pb.Greeter/");
/// ```
pub fn istio(rules: &[MeshRule], host: &str, name: &str) -> Value {
    let route = json!([{ "destination": { "host": host } }]);
    let mut http: Vec<Value> = Vec::new();
    for rule in rules.iter().filter(|r| exportable(r)) {
        let mut matched = Map::new();
        match &rule.path {
            PathMatch::Exact(p) => drop(matched.insert("uri".into(), json!({ "exact": p }))),
            PathMatch::Prefix(p) => drop(matched.insert("uri".into(), json!({ "prefix": p }))),
            _ => {}
        }
        let (mut with, mut without) = (Map::new(), Map::new());
        for (key, m) in &rule.headers {
            match m {
                HeaderMatch::Exact(v) => drop(with.insert(key.clone(), json!({ "exact": v }))),
                HeaderMatch::Regex(v) => drop(with.insert(key.clone(), json!({ "regex": v }))),
                HeaderMatch::Present => drop(with.insert(key.clone(), json!({ "regex": ".*" }))),
                HeaderMatch::Absent => drop(without.insert(key.clone(), json!({ "regex": ".*" }))),
                _ => {}
            }
        }
        if !with.is_empty() {
            matched.insert("headers".into(), with.into());
        }
        if !without.is_empty() {
            matched.insert("withoutHeaders".into(), without.into());
        }
        let percentage = json!({ "value": rule.percentage });
        let mut fault = Map::new();
        if let Some(d) = rule.delay {
            fault.insert(
                "delay".into(),
                json!({ "percentage": percentage, "fixedDelay": seconds(d) }),
            );
        }
        if let Some(code) = rule.abort {
            fault.insert(
                "abort".into(),
                json!({ "percentage": percentage, "grpcStatus": code_name(code) }),
            );
        }
        let mut entry = Map::new();
        entry.insert("name".into(), rule.name.clone().into());
        if !matched.is_empty() {
            entry.insert("match".into(), json!([matched]));
        }
        if !fault.is_empty() {
            entry.insert("fault".into(), fault.into());
        }
        let edits = |(set, remove): &(Vec<(String, String)>, Vec<String>)| {
            let mut side = Map::new();
            if !set.is_empty() {
                let set: Map<String, Value> = set
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect();
                side.insert("set".into(), set.into());
            }
            if !remove.is_empty() {
                side.insert("remove".into(), json!(remove));
            }
            side
        };
        let (request, response) = (edits(&rule.request_headers), edits(&rule.response_headers));
        if !request.is_empty() || !response.is_empty() {
            let mut headers = Map::new();
            if !request.is_empty() {
                headers.insert("request".into(), request.into());
            }
            if !response.is_empty() {
                headers.insert("response".into(), response.into());
            }
            entry.insert("headers".into(), headers.into());
        }
        entry.insert("route".into(), route.clone());
        http.push(entry.into());
    }
    http.push(json!({ "name": "default", "route": route }));
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": { "name": name },
        "spec": { "hosts": [host], "http": http },
    })
}

const HTTP_FAULT: &str = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

/// Envoy's configuration for the same rules: the HTTP filter chain (the fault filter
/// before the router) and a route configuration whose routes carry each rule's fault
/// as per-route filter configuration, with `cluster` as the upstream.
///
/// ```
/// let s = grpc_chaos::scenario::Scenario::parse("f.toml", "[[fault]]\nmethod = \"/pb.Greeter/SayHello\"\ndelay_ms = 250\npercentage = 12.5\n", 0).unwrap();
/// let config = grpc_chaos_cli::export::envoy(s.mesh_rules(), "greeter", "chaos");
/// let route = &config["route_config"]["virtual_hosts"][0]["routes"][0];
/// assert_eq!(route["match"]["path"], "/pb.Greeter/SayHello");
/// let delay = &route["typed_per_filter_config"]["envoy.filters.http.fault"]["delay"];
/// assert_eq!(delay["fixed_delay"], "0.250s");
/// assert_eq!(delay["percentage"]["numerator"], 125000);
/// ```
pub fn envoy(rules: &[MeshRule], cluster: &str, name: &str) -> Value {
    let mut routes: Vec<Value> = Vec::new();
    for rule in rules.iter().filter(|r| exportable(r)) {
        let mut matched = match &rule.path {
            PathMatch::Exact(p) => json!({ "path": p }),
            PathMatch::Prefix(p) => json!({ "prefix": p }),
            _ => json!({ "prefix": "/" }),
        };
        let headers: Vec<Value> = rule
            .headers
            .iter()
            .filter_map(|(key, m)| match m {
                HeaderMatch::Exact(v) => {
                    Some(json!({ "name": key, "string_match": { "exact": v } }))
                }
                HeaderMatch::Regex(v) => {
                    Some(json!({ "name": key, "string_match": { "safe_regex": { "regex": v } } }))
                }
                HeaderMatch::Present => Some(json!({ "name": key, "present_match": true })),
                HeaderMatch::Absent => {
                    Some(json!({ "name": key, "present_match": true, "invert_match": true }))
                }
                _ => None,
            })
            .collect();
        if !headers.is_empty() {
            matched["headers"] = headers.into();
        }
        // FractionalPercent takes an integer: per million keeps 4 decimals of a percent.
        let percentage = json!({
            "numerator": (rule.percentage * 10_000.0).round() as u64,
            "denominator": "MILLION",
        });
        let mut fault = json!({ "@type": HTTP_FAULT });
        if let Some(d) = rule.delay {
            fault["delay"] = json!({ "fixed_delay": seconds(d), "percentage": percentage });
        }
        if let Some(code) = rule.abort {
            fault["abort"] = json!({ "grpc_status": code as i32, "percentage": percentage });
        }
        let mut route = json!({
            "name": rule.name,
            "match": matched,
            "route": { "cluster": cluster },
            "typed_per_filter_config": { "envoy.filters.http.fault": fault },
        });
        let add = |set: &[(String, String)]| -> Vec<Value> {
            set.iter()
                .map(|(k, v)| json!({ "header": { "key": k, "value": v }, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD" }))
                .collect()
        };
        let (set, remove) = &rule.request_headers;
        if !set.is_empty() {
            route["request_headers_to_add"] = add(set).into();
        }
        if !remove.is_empty() {
            route["request_headers_to_remove"] = json!(remove);
        }
        let (set, remove) = &rule.response_headers;
        if !set.is_empty() {
            route["response_headers_to_add"] = add(set).into();
        }
        if !remove.is_empty() {
            route["response_headers_to_remove"] = json!(remove);
        }
        routes.push(route);
    }
    routes.push(
        json!({ "name": "default", "match": { "prefix": "/" }, "route": { "cluster": cluster } }),
    );
    json!({
        "http_filters": [
            { "name": "envoy.filters.http.fault", "typed_config": { "@type": HTTP_FAULT } },
            { "name": "envoy.filters.http.router", "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
        ],
        "route_config": {
            "name": name,
            "virtual_hosts": [{ "name": name, "domains": ["*"], "routes": routes }],
        },
    })
}
