//! `weir key …` and the publish authoriser built on stream keys.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use std::sync::Arc;

use weir_node::{
    LocalFuture, NodeConfig, PlaybackAccess, PublishAuth, PublishGrant, PublishRefusal,
};
use weir_streamkey::{KeyError, KeySigner, KeyVerifier, Revocations, StreamKey};

use crate::control::{Bridge, KeyAnswer};

use crate::cli::KeyCommand;
use crate::config::{Config, UnreachableKeys};

/// Loads the signing secret: `WEIR_STREAM_KEY_SECRET` (hex), else the file in the data
/// dir, created with mode 0600 on first use. Only the control plane (or an all-in-one or
/// standalone node) holds it.
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

/// The public key a data-plane node reporting to a control plane checks keys with:
/// `WEIR_STREAM_KEY_PUBLIC` (hex, printed by `weir key public` where the secret is). Such a
/// node cannot mint keys. A node given `WEIR_STREAM_KEY_SECRET` instead still works (the
/// public key is derived from it) but is warned: a compromise of it would let an attacker
/// sign keys for every channel.
pub fn load_verifier() -> anyhow::Result<KeyVerifier> {
    if let Ok(hex) = std::env::var("WEIR_STREAM_KEY_PUBLIC") {
        return KeyVerifier::from_hex(&hex).context("WEIR_STREAM_KEY_PUBLIC");
    }
    if let Ok(hex) = std::env::var("WEIR_STREAM_KEY_SECRET") {
        let signer =
            KeySigner::new(decode_hex(hex.trim()).context("WEIR_STREAM_KEY_SECRET is not hex")?);
        tracing::warn!(
            public = %signer.verifier().to_hex(),
            "this data-plane node holds the stream key signing secret; give it WEIR_STREAM_KEY_PUBLIC instead, so that it can check keys but not mint them"
        );
        return Ok(signer.verifier().clone());
    }
    anyhow::bail!(
        "WEIR_STREAM_KEY_PUBLIC must be set on a data-plane node that reports to a control plane: \
         run `weir key public` where the control plane's WEIR_STREAM_KEY_SECRET is"
    )
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
    let revocations = Revocations::new(node.revocations_path());
    // Checking needs only the public key; issuing needs the secret.
    let verifier = || match std::env::var("WEIR_STREAM_KEY_PUBLIC") {
        Ok(hex) => KeyVerifier::from_hex(&hex).context("WEIR_STREAM_KEY_PUBLIC"),
        Err(_) => Ok(load_signer(node)?.verifier().clone()),
    };
    match cmd {
        KeyCommand::Issue { channel } => {
            anyhow::ensure!(
                std::env::var_os("WEIR_STREAM_KEY_PUBLIC").is_none()
                    || std::env::var_os("WEIR_STREAM_KEY_SECRET").is_some(),
                "this node has only the public key (WEIR_STREAM_KEY_PUBLIC): issue keys on the \
                 control plane (GraphQL issueStreamKey) or where WEIR_STREAM_KEY_SECRET is"
            );
            let (key, _) = load_signer(node)?.issue(&channel)?;
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
        KeyCommand::Public => {
            println!("{}", load_signer(node)?.verifier().to_hex());
        }
        KeyCommand::Revoke { key } => {
            let id = match verifier()?.verify(&key) {
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
            let k = verifier()?.verify(&key)?;
            anyhow::ensure!(!revocations.is_revoked(&k.key_id), KeyError::Revoked);
            println!("valid key for channel {} (id {})", k.channel, k.key_id);
        }
    }
    Ok(())
}

/// Authorises publishers by stream key: the signature and the local revocation list
/// here, then the control plane (when there is one) for revocation and the channel id.
pub struct KeyAuth {
    verifier: KeyVerifier,
    revocations: Arc<Revocations>,
    control: Option<Bridge>,
    unreachable: UnreachableKeys,
}

impl KeyAuth {
    /// An authoriser for this node's keys.
    pub fn new(
        verifier: KeyVerifier,
        revocations: Arc<Revocations>,
        control: Option<Bridge>,
        unreachable: UnreachableKeys,
    ) -> Self {
        Self {
            verifier,
            revocations,
            control,
            unreachable,
        }
    }

    fn check(&self, stream_name: &str) -> Result<StreamKey, PublishRefusal> {
        let refuse = |code, e: KeyError| PublishRefusal {
            code,
            reason: e.to_string(),
        };
        let key = self.verifier.verify(stream_name).map_err(|e| match e {
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
        match self.verifier.verify_playback(channel, query, now) {
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
        let unreachable = self.unreachable;
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
                KeyAnswer::Unreachable if unreachable == UnreachableKeys::Closed => {
                    tracing::warn!(key = %key.redacted(), "control plane unreachable: key refused (unreachable_keys = closed)");
                    Err(PublishRefusal {
                        code: "NetStream.Publish.Unauthorized",
                        reason: "the control plane cannot be reached to check this key; try again shortly".to_owned(),
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
