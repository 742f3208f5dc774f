//! Studio broadcasts: create, read, change the scene, go live, end, delete.

use crate::channels::check_text;
use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, new_id, now_ms};
use crate::store::Store;

use super::model::{BroadcastStatus, Participant, StudioBanner, StudioBroadcast, StudioLayout};
use super::{BROADCASTS, INVITATIONS, MAX_BROADCASTS, PARTICIPANTS, STUDIO_KEYS};

/// Longest layout transition.
const MAX_TRANSITION_MS: u32 = 5_000;

/// A new broadcast.
#[derive(Debug, Clone, Default)]
pub struct NewBroadcast {
    /// The channel.
    pub channel_id: String,
    /// The host.
    pub owner_id: String,
    /// Title (≤ 200 characters).
    pub title: String,
    /// Description (≤ 5000 characters).
    pub description: String,
    /// Planned start (ms).
    pub scheduled_at: Option<i64>,
    /// Record participants' own streams.
    pub record_isolated: bool,
}

/// Changes to a broadcast's details; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct BroadcastPatch {
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Planned start (`Some(None)` clears it).
    pub scheduled_at: Option<Option<i64>>,
    /// Record isolated tracks.
    pub record_isolated: Option<bool>,
}

/// Changes to the images; `None` keeps, `Some(None)` removes, `Some(Some(id))` sets.
#[derive(Debug, Clone, Default)]
pub struct OverlayPatch {
    /// Background.
    pub background: Option<Option<String>>,
    /// Logo.
    pub logo: Option<Option<String>>,
    /// Overlay.
    pub overlay: Option<Option<String>>,
}

fn not_ended(b: &StudioBroadcast) -> Result<()> {
    if b.status == BroadcastStatus::Ended {
        return Err(StoreError::Conflict("the broadcast has ended".into()));
    }
    Ok(())
}

fn check_title(title: &str) -> Result<()> {
    if title.trim().is_empty() {
        return Err(StoreError::Invalid("title must not be empty".into()));
    }
    check_text("title", title, 200)
}

impl Store {
    /// Creates a broadcast (status `scheduled`).
    pub async fn create_studio_broadcast(&self, n: NewBroadcast) -> Result<StudioBroadcast> {
        check_title(&n.title)?;
        check_text("description", &n.description, 5000)?;
        if !is_safe_id(&n.owner_id) {
            return Err(StoreError::Invalid("bad owner id".into()));
        }
        if self.get_channel(&n.channel_id).await?.is_none() {
            return Err(StoreError::NotFound("channel"));
        }
        let existing = self.list_children::<StudioBroadcast>(BROADCASTS, &n.channel_id);
        if existing.await?.len() >= MAX_BROADCASTS {
            return Err(StoreError::Conflict(format!(
                "a channel holds at most {MAX_BROADCASTS} broadcasts: delete old ones"
            )));
        }
        let now = now_ms();
        let b = StudioBroadcast {
            id: new_id(),
            channel_id: n.channel_id,
            owner_id: n.owner_id,
            title: n.title,
            description: n.description,
            status: BroadcastStatus::Scheduled,
            scheduled_at: n.scheduled_at,
            started_at: None,
            ended_at: None,
            layout: StudioLayout::default(),
            spotlight: None,
            transition_ms: 300,
            background_image: None,
            logo_image: None,
            overlay_image: None,
            banner: None,
            record_isolated: n.record_isolated,
            live_key_id: None,
            created_at: now,
            updated_at: now,
        };
        self.put_child(BROADCASTS, &b.channel_id, &b.id, &b).await?;
        Ok(b)
    }

    /// A broadcast by id.
    pub async fn get_studio_broadcast(&self, id: &str) -> Result<Option<StudioBroadcast>> {
        self.get_child(BROADCASTS, id).await
    }

    /// A channel's broadcasts, newest first.
    pub async fn list_studio_broadcasts(&self, channel_id: &str) -> Result<Vec<StudioBroadcast>> {
        let mut v: Vec<StudioBroadcast> = self.list_children(BROADCASTS, channel_id).await?;
        v.reverse();
        Ok(v)
    }

    async fn change_broadcast<F>(&self, id: &str, mut f: F) -> Result<StudioBroadcast>
    where
        F: FnMut(&mut StudioBroadcast) -> Result<()>,
    {
        self.update_child(BROADCASTS, id, |b: &mut StudioBroadcast| {
            f(b)?;
            b.updated_at = now_ms();
            Ok(())
        })
        .await
    }

    /// Changes a broadcast's details (not once it ended).
    pub async fn update_studio_broadcast(
        &self,
        id: &str,
        patch: BroadcastPatch,
    ) -> Result<StudioBroadcast> {
        if let Some(t) = &patch.title {
            check_title(t)?;
        }
        if let Some(d) = &patch.description {
            check_text("description", d, 5000)?;
        }
        self.change_broadcast(id, |b| {
            not_ended(b)?;
            if let Some(t) = &patch.title {
                b.title = t.clone();
            }
            if let Some(d) = &patch.description {
                b.description = d.clone();
            }
            if let Some(s) = patch.scheduled_at {
                b.scheduled_at = s;
            }
            if let Some(r) = patch.record_isolated {
                b.record_isolated = r;
            }
            Ok(())
        })
        .await
    }

