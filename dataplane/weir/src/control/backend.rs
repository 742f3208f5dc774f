//! Where the bridge sends things: the API state in this process, or a remote control
//! plane over its node API.

use std::time::Duration;

use weir_api::{ApiState, RecordingFinished, RecordingStarted, StudioPublish};
use weir_store::{
    Node, NodeLoad, RelayStatus, Rendition, StoreError, TranscoderRung, TranscoderStatus,
};

use super::remote::Remote;
use super::{CallError, ChannelPolicy, KeyAnswer, NodeIdentity};
use weir_node::{RelayReport, RenditionInfo, TranscoderReport};

/// The control plane the bridge talks to.
pub enum Backend {
    /// `weir serve`: the API state in this process.
    Local(ApiState),
    /// `weir dataplane`: a control plane over HTTP.
    Remote(Remote),
}

fn store_err(e: StoreError) -> CallError {
    match e {
        StoreError::NotFound(_) | StoreError::Invalid(_) | StoreError::Conflict(_) => {
            CallError::Permanent(e.to_string())
        }
        e => CallError::Transient(e.to_string()),
    }
}

impl Backend {
    /// May this key id publish to `channel` (its URL name)?
    pub async fn authorize(&self, key_id: &str, channel: &str) -> KeyAnswer {
        match self {
            Backend::Local(st) => {
                match st.is_stream_key_revoked(key_id).await {
                    Ok(true) => return KeyAnswer::Refused,
                    Ok(false) => {}
                    Err(_) => return KeyAnswer::Unreachable,
                }
                // A studio participant's key: its own stream, while it is in the studio.
                match st.studio_publish(key_id).await {
                    Ok(Some(StudioPublish::Allowed {
                        participant_id,
                        record,
                        ..
                    })) => {
                        return KeyAnswer::Channel(ChannelPolicy {
                            channel_id: participant_id,
                            signed_playback: false,
                            transcode: Some(false),
                            record: Some(record),
                            destinations: Vec::new(),
                        });
                    }
                    Ok(Some(StudioPublish::Refused(why))) => {
                        tracing::info!(%why, "studio participant key refused");
                        return KeyAnswer::Refused;
                    }
                    Ok(None) => {}
                    Err(_) => return KeyAnswer::Unreachable,
                }
                // Keys issued by `weir key issue` are not in the store: they are valid by
                // their signature; map the channel by its slug when it exists.
                let id = match st.authorize_publish(key_id).await {
                    Ok(Some(id)) => id,
                    Ok(None) => match st.store().channel_by_slug(channel).await {
                        Ok(Some(c)) => c.id,
                        Ok(None) => {
                            return KeyAnswer::Channel(ChannelPolicy {
                                channel_id: channel.to_owned(),
                                ..ChannelPolicy::default()
                            });
                        }
                        Err(_) => return KeyAnswer::Unreachable,
                    },
                    Err(_) => return KeyAnswer::Unreachable,
                };
                match (
                    st.playback_signed(&id).await,
                    st.channel_transcode(&id).await,
                    st.channel_record(&id).await,
                    st.relay_destinations(&id).await,
                ) {
                    (Ok(signed_playback), Ok(transcode), Ok(record), Ok(destinations)) => {
                        KeyAnswer::Channel(ChannelPolicy {
                            channel_id: id,
                            signed_playback,
                            transcode,
                            record,
                            destinations: destinations
                                .into_iter()
                                .map(super::relays::relay_target)
                                .collect(),
                        })
                    }
                    _ => KeyAnswer::Unreachable,
                }
            }
            Backend::Remote(r) => r.authorize(key_id).await,
        }
    }

    /// A stream started; returns the control plane's stream id.
    pub async fn started(
        &self,
        channel_id: &str,
        node: &str,
        protocol: &str,
    ) -> Result<String, CallError> {
        match self {
            Backend::Local(st) => st
                .stream_started(channel_id, protocol, Some(node))
                .await
                .map(|s| s.id)
                .map_err(store_err),
            Backend::Remote(r) => r.started(channel_id, node, protocol).await,
        }
    }

