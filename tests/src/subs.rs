//! The two subscriptions a creator's dashboard opens, and how the tests read them.

use serde_json::Value;

use crate::graphql::WsClient;

/// Subscription id of [`STATE_SUB`].
pub const STATE: &str = "state";
/// Subscription id of [`VIEWERS_SUB`].
pub const VIEWERS: &str = "viewers";

/// Every state change of a channel's streams.
pub const STATE_SUB: &str = "subscription($c: ID!) { streamStateChanged(channelId: $c) \
                             { id channelId state protocol nodeId } }";
/// A channel's viewer count.
pub const VIEWERS_SUB: &str =
    "subscription($c: ID!) { viewerCount(channelId: $c) { channelId count } }";

/// Opens both subscriptions for `channel_id` on `ws`.
pub fn subscribe_dashboard(ws: &WsClient, channel_id: &str) {
    let vars = serde_json::json!({ "c": channel_id });
    ws.subscribe(STATE, STATE_SUB, vars.clone());
    ws.subscribe(VIEWERS, VIEWERS_SUB, vars);
}

/// The `streamStateChanged` payloads so far.
pub fn stream_events(ws: &WsClient) -> Vec<Value> {
    ws.payloads(STATE)
        .into_iter()
        .map(|p| p["data"]["streamStateChanged"].clone())
        .filter(|s| !s.is_null())
        .collect()
}

/// The states seen so far, in order.
pub fn states(ws: &WsClient) -> Vec<String> {
    stream_events(ws)
        .iter()
        .filter_map(|s| s["state"].as_str().map(str::to_owned))
        .collect()
}

/// The viewer counts seen so far, in order.
pub fn viewer_counts(ws: &WsClient) -> Vec<i64> {
    ws.payloads(VIEWERS)
        .iter()
        .filter_map(|p| p["data"]["viewerCount"]["count"].as_i64())
        .collect()
}

/// A summary for assertion messages: states, counts, failures.
pub fn describe(ws: &WsClient) -> String {
    format!(
        "states {:?}, viewer counts {:?}, subscription errors {:?}{}",
        states(ws),
        viewer_counts(ws),
        [ws.failures(STATE), ws.failures(VIEWERS)].concat(),
        if ws.closed() {
            ", websocket closed by the server"
        } else {
            ""
        }
    )
}
