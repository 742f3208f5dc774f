//! `weir key …` and the publish authoriser built on stream keys.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use std::sync::Arc;

use weir_node::{
    LocalFuture, NodeConfig, PlaybackAccess, PublishAuth, PublishGrant, PublishRefusal,
};
use weir_streamkey::{KeyError, KeySigner, Revocations, StreamKey};

use crate::control::{Bridge, KeyAnswer};

use crate::cli::KeyCommand;
use crate::config::Config;

/// Loads the node's key secret: `WEIR_STREAM_KEY_SECRET` (hex), else the file in the
/// data dir, created with mode 0600 on first use.
pub fn load_signer(node: &NodeConfig) -> anyhow::Result<KeySigner> {
    if let Ok(hex) = std::env::var("WEIR_STREAM_KEY_SECRET") {
        return Ok(KeySigner::new(
            decode_hex(hex.trim()).context("WEIR_STREAM_KEY_SECRET is not hex")?,
        ));
    }
    let path = node.key_secret_path();
    if let Ok(text) = std::fs::read_to_string(&path) {
        let secret = decode_hex(text.trim())
            .with_context(|| format!("{} is not a hex secret", path.display()))?;
        return Ok(KeySigner::new(secret));
    }
    let secret = KeySigner::generate_secret()?;
    write_private(&path, &encode_hex(&secret))?;
    tracing::info!(path = %path.display(), "created a new stream key secret");
    Ok(KeySigner::new(secret))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{text}")?;
    Ok(())
}

fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        s.len().is_multiple_of(2) && s.len() >= 32,
        "want at least 16 hex-encoded bytes"
    );
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(Into::into))
        .collect()
}

/// Runs `weir key …`.
pub fn run(config: &Config, cmd: KeyCommand) -> anyhow::Result<()> {
    let node = &config.node;
    let signer = load_signer(node)?;
    let revocations = Revocations::new(node.revocations_path());
    match cmd {
        KeyCommand::Issue { channel } => {
            let (key, _) = signer.issue(&channel)?;
            let host = &node.public_host;
            let rtmp_port = node.rtmp_listen.port();
            let http_port = node.http_listen.port();
            println!("Server:     rtmp://{host}:{rtmp_port}/{}", node.rtmp_app);
            println!("Stream key: {key}");
            println!("Playback:   http://{host}:{http_port}/live/{channel}/index.m3u8");
            println!();
            println!(
                "ffmpeg:     ffmpeg -re -i INPUT -c:v libx264 -c:a aac -f flv rtmp://{host}:{rtmp_port}/{}/{key}",
                node.rtmp_app
            );
        }
        KeyCommand::Revoke { key } => {
            let id = match signer.verify(&key) {
                Ok(k) => k.key_id,
                Err(_) if !key.contains('.') => key,
                Err(e) => anyhow::bail!("not a key of this node: {e}"),
            };
            revocations
                .revoke(&id)
                .context("writing the revocation list")?;
            println!("revoked key id {id}");
        }
        KeyCommand::Verify { key } => {
            let k = signer.verify(&key)?;
            anyhow::ensure!(!revocations.is_revoked(&k.key_id), KeyError::Revoked);
            println!("valid key for channel {} (id {})", k.channel, k.key_id);
        }
    }
    Ok(())
}

/// Authorises publishers by stream key: the signature and the local revocation list
/// here, then the control plane (when there is one) for revocation and the channel id.
pub struct KeyAuth {
    signer: KeySigner,
    revocations: Arc<Revocations>,
    control: Option<Bridge>,
}

impl KeyAuth {
    /// An authoriser for this node's keys.
    pub fn new(signer: KeySigner, revocations: Arc<Revocations>, control: Option<Bridge>) -> Self {
        Self {
            signer,
            revocations,
            control,
        }
    }

    fn check(&self, stream_name: &str) -> Result<StreamKey, PublishRefusal> {
        let refuse = |code, e: KeyError| PublishRefusal {
            code,
            reason: e.to_string(),
        };
        let key = self.signer.verify(stream_name).map_err(|e| match e {
            KeyError::Malformed | KeyError::InvalidChannel => {
                refuse("NetStream.Publish.BadName", e)
            }
            e => refuse("NetStream.Publish.Unauthorized", e),
        })?;
        if self.revocations.is_revoked(&key.key_id) {
            tracing::info!(key = %key.redacted(), "revoked key refused");
            return Err(refuse("NetStream.Publish.Unauthorized", KeyError::Revoked));
        }
        Ok(key)
    }
}

impl PublishAuth for KeyAuth {
    fn playback_access(&self, channel: &str, query: &str) -> PlaybackAccess {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self.signer.verify_playback(channel, query, now) {
            Ok(()) => PlaybackAccess::Allowed,
            Err(KeyError::Expired) => PlaybackAccess::Expired,
            Err(_) => PlaybackAccess::Denied,
        }
    }

    fn authorize(
        &self,
        _app: &str,
        stream_name: &str,
    ) -> LocalFuture<Result<PublishGrant, PublishRefusal>> {
        Box::pin(self.grant(stream_name))
    }
}

impl KeyAuth {
    /// What publishing with `stream_name` is granted (the `Send` form of
    /// [`PublishAuth::authorize`], for callers on the control plane's runtime).
    pub fn grant(
        &self,
        stream_name: &str,
    ) -> impl std::future::Future<Output = Result<PublishGrant, PublishRefusal>> + Send + 'static
    {
        let checked = self.check(stream_name);
        let control = self.control.clone();
        async move {
            let key = checked?;
            let Some(control) = control else {
                return Ok(PublishGrant {
                    channel_id: key.channel.clone(),
                    channel: key.channel,
                    signed_playback: false,
                    transcode: None,
                    record: None,
                    destinations: Vec::new(),
                });
            };
            match control.authorize(&key.key_id, &key.channel).await {
                KeyAnswer::Channel(policy) => Ok(PublishGrant {
                    channel: key.channel,
                    channel_id: policy.channel_id,
                    signed_playback: policy.signed_playback,
                    transcode: policy.transcode,
                    record: policy.record,
                    destinations: policy.destinations,
                }),
                KeyAnswer::Refused => {
                    tracing::info!(key = %key.redacted(), "control plane refused the key");
                    Err(PublishRefusal {
                        code: "NetStream.Publish.Unauthorized",
                        reason: "stream key has been revoked".to_owned(),
                    })
                }
                KeyAnswer::Unreachable => {
                    // Availability first: a correctly signed key publishes while the
                    // control plane is away; its revocation list catches up later.
                    tracing::warn!(key = %key.redacted(), "control plane unreachable: key accepted by its signature");
                    Ok(PublishGrant {
                        channel_id: key.channel.clone(),
                        channel: key.channel,
                        // Unknown policy: fail closed for viewers (signed URLs still play).
                        signed_playback: true,
                        // Unknown transcode setting: the node's default.
                        transcode: None,
                        // Unknown recording setting: the node's default.
                        record: None,
                        // Unknown destinations: none (their keys live in the control plane).
                        destinations: Vec::new(),
                    })
                }
            }
        }
    }
}