    /// The stream is live.
    pub async fn live(
        &self,
        stream_id: &str,
        renditions: &[RenditionInfo],
    ) -> Result<(), CallError> {
        let renditions: Vec<Rendition> = renditions
            .iter()
            .map(|r| Rendition {
                name: format!("{} ({})", r.name, r.codecs),
                width: r.width,
                height: r.height,
                bitrate: r.bitrate,
            })
            .collect();
        match self {
            Backend::Local(st) => st
                .stream_live(stream_id, renditions)
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(r) => r.live(stream_id, &renditions).await,
        }
    }

    /// What the stream's transcoder does now.
    pub async fn transcoder(
        &self,
        stream_id: &str,
        report: &TranscoderReport,
    ) -> Result<(), CallError> {
        let status = TranscoderStatus {
            encoder: report.encoder.clone(),
            rungs: report
                .rungs
                .iter()
                .map(|r| TranscoderRung {
                    name: r.name.clone(),
                    width: r.width,
                    height: r.height,
                    bitrate: r.bitrate,
                    passthrough: r.passthrough,
                    dropped: r.dropped,
                })
                .collect(),
            dropped_rungs: report.dropped_rungs,
            failure: report.failure.clone(),
            updated_at: 0, // the store stamps it
        };
        match self {
            Backend::Local(st) => st
                .stream_transcoder(stream_id, status)
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(r) => r.transcoder(stream_id, &status).await,
        }
    }

    /// Where relays of the stream stand (several destinations, one call).
    pub async fn relays(&self, stream_id: &str, reports: &[RelayReport]) -> Result<(), CallError> {
        let statuses: Vec<RelayStatus> = reports
            .iter()
            .map(|report| RelayStatus {
                destination_id: report.destination_id.clone(),
                state: report.state.as_str().to_owned(),
                reason: report.reason.clone(),
                bitrate: report.bitrate,
                updated_at: 0, // the store stamps it
            })
            .collect();
        match self {
            Backend::Local(st) => st
                .stream_relays(stream_id, statuses)
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(r) => r.relays(stream_id, &statuses).await,
        }
    }

    /// A recording of a stream began.
    pub async fn recording_started(&self, r: &RecordingStarted) -> Result<(), CallError> {
        match self {
            Backend::Local(st) => st
                .recording_started(r.clone())
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(remote) => remote.recording("recording_started", r).await,
        }
    }

    /// A recording is finished.
    pub async fn recording_finished(&self, f: &RecordingFinished) -> Result<(), CallError> {
        match self {
            Backend::Local(st) => st
                .recording_finished(f.clone())
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(remote) => remote.recording("recording_finished", f).await,
        }
    }

    /// A recording was deleted from the node's disk.
    pub async fn recording_deleted(&self, recording_id: &str) -> Result<(), CallError> {
        match self {
            Backend::Local(st) => st
                .recording_deleted(recording_id)
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(remote) => remote.recording_deleted(recording_id).await,
        }
    }

    /// The stream ended.
    pub async fn ended(&self, stream_id: &str) -> Result<(), CallError> {
        match self {
            Backend::Local(st) => st
                .stream_ended(stream_id)
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(r) => r.ended(stream_id).await,
        }
    }

    /// Viewer count of a channel on this node.
    pub async fn viewers(&self, channel_id: &str, node: &str, n: u64) -> Result<(), CallError> {
        match self {
            Backend::Local(st) => st
                .viewer_count(channel_id, node, n)
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(r) => r.viewers(channel_id, node, n).await,
        }
    }

    /// Registers or refreshes this node under a lease.
    pub async fn heartbeat(
        &self,
        node: &NodeIdentity,
        streams: u32,
        viewers: u64,
        lease: Duration,
    ) -> Result<(), CallError> {
        let n = Node {
            id: node.id.clone(),
            address: node.address.clone(),
            shards: node.shards,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            load: NodeLoad {
                streams,
                viewers,
                cpu: 0.0,
                egress_bps: 0,
            },
            last_seen: 0,
            studio_url: node.studio_url.clone(),
        };
        match self {
            Backend::Local(st) => st
                .node_heartbeat(n, lease)
                .await
                .map(drop)
                .map_err(store_err),
            Backend::Remote(r) => r.heartbeat(&n, lease).await,
        }
    }
}
