use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What the command side reports to `/metrics`. Cheap to clone; clones share counts.
#[derive(Debug, Clone)]
pub struct CommandMetrics {
    pub append_latency: Histogram,
    pub conflicts: Counter,
    pub commands: Counter,
}

impl Default for CommandMetrics {
    fn default() -> Self {
        Self {
            append_latency: Histogram::new(exponential_buckets(0.000_25, 2.0, 14)),
            conflicts: Counter::default(),
            commands: Counter::default(),
        }
    }
}

impl CommandMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "natter_append_latency_seconds",
            "Time from sending an append to its acknowledgement",
            metrics.append_latency.clone(),
        );
        registry.register(
            "natter_append_conflicts",
            "Appends refused because the aggregate had moved on (each is retried)",
            metrics.conflicts.clone(),
        );
        registry.register(
            "natter_commands",
            "Commands handled",
            metrics.commands.clone(),
        );
        metrics
    }
}
