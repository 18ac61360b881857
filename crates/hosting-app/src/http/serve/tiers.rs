//! The two cache tiers in front of the store, read one way for hosts, manifests and
//! blobs: L1 is this process's bounded cache, L2 the cache the replicas share (Redis in
//! cluster mode; absent in embedded mode). A tier that fails is a miss, never an error.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ServeError;
use crate::shared::{count_l2, SharedState};

/// `key` from L1, else from the future `load` makes (run once per key however many
/// requests wait for it), which fills L1. A hit builds nothing: no owned key, no loader
/// (they cost an allocation or two per request on the hot path, issue 17).
pub async fn l1<K, V, S, F>(
    cache: &Cache<K, V, S>,
    kind: &'static str,
    key: &K,
    load: impl FnOnce() -> F,
) -> Result<V, ServeError>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
    F: Future<Output = Result<V, ServeError>>,
{
    match l1_get(cache, kind, key).await {
        Some(found) => Ok(found),
        // Boxed: a request's future is as large as its largest path, and the fill's
        // (moka's loader and the tiers below) is many times the hit's; every request
        // pays for moving its future into its box (issue 17: `memmove` 1.5 % there).
        None => Box::pin(l1_fill(cache, key, load)).await,
    }
}

/// `key` from L1, the lookup counted as a hit or a miss.
pub async fn l1_get<K, V, S>(cache: &Cache<K, V, S>, kind: &'static str, key: &K) -> Option<V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    let found = cache.get(key).await;
    crate::telemetry::record_cache_lookup("l1", kind, found.is_some());
    found
}

/// After an [`l1_get`] miss: `key` from the future `load` makes, run once per key however
/// many requests wait for it, which fills L1.
pub async fn l1_fill<K, V, S, F>(
    cache: &Cache<K, V, S>,
    key: &K,
    load: impl FnOnce() -> F,
) -> Result<V, ServeError>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
    F: Future<Output = Result<V, ServeError>>,
{
    cache
        .try_get_with_by_ref(key, load())
        .await
        .map_err(ServeError::Shared)
}

/// How a value is kept in the shared cache.
pub trait SharedForm: Sized {
    fn encode(&self) -> Option<Vec<u8>>;
    fn decode(bytes: Bytes) -> Option<Self>;
}

/// Blob bytes are kept as they are.
impl SharedForm for Bytes {
    fn encode(&self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }

    fn decode(bytes: Bytes) -> Option<Self> {
        Some(bytes)
    }
}

/// Store rows (host lookups, manifests) are kept as JSON.
pub struct Json<T>(pub T);

impl<T: Serialize + DeserializeOwned> SharedForm for Json<T> {
    fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&self.0).ok()
    }

    fn decode(bytes: Bytes) -> Option<Self> {
        serde_json::from_slice(&bytes).ok().map(Json)
    }
}

/// Where and whether a value goes in the shared cache.
pub struct L2<'a> {
    pub shared: &'a Arc<dyn SharedState>,
    pub kind: &'static str,
    pub key: String,
    pub ttl: Duration,
}

/// `l2.key` from the shared cache, else from `load`; what `keep` accepts is stored for
/// the other replicas.
pub async fn l2<V, F>(l2: L2<'_>, keep: impl FnOnce(&V) -> bool, load: F) -> Result<V, ServeError>
where
    V: SharedForm,
    F: Future<Output = Result<V, ServeError>>,
{
    let shared = l2.shared.as_ref();
    if let Some(found) = shared.get(&l2.key).await.and_then(V::decode) {
        count_l2(shared, l2.kind, true);
        return Ok(found);
    }
    count_l2(shared, l2.kind, false);
    let value = load.await?;
    if keep(&value) {
        if let Some(bytes) = value.encode() {
            shared.set(&l2.key, &bytes, l2.ttl).await;
        }
    }
    Ok(value)
}
