//! Uploaded images: checked ([`super::image`]), content-addressed (hex SHA-256), kept
//! per channel with their bytes in chunks.

use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, now_ms};
use crate::store::Store;

use super::image::{ImageError, check_image};
use super::model::StudioImage;
use super::{IMAGE_CHUNK, MAX_IMAGES};

fn meta_bucket(channel_id: &str) -> String {
    format!("studio-images/{channel_id}")
}

fn data_bucket(channel_id: &str, id: &str) -> String {
    format!("studio-image-data/{channel_id}/{id}")
}

fn chunk_key(i: usize) -> String {
    format!("c{i:03}")
}

/// Why an upload was refused: the image, or the store.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Not an acceptable image.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Stores an image for a channel after checking it against its declared type;
    /// uploading the same bytes again returns the stored record.
    pub async fn put_studio_image(
        &self,
        channel_id: &str,
        data: &[u8],
        content_type: &str,
    ) -> std::result::Result<StudioImage, UploadError> {
        let info = check_image(data, content_type)?;
        if !is_safe_id(channel_id) {
            return Err(StoreError::Invalid("bad channel id".into()).into());
        }
        let id: String = Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(existing) = self.get_studio_image(channel_id, &id).await? {
            return Ok(existing);
        }
        if self.list_studio_images(channel_id).await?.len() >= MAX_IMAGES {
            return Err(StoreError::Conflict(format!(
                "a channel holds at most {MAX_IMAGES} images: delete some first"
            ))
            .into());
        }
        let rows: Vec<(String, Vec<u8>)> = data
            .chunks(IMAGE_CHUNK)
            .enumerate()
            .map(|(i, c)| (chunk_key(i), c.to_vec()))
            .collect();
        self.kv()
            .put_many(&data_bucket(channel_id, &id), &rows)
            .await?;
        let img = StudioImage {
            id: id.clone(),
            channel_id: channel_id.to_string(),
            mime: info.mime.to_string(),
            width: info.width,
            height: info.height,
            size: data.len() as u64,
            created_at: now_ms(),
        };
        self.put_json(&meta_bucket(channel_id), &id, &img, None)
            .await?;
        Ok(img)
    }

    /// An image's record.
    pub async fn get_studio_image(
        &self,
        channel_id: &str,
        id: &str,
    ) -> Result<Option<StudioImage>> {
        if !is_safe_id(channel_id) || !is_safe_id(id) {
            return Ok(None);
        }
        self.get_json(&meta_bucket(channel_id), id).await
    }

    /// An image's bytes (checked against its recorded size).
    pub async fn studio_image_data(&self, channel_id: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let Some(img) = self.get_studio_image(channel_id, id).await? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(usize::try_from(img.size).unwrap_or(0));
        for (_, chunk) in self.kv().list(&data_bucket(channel_id, id)).await? {
            out.extend_from_slice(&chunk);
        }
        if out.len() as u64 != img.size {
            return Err(StoreError::Backend {
                backend: self.kv().backend(),
                message: format!("image {id} has {} of {} bytes", out.len(), img.size),
            });
        }
        Ok(Some(out))
    }

    /// A channel's images, by id.
    pub async fn list_studio_images(&self, channel_id: &str) -> Result<Vec<StudioImage>> {
        if !is_safe_id(channel_id) {
            return Ok(Vec::new());
        }
        self.list_json(&meta_bucket(channel_id)).await
    }

    /// Deletes an image; true when it existed.
    pub async fn delete_studio_image(&self, channel_id: &str, id: &str) -> Result<bool> {
        if !is_safe_id(channel_id) || !is_safe_id(id) {
            return Ok(false);
        }
        let existed = self.kv().delete(&meta_bucket(channel_id), id).await?;
        let bucket = data_bucket(channel_id, id);
        for (k, _) in self.kv().list(&bucket).await? {
            self.kv().delete(&bucket, &k).await?;
        }
        Ok(existed)
    }
}
