//! The recorder's object-store seam: where a recording's durable files go besides the
//! local disk, and where `/vod/` reads them from once they are only there.
//!
//! [`RecordStore::Local`] (the default) keeps everything on the local disk, as the node
//! always did. [`RecordStore::Remote`] adds an S3 bucket (any S3-protocol server through
//! `record_store_endpoint`), reached with `object_store`: a recording's files are copied
//! to `<prefix>/<recording id>/<file>` by the uploader (`upload`). The local disk stays
//! the crash-safe journal: a file is uploaded only once it is durable there.
//!
//! Store I/O runs on a thread of its own (`weir-record-store`) in a current-thread tokio
//! runtime, never on a shard: shards and blocking threads hand it requests and await or
//! block on the answer. Credentials come from the standard `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) environment; they are never logged
//! and never in a `Debug`.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig,
};
use parking_lot::Mutex;

/// Where recordings go, as configured (`[node] record_store*`, `record_keep_local`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `s3://<bucket>/<prefix>`; empty: the local disk only.
    pub url: String,
    /// Endpoint of an S3-compatible server (`http(s)://host:port`); empty: AWS.
    pub endpoint: String,
    /// The bucket's region; empty: `AWS_REGION` or `us-east-1`.
    pub region: String,
    /// Allow a plain-HTTP endpoint (tests, a store on the local network).
    pub allow_http: bool,
    /// Keep the media files on the local disk once uploaded; false: a finished, fully
    /// uploaded recording keeps only its index locally and is served from the store.
    pub keep_local: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            endpoint: String::new(),
            region: String::new(),
            allow_http: false,
            keep_local: true,
        }
    }
}

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `record_store` is not `s3://<bucket>[/<prefix>]`.
    #[error("record_store must be s3://<bucket>[/<prefix>], not {0:?}")]
    BadUrl(String),
    /// The client could not be built from the settings.
    #[error("cannot set up the S3 client: {0}")]
    Build(#[source] object_store::Error),
    /// The store thread could not be started.
    #[error("cannot start the record store thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The object is not in the store.
    #[error("not in the store")]
    NotFound,
    /// The store answered with an error (or could not be reached).
    #[error("{0}")]
    Store(#[source] object_store::Error),
    /// The store thread is gone (shutdown).
    #[error("the record store thread is gone")]
    Gone,
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            e => Self::Store(e),
        }
    }
}

/// The recorder's store: the local disk only, or also an object store.
#[derive(Debug, Clone, Default)]
pub enum RecordStore {
    /// Recordings stay on the local disk (the default).
    #[default]
    Local,
    /// Recordings are also copied to an object store.
    Remote(Arc<Remote>),
}

impl RecordStore {
    /// The store `config` asks for (starts the store thread for a remote one).
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        if config.url.is_empty() {
            return Ok(Self::Local);
        }
        Remote::open(config).map(Self::Remote)
    }

    /// The object store, when there is one.
    pub fn remote(&self) -> Option<&Arc<Remote>> {
        match self {
            Self::Local => None,
            Self::Remote(r) => Some(r),
        }
    }
}

/// An S3 bucket (and prefix) holding recordings, and the thread that talks to it.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    endpoint: String,
    keep_local: bool,
    rt: tokio::runtime::Handle,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("keep_local", &self.keep_local)
            .finish_non_exhaustive()
    }
}

