//! `grpc.health.v1.Health`, served with tonic-health: SERVING for `""` and every served
//! service at start-up, then as scenario `[[health]]` entries and the admin API set it.

use grpc_chaos::scenario::HealthChange;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The statuses the health service reports. Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (health, _service) = grpc_chaos_cli::health::Health::new();
/// health.set("pb.Greeter", false).await;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// The statuses, with `""` SERVING as tonic-health starts it, and the tonic service
    /// that serves them (`Check` and `Watch`).
    pub fn new() -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        (Self { reporter }, service)
    }

    /// Sets a service's status (`""` for the whole server); watchers see the change.
    pub async fn set(&self, service: &str, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status(service, status).await;
    }

    /// Applies a scenario's change: at once (done when this returns), or after its delay
    /// on a task of its own.
    pub async fn apply(&self, change: HealthChange) {
        if change.after.is_zero() {
            return self.set(&change.service, change.serving).await;
        }
        let health = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(change.after).await;
            health.set(&change.service, change.serving).await;
        });
    }
}
