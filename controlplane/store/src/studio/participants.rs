//! Participants: join, stage, media, leave; and their publish keys.

use crate::channels::check_text;
use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, now_ms};
use crate::store::Store;

use super::model::{BroadcastStatus, Participant, ParticipantRole, Stage, StudioKey};
use super::{MAX_PARTICIPANT_RECORDS, MAX_PRESENT, PARTICIPANTS, STUDIO_KEYS};

/// Someone joining a broadcast.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    /// Id (the caller made it: the stream name and key derive from it).
    pub id: String,
    /// The broadcast.
    pub broadcast_id: String,
    /// Host or guest.
    pub role: ParticipantRole,
    /// Shown name (1–64 characters).
    pub display_name: String,
    /// Their account, if any.
    pub user_id: Option<String>,
    /// Their node stream.
    pub stream: String,
    /// Their publish key's id.
    pub key_id: String,
}

/// Changes to a participant's media; `None` keeps the value.
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaPatch {
    /// Microphone.
    pub audio: Option<bool>,
    /// Camera.
    pub video: Option<bool>,
    /// Gain, 0.0–2.0.
    pub gain: Option<f32>,
}

/// Checks a display name: 1–64 characters, no control characters.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "display name must be 1-64 printable characters".into(),
        ));
    }
    check_text("display name", name, 64)
}

impl Store {
    /// Adds a participant (backstage, camera and microphone on) to a broadcast that has
    /// not ended, within [`MAX_PRESENT`] present at once.
    pub async fn add_participant(&self, n: NewParticipant) -> Result<Participant> {
        check_name(&n.display_name)?;
        if !is_safe_id(&n.id) || !is_safe_id(&n.key_id) || !weir_stream_name(&n.stream) {
            return Err(StoreError::Invalid(
                "bad participant id, key or stream".into(),
            ));
        }
        let b = self
            .get_studio_broadcast(&n.broadcast_id)
            .await?
            .ok_or(StoreError::NotFound("studio broadcast"))?;
        if b.status == BroadcastStatus::Ended {
            return Err(StoreError::Conflict("the broadcast has ended".into()));
        }
        let all = self.list_participants(&n.broadcast_id).await?;
        if all.iter().filter(|p| p.present()).count() >= MAX_PRESENT {
            return Err(StoreError::Conflict(format!(
                "the studio is full ({MAX_PRESENT} participants)"
            )));
        }
        if all.len() >= MAX_PARTICIPANT_RECORDS {
            return Err(StoreError::Conflict(
                "too many people joined this broadcast".into(),
            ));
        }
        let p = Participant {
            id: n.id,
            broadcast_id: n.broadcast_id,
            role: n.role,
            display_name: n.display_name,
            user_id: n.user_id,
            stage: Stage::Backstage,
            stage_order: 0,
            audio_enabled: true,
            video_enabled: true,
            audio_locked: false,
            video_locked: false,
            gain: 1.0,
            joined_at: now_ms(),
            left_at: None,
            stream: n.stream,
            key_id: n.key_id,
        };
        let key = StudioKey {
            key_id: p.key_id.clone(),
            participant_id: p.id.clone(),
            broadcast_id: p.broadcast_id.clone(),
        };
        self.put_json(STUDIO_KEYS, &key.key_id, &key, None).await?;
        self.put_child(PARTICIPANTS, &p.broadcast_id, &p.id, &p)
            .await?;
        Ok(p)
    }

    /// A participant by id.
    pub async fn get_participant(&self, id: &str) -> Result<Option<Participant>> {
        self.get_child(PARTICIPANTS, id).await
    }

    /// A broadcast's participants in the order they joined (those who left included).
    pub async fn list_participants(&self, broadcast_id: &str) -> Result<Vec<Participant>> {
        self.list_children(PARTICIPANTS, broadcast_id).await
    }

    async fn change_participant<F>(&self, id: &str, mut f: F) -> Result<Participant>
    where
        F: FnMut(&mut Participant) -> Result<()>,
    {
        self.update_child(PARTICIPANTS, id, |p: &mut Participant| {
            if !p.present() {
                return Err(StoreError::Conflict(
                    "the participant has left the studio".into(),
                ));
            }
            f(p)
        })
        .await
    }

    /// Brings a participant on stage (last in stage order) or sends them backstage.
    pub async fn set_participant_stage(&self, id: &str, stage: Stage) -> Result<Participant> {
        let current = self
            .get_participant(id)
            .await?
            .ok_or(StoreError::NotFound("participant"))?;
        // After everyone on stage now, even within one millisecond.
        let last = self
            .list_participants(&current.broadcast_id)
            .await?
            .iter()
            .filter(|p| p.stage == Stage::OnStage && p.id != id)
            .map(|p| p.stage_order)
            .max()
            .unwrap_or(0);
        let now = now_ms().max(last + 1);
        self.change_participant(id, |p| {
            if p.stage != stage {
                p.stage = stage;
                p.stage_order = if stage == Stage::OnStage { now } else { 0 };
            }
            Ok(())
        })
        .await
    }

    /// Changes a participant's media. The host (`by_host`) may do anything; turning
    /// something off locks it until the host turns it on again. The participant may turn
    /// their own camera and microphone off, and on again unless the host locked them;
    /// only the host changes the gain.
    pub async fn set_participant_media(
        &self,
        id: &str,
        patch: MediaPatch,
        by_host: bool,
    ) -> Result<Participant> {
        if let Some(g) = patch.gain {
            if !by_host {
                return Err(StoreError::Invalid("only the host sets the gain".into()));
            }
            if !(0.0..=2.0).contains(&g) || g.is_nan() {
                return Err(StoreError::Invalid("gain must be within 0.0-2.0".into()));
            }
        }
        self.change_participant(id, |p| {
            if let Some(a) = patch.audio {
                if by_host {
                    p.audio_locked = !a;
                } else if a && p.audio_locked {
                    return Err(StoreError::Conflict(
                        "the host muted your microphone: only the host can turn it back on".into(),
                    ));
                }
                p.audio_enabled = a;
            }
            if let Some(v) = patch.video {
                if by_host {
                    p.video_locked = !v;
                } else if v && p.video_locked {
                    return Err(StoreError::Conflict(
                        "the host turned your camera off: only the host can turn it back on".into(),
                    ));
                }
                p.video_enabled = v;
            }
            if let Some(g) = patch.gain {
                p.gain = g;
            }
            Ok(())
        })
        .await
    }

    /// A participant leaves (or is removed): off stage, their key revoked. Idempotent.
    pub async fn remove_participant(&self, id: &str) -> Result<Participant> {
        let now = now_ms();
        let p = self
            .update_child(PARTICIPANTS, id, |p: &mut Participant| {
                p.left_at.get_or_insert(now);
                p.stage = Stage::Backstage;
                Ok(())
            })
            .await?;
        self.put_revocation(&p.key_id, &p.stream).await?;
        Ok(p)
    }

    /// The participant a publish key belongs to, if it is a studio key.
    pub async fn studio_key(&self, key_id: &str) -> Result<Option<StudioKey>> {
        if !is_safe_id(key_id) {
            return Ok(None);
        }
        self.get_json(STUDIO_KEYS, key_id).await
    }
}

/// Node stream names: 1–64 of `[A-Za-z0-9_-]` (the stream-key channel rules).
fn weir_stream_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
