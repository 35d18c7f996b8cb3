//! The health monitor: checks a server's reachability and model every so often, and
//! retries an offline server with backoff.

use super::health::model_listed;
use super::shared::Shared;
use crate::event::{Health, Role};
use crate::model::ModelClient;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a healthy server is re-checked.
const HEALTHY_RECHECK: Duration = Duration::from_secs(30);

/// Check a server's reachability and model; retry with backoff while it is offline.
pub(super) async fn health_loop(shared: Arc<Shared>, client: ModelClient) {
    let gate = match client.role() {
        Role::Student => &shared.student_health,
        Role::Teacher => &shared.teacher_health,
    };
    let mut failures = 0u32;
    loop {
        let began = Instant::now();
        let health = match client.list_models().await {
            Ok(models) if model_listed(&models, client.model()) => {
                failures = 0;
                Health::Ok {
                    latency_ms: began.elapsed().as_millis() as u64,
                }
            }
            Ok(_) => {
                failures += 1;
                let e = client.missing_model_error();
                Health::Offline {
                    reason: e.to_string(),
                    hint: e.hint(client.role(), client.model()),
                }
            }
            Err(e) => {
                failures += 1;
                Health::Offline {
                    reason: e.to_string(),
                    hint: e.hint(client.role(), client.model()),
                }
            }
        };
        gate.probed(&shared.emitter, health);
        let wait = if failures == 0 {
            HEALTHY_RECHECK
        } else {
            crate::model::backoff::SERVER.delay(failures)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = gate.recheck.notified() => {
                // A call just failed: look again soon, but not in a tight loop.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