    /// Sets the layout, the featured participant (present in this broadcast) and the
    /// transition length.
    pub async fn set_studio_layout(
        &self,
        id: &str,
        layout: StudioLayout,
        spotlight: Option<String>,
        transition_ms: u32,
    ) -> Result<StudioBroadcast> {
        if transition_ms > MAX_TRANSITION_MS {
            return Err(StoreError::Invalid(format!(
                "transition is at most {MAX_TRANSITION_MS} ms"
            )));
        }
        if let Some(p) = &spotlight {
            let found: Option<Participant> = self.get_child(PARTICIPANTS, p).await?;
            if !found.is_some_and(|p| p.broadcast_id == id && p.present()) {
                return Err(StoreError::Invalid(
                    "the spotlight must be a participant present in this broadcast".into(),
                ));
            }
        }
        self.change_broadcast(id, |b| {
            not_ended(b)?;
            b.layout = layout;
            b.spotlight = spotlight.clone();
            b.transition_ms = transition_ms;
            Ok(())
        })
        .await
    }

    /// Sets or clears the background, logo and overlay (images of the channel).
    pub async fn set_studio_overlays(
        &self,
        id: &str,
        patch: OverlayPatch,
    ) -> Result<StudioBroadcast> {
        let b = self
            .get_studio_broadcast(id)
            .await?
            .ok_or(StoreError::NotFound("studio broadcast"))?;
        for img in [&patch.background, &patch.logo, &patch.overlay]
            .into_iter()
            .flatten()
            .flatten()
        {
            if self.get_studio_image(&b.channel_id, img).await?.is_none() {
                return Err(StoreError::Invalid(format!(
                    "no image {img:?} was uploaded for this channel"
                )));
            }
        }
        self.change_broadcast(id, |b| {
            not_ended(b)?;
            if let Some(v) = &patch.background {
                b.background_image = v.clone();
            }
            if let Some(v) = &patch.logo {
                b.logo_image = v.clone();
            }
            if let Some(v) = &patch.overlay {
                b.overlay_image = v.clone();
            }
            Ok(())
        })
        .await
    }

    /// Shows a banner (`None` hides it).
    pub async fn set_studio_banner(
        &self,
        id: &str,
        banner: Option<StudioBanner>,
    ) -> Result<StudioBroadcast> {
        if let Some(bn) = &banner {
            if bn.title.trim().is_empty() {
                return Err(StoreError::Invalid("banner title must not be empty".into()));
            }
            check_text("banner title", &bn.title, 200)?;
            check_text("banner subtitle", &bn.subtitle, 200)?;
        }
        self.change_broadcast(id, |b| {
            not_ended(b)?;
            b.banner = banner.clone();
            Ok(())
        })
        .await
    }

    /// `scheduled` → `live`, with the channel key id the program publishes with.
    pub async fn studio_go_live(&self, id: &str, key_id: &str) -> Result<StudioBroadcast> {
        self.change_broadcast(id, |b| {
            match b.status {
                BroadcastStatus::Scheduled => {}
                BroadcastStatus::Live => {
                    return Err(StoreError::Conflict("the broadcast is already live".into()));
                }
                BroadcastStatus::Ended => not_ended(b)?,
            }
            b.status = BroadcastStatus::Live;
            b.started_at = Some(now_ms());
            b.live_key_id = Some(key_id.to_string());
            Ok(())
        })
        .await
    }

    /// Ends a broadcast (`scheduled` or `live` → `ended`); everyone present leaves.
    pub async fn studio_end(&self, id: &str) -> Result<StudioBroadcast> {
        let b = self
            .change_broadcast(id, |b| {
                not_ended(b)?;
                b.status = BroadcastStatus::Ended;
                b.ended_at = Some(now_ms());
                b.banner = None;
                Ok(())
            })
            .await?;
        for p in self.list_participants(id).await? {
            if p.present() {
                self.remove_participant(&p.id).await?;
            }
        }
        Ok(b)
    }

    /// Deletes a broadcast with its participants and invitations.
    pub async fn delete_studio_broadcast(&self, id: &str) -> Result<bool> {
        if self.get_studio_broadcast(id).await?.is_none() {
            return Ok(false);
        }
        for p in self.list_participants(id).await? {
            self.kv().delete(STUDIO_KEYS, &p.key_id).await?;
            self.delete_child(PARTICIPANTS, &p.id).await?;
        }
        for i in self.list_invitations(id).await? {
            self.delete_child(INVITATIONS, &i.id).await?;
        }
        self.delete_child(BROADCASTS, id).await
    }
}
