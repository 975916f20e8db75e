//! What the gateway reports to `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// Cheap to clone; clones share counts.
#[derive(Debug, Clone, Default)]
pub struct GatewayMetrics {
    pub connections: Gauge,
    pub frames: Counter,
    pub replayed: Counter,
    pub closed: Family<Reason, Counter>,
}

impl GatewayMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "natter_gateway_connections",
            "Open WebSocket connections",
            metrics.connections.clone(),
        );
        registry.register(
            "natter_gateway_frames",
            "Live event, typing and presence frames written to connections",
            metrics.frames.clone(),
        );
        registry.register(
            "natter_gateway_replayed_events",
            "Events sent from the log to resuming connections",
            metrics.replayed.clone(),
        );
        registry.register(
            "natter_gateway_closed",
            "Connections the server closed, by reason",
            metrics.closed.clone(),
        );
        metrics
    }
}
