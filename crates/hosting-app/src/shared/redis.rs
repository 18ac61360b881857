//! Redis as the shared state of cluster mode. Commands have a short timeout; while
//! Redis is unreachable every call is a quick miss, the outage is logged at most once
//! per interval and shown by `hosting_redis_up`, and the connection is retried in the
//! background (at most once a second), so the app serves from origin meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use tokio::sync::Mutex;

use super::contract::{Invalidation, SharedState};

const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);
const LOG_INTERVAL: Duration = Duration::from_secs(30);

pub struct RedisShared {
    client: redis::Client,
    prefix: String,
    connection: Mutex<Option<ConnectionManager>>,
    last_attempt: std::sync::Mutex<Option<Instant>>,
    last_log: std::sync::Mutex<Option<Instant>>,
    up: AtomicBool,
}

impl RedisShared {
    pub fn new(url: &str, prefix: &str) -> Result<Arc<RedisShared>, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid REDIS_URL: {e}"))?;
        Ok(Arc::new(RedisShared {
            client,
            prefix: prefix.to_owned(),
            connection: Mutex::new(None),
            last_attempt: std::sync::Mutex::new(None),
            last_log: std::sync::Mutex::new(None),
            up: AtomicBool::new(false),
        }))
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    fn channel(&self) -> String {
        self.key("invalidate")
    }

    fn mark(&self, up: bool, error: Option<&dyn std::fmt::Display>) {
        let was = self.up.swap(up, Ordering::AcqRel);
        metrics::gauge!(crate::metrics::REDIS_UP).set(if up { 1.0 } else { 0.0 });
        if up && !was {
            tracing::info!("redis is reachable");
        }
        if let (false, Some(error)) = (up, error) {
            let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|at| at.elapsed() > LOG_INTERVAL) {
                *last = Some(Instant::now());
                tracing::warn!(error = %error, "redis unavailable: serving from origin");
            }
        }
    }

    /// A live connection, connecting at most once per `RECONNECT_INTERVAL` while down.
    async fn connection(&self) -> Option<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Some(connection.clone());
        }
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < RECONNECT_INTERVAL) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let connection = self
            .bounded(
                COMMAND_TIMEOUT * 2,
                self.client.get_connection_manager_with_config(config),
            )
            .await?;
        self.mark(true, None);
        *slot = Some(connection.clone());
        Some(connection)
    }

    /// Awaits `operation` for at most `limit`; an error or a time-out marks Redis down.
    async fn bounded<T>(
        &self,
        limit: Duration,
        operation: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(limit, operation).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.mark(false, Some(&e));
                None
            }
            Err(e) => {
                self.mark(false, Some(&e));
                None
            }
        }
    }

    /// Runs one command with the timeout; failures mark Redis down and yield `None`.
    pub(crate) async fn run<T, F, Fut>(&self, command: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection().await?;
        let value = self.bounded(COMMAND_TIMEOUT, command(connection)).await?;
        if !self.up.load(Ordering::Acquire) {
            self.mark(true, None);
        }
        Some(value)
    }

    /// Delivers invalidations published by any replica to `on_event` until the process
    /// exits, resubscribing after a failure. `on_resubscribe` runs after every (re)connect:
    /// events may have been missed meanwhile.
    pub async fn subscribe(
        self: Arc<Self>,
        on_event: impl Fn(Invalidation) + Send + Sync + 'static,
        on_resubscribe: impl Fn() + Send + Sync + 'static,
    ) {
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.subscribe(self.channel()).await.is_ok() {
                        on_resubscribe();
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                            match serde_json::from_slice::<Invalidation>(&payload) {
                                Ok(event) => on_event(event),
                                Err(e) => {
                                    tracing::warn!(error = %e, "ignored a malformed invalidation")
                                }
                            }
                        }
                    }
                    self.mark(false, Some(&"the subscription ended"));
                }
                Err(e) => self.mark(false, Some(&e)),
            }
            tokio::time::sleep(RECONNECT_INTERVAL).await;
        }
    }
}

#[async_trait]
impl SharedState for RedisShared {
    async fn get(&self, key: &str) -> Option<Bytes> {
        let key = self.key(key);
        self.run(|mut c| async move { c.get::<_, Option<Vec<u8>>>(key).await })
            .await
            .flatten()
            .map(Bytes::from)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let key = self.key(key);
        let value = value.to_vec();
        let seconds = ttl.as_secs().max(1);
        self.run(|mut c| async move { c.set_ex::<_, _, ()>(key, value, seconds).await })
            .await
            .is_some()
    }

    async fn delete(&self, key: &str) {
        let key = self.key(key);
        self.run(|mut c| async move { c.del::<_, ()>(key).await })
            .await;
    }

    async fn publish(&self, event: &Invalidation) {
        let Ok(payload) = serde_json::to_vec(event) else {
            return;
        };
        let channel = self.channel();
        self.run(|mut c| async move { c.publish::<_, _, ()>(channel, payload).await })
            .await;
    }

    async fn increment(&self, key: &str, window: Duration) -> Option<u64> {
        let key = self.key(key);
        let seconds = i64::try_from(window.as_secs().max(1)).unwrap_or(60);
        self.run(|mut c| async move {
            let (count, _): (u64, bool) = redis::pipe()
                .atomic()
                .incr(&key, 1u64)
                .expire(&key, seconds)
                .query_async(&mut c)
                .await?;
            Ok(count)
        })
        .await
    }

    fn status(&self) -> &'static str {
        if self.up.load(Ordering::Acquire) {
            "up"
        } else {
            "down"
        }
    }
}
