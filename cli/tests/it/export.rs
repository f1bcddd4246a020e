//! `grpc-chaos export istio|envoy`: the rules a mesh can hold, in JSON on stdout, and
//! each rule part it cannot hold listed on stderr. (CI also validates the Istio output
//! against the published schema: `cli/tests/node/validate_istio.mjs`.)

const FAULTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/faults/inventory.toml"
);

fn export(mesh: &str) -> (serde_json::Value, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .args(["export", mesh, FAULTS, "--host", "inventory"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let config = serde_json::from_slice(&output.stdout).unwrap();
    (config, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn istio_gets_the_delay_and_the_abort_and_stderr_the_rest() {
    let (vs, stderr) = export("istio");
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 3, "two rules and the default route: {vs:#}");
    let slow = &http[0];
    assert_eq!(
        slow["match"][0]["uri"]["exact"],
        "/shop.inventory.v1.Inventory/GetItem"
    );
    assert_eq!(slow["match"][0]["headers"]["x-tenant"]["exact"], "blue");
    assert_eq!(slow["match"][0]["headers"]["x-canary"]["regex"], ".*");
    assert_eq!(slow["fault"]["delay"]["fixedDelay"], "1.500s");
    assert_eq!(slow["fault"]["delay"]["percentage"]["value"], 25.0);
    assert_eq!(slow["headers"]["request"]["set"]["x-chaos"], "slow");
    let flaky = &http[1];
    assert_eq!(
        flaky["match"][0]["uri"]["prefix"],
        "/shop.inventory.v1.Inventory/"
    );
    assert_eq!(
        flaky["match"][0]["withoutHeaders"]["x-retry"]["regex"],
        ".*"
    );
    assert_eq!(flaky["fault"]["abort"]["grpcStatus"], "UNAVAILABLE");
    assert_eq!(http[2]["route"][0]["destination"]["host"], "inventory");

    for expected in [
        "rule \"stock stream cut short\": not exported: a per-message delay",
        "rule \"stock stream cut short\": not exported: an abort after 5 response messages",
        "rule \"stock stream cut short\": not exported: a change to the grpc-timeout sent upstream",
        "rule \"stock stream cut short\": not exported: edits to the response trailers",
        "rule \"stock stream cut short\": nothing a mesh can express; skipped",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
}

#[test]
fn envoy_gets_the_same_rules_as_per_route_fault_filters() {
    let (config, stderr) = export("envoy");
    assert_eq!(
        config["http_filters"][0]["name"],
        "envoy.filters.http.fault"
    );
    assert_eq!(
        config["http_filters"][1]["name"],
        "envoy.filters.http.router"
    );
    let routes = config["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap();
    assert_eq!(routes.len(), 3);
    let slow = &routes[0];
    assert_eq!(
        slow["match"]["path"],
        "/shop.inventory.v1.Inventory/GetItem"
    );
    let fault = &slow["typed_per_filter_config"]["envoy.filters.http.fault"];
    assert_eq!(fault["delay"]["fixed_delay"], "1.500s");
    assert_eq!(fault["delay"]["percentage"]["numerator"], 250_000);
    assert_eq!(
        slow["request_headers_to_add"][0]["header"]["key"],
        "x-chaos"
    );
    let flaky = &routes[1];
    assert_eq!(flaky["match"]["prefix"], "/shop.inventory.v1.Inventory/");
    assert_eq!(flaky["match"]["headers"][1]["invert_match"], true);
    let abort = &flaky["typed_per_filter_config"]["envoy.filters.http.fault"]["abort"];
    assert_eq!(abort["grpc_status"], 14);
    assert_eq!(routes[2]["route"]["cluster"], "inventory");
    assert!(stderr.contains("a per-message delay"), "{stderr}");
}
