use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// What projections report to `/metrics`, labelled by `projection="<name>_v<version>"`.
#[derive(Debug, Clone, Default)]
pub struct ProjectionMetrics {
    pub events_applied: Family<Labels, Counter>,
    pub events_skipped: Family<Labels, Counter>,
    pub lag: Family<Labels, Gauge>,
}

impl ProjectionMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "natter_projection_events_applied",
            "Events applied to read models",
            metrics.events_applied.clone(),
        );
        registry.register(
            "natter_projection_events_skipped",
            "Stored events a projection could not read and skipped (logged as errors)",
            metrics.events_skipped.clone(),
        );
        registry.register(
            "natter_projection_lag_events",
            "Events in the log not yet applied by the projection",
            metrics.lag.clone(),
        );
        metrics
    }

    pub(crate) fn labels(name: &str, version: i32) -> Labels {
        vec![("projection", format!("{name}_v{version}"))]
    }
}
