use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// What projections report to `/metrics`, labelled by `projection="<name>_v<version>"`.
#[derive(Debug, Clone, Default)]
pub struct ProjectionMetrics {
    pub events_applied: Family<Labels, Counter>,
    /// The stream sequence of an event the projection cannot read and stopped at (it
    /// applies nothing past it); 0 while it runs.
    pub stalled_at: Family<Labels, Gauge>,
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
            "natter_projection_stalled_at",
            "The sequence of an event the projection cannot read and stopped at; 0 while it runs",
            metrics.stalled_at.clone(),
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