/// Splits `s3://bucket/prefix` into its bucket and prefix (no slashes around it).
pub fn parse_url(url: &str) -> Result<(String, String), StoreError> {
    let bad = || StoreError::BadUrl(url.to_owned());
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() || bucket.contains(['?', '#', ' ']) {
        return Err(bad());
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

impl Remote {
    fn open(config: &StoreConfig) -> Result<Arc<Self>, StoreError> {
        let (bucket, prefix) = parse_url(&config.url)?;
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            // The uploader retries on its own, with a longer backoff: a request here
            // fails within seconds when the store is down.
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
        };
        let options = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60));
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_allow_http(config.allow_http)
            .with_retry(retry)
            .with_client_options(options);
        if !config.region.is_empty() {
            b = b.with_region(&config.region);
        }
        if !config.endpoint.is_empty() {
            b = b.with_endpoint(&config.endpoint);
        }
        let store: Arc<dyn ObjectStore> = Arc::new(b.build().map_err(StoreError::Build)?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("weir-record-store".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                // Drives every task handed to the handle until shutdown.
                let _ = rt.block_on(stopped);
            })
            .map_err(StoreError::Thread)?;
        let rt = handle_rx
            .recv()
            .map_err(|_| StoreError::Gone)?
            .map_err(StoreError::Thread)?;
        Ok(Arc::new(Self {
            store,
            bucket,
            prefix,
            endpoint: config.endpoint.clone(),
            keep_local: config.keep_local,
            rt,
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Where recordings go, for the startup log: `s3://bucket/prefix (endpoint …)`.
    pub fn describe(&self) -> String {
        let mut s = format!("s3://{}/{}", self.bucket, self.prefix);
        if !self.endpoint.is_empty() {
            s.push_str(&format!(" at {}", self.endpoint));
        }
        s
    }

    /// Whether media files stay on the local disk once uploaded.
    pub fn keep_local(&self) -> bool {
        self.keep_local
    }

    /// The store's runtime (the uploader runs on it).
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// The object of recording `id`'s file `file`.
    fn key(&self, id: &str, file: &str) -> StorePath {
        StorePath::from(self.dir_key(id).to_string() + "/" + file)
    }

    fn dir_key(&self, id: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(id)
        } else {
            StorePath::from(format!("{}/{id}", self.prefix))
        }
    }

    /// Stores `data` as recording `id`'s `file` (on the store's runtime).
    pub(crate) async fn put(&self, id: &str, file: &str, data: Bytes) -> Result<(), StoreError> {
        self.store
            .put(&self.key(id, file), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }

    /// The names of recording `id`'s files in the store (on the store's runtime).
    pub(crate) async fn list(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.dir_key(id);
        let mut listing = self.store.list(Some(&dir));
        let mut names = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(StoreError::from)?;
            if let Some(name) = meta.location.filename() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// Deletes every object of recording `id` (on the store's runtime).
    pub(crate) async fn delete_all(&self, id: &str) -> Result<usize, StoreError> {
        let names = self.list(id).await?;
        for name in &names {
            match self.store.delete(&self.key(id, name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StoreError::Store(e)),
            }
        }
        Ok(names.len())
    }

    /// Reads recording `id`'s `file` (whole, or bytes `range`): hands the request to the
    /// store thread and awaits the answer (from a shard: nothing blocks).
    pub async fn get(
        self: &Arc<Self>,
        id: &str,
        file: &str,
        range: Option<Range<u64>>,
    ) -> Result<Bytes, StoreError> {
        self.request(id, file, range)
            .await
            .map_err(|_| StoreError::Gone)?
    }

    /// [`Remote::get`] from a blocking thread (never from the store thread itself).
    pub fn get_blocking(&self, id: &str, file: &str) -> Result<Bytes, StoreError> {
        self.request(id, file, None)
            .blocking_recv()
            .map_err(|_| StoreError::Gone)?
    }

    fn request(
        &self,
        id: &str,
        file: &str,
        range: Option<Range<u64>>,
    ) -> tokio::sync::oneshot::Receiver<Result<Bytes, StoreError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let store = self.store.clone();
        let key = self.key(id, file);
        self.rt.spawn(async move {
            let r = match range {
                Some(r) => store.get_range(&key, r).await,
                None => match store.get(&key).await {
                    Ok(got) => got.bytes().await,
                    Err(e) => Err(e),
                },
            };
            metrics::counter!("weir_record_store_reads_total").increment(1);
            let _ = tx.send(r.map_err(StoreError::from));
        });
        rx
    }

    /// Stops the store thread (what is in flight is dropped; the uploader resumes at the
    /// next start).
    pub fn close(&self) {
        if let Some(stop) = self.stop.lock().take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        let ok = |u: &str| parse_url(u).ok();
        assert_eq!(ok("s3://b"), Some(("b".into(), String::new())));
        assert_eq!(ok("s3://b/"), Some(("b".into(), String::new())));
        assert_eq!(ok("s3://b/vod/x/"), Some(("b".into(), "vod/x".into())));
        assert!(ok("s3://").is_none());
        assert!(ok("s3:///p").is_none());
        assert!(ok("gs://b/p").is_none());
        assert!(ok("/var/weir").is_none());
    }

    #[test]
    fn the_debug_shows_no_secret() {
        let config = StoreConfig {
            url: "s3://bucket/p".into(),
            endpoint: "http://127.0.0.1:1".into(),
            allow_http: true,
            ..StoreConfig::default()
        };
        let r = Remote::open(&config).expect("builds without reaching the store");
        let shown = format!("{r:?}");
        assert!(shown.contains("bucket") && !shown.to_lowercase().contains("secret"));
        assert_eq!(r.key("id1", "seg-0.m4s").as_ref(), "p/id1/seg-0.m4s");
        r.close();
    }
}
