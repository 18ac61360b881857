//! Concurrent reads of one blob share one request: a cold site page asks for the same
//! files from many clients at once, and each GET to a three-node store costs ~45 ms.
//! Results are not kept (the serving path's caches do that); an entry lives only while
//! its first caller waits.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};

use crate::blobs::BlobError;
use crate::domain::names::Sha256;

type Read = Result<Option<Bytes>, Arc<BlobError>>;

#[derive(Default)]
pub(super) struct Coalesce {
    inflight: Arc<Mutex<HashMap<Sha256, Shared<BoxFuture<'static, Read>>>>>,
}

/// Removes the entry when its first caller is done or gone, so a later miss asks again
/// (a failure is never reused) and the map never outgrows the reads in flight.
struct Leader {
    inflight: Arc<Mutex<HashMap<Sha256, Shared<BoxFuture<'static, Read>>>>>,
    key: Sha256,
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl Coalesce {
    /// `load`'s result, or that of the same key's load already in flight.
    pub(super) async fn run(
        &self,
        key: &Sha256,
        load: impl Future<Output = Result<Option<Bytes>, BlobError>> + Send + 'static,
    ) -> Result<Option<Bytes>, BlobError> {
        let (shared, _leader) = {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            match inflight.get(key) {
                Some(shared) => (shared.clone(), None),
                None => {
                    let shared = load.map(|result| result.map_err(Arc::new)).boxed().shared();
                    inflight.insert(key.clone(), shared.clone());
                    let leader = Leader {
                        inflight: self.inflight.clone(),
                        key: key.clone(),
                    };
                    (shared, Some(leader))
                }
            }
        };
        shared.await.map_err(|e| match e.as_ref() {
            BlobError::Unavailable(cause) => BlobError::Unavailable(cause.clone()),
            other => BlobError::Io(std::io::Error::other(other.to_string())),
        })
    }

    #[cfg(test)]
    pub(super) fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
