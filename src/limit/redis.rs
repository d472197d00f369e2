//! Limits shared across replicas, in Redis.
//!
//! One atomic script call per request decides the GCRA step (the theoretical arrival time lives
//! in Redis, time comes from Redis's own clock, so there is no read-then-write race and no clock
//! skew between replicas) and reports any shared Dataverse cooldown, so a 429 seen by one
//! replica pauses all of them. The connection is managed and reconnects by itself; when Redis
//! cannot answer within [`CALL_TIMEOUT`], the caller applies `on_error`. State changes (down,
//! back up) are logged once each. The URL, which may carry a password, is never printed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::rate::{Rate, Verdict};

/// How long one Redis call may take before the store counts as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// KEYS: rate key, cooldown key. ARGV: emission interval (ms, may be fractional), burst.
/// Returns {admitted, remaining, retry_after_ms, reset_ms, cooldown_ms}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cooldown = redis.call('PTTL', KEYS[2])
if cooldown < 0 then cooldown = 0 end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - tolerance > now then
  return {0, 0, math.ceil(new_tat - tolerance - now), math.ceil(tat - now), cooldown}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
local remaining = math.floor((now + tolerance - new_tat) / interval)
return {1, remaining, 0, math.ceil(new_tat - now), cooldown}
"#;

/// KEYS: cooldown key. ARGV: milliseconds. Extends, never shortens.
const COOLDOWN: &str = r#"
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Fall back to the local limiter at the configured rate.
    FailOpen,
    /// Answer 429 while Redis is unavailable.
    FailClosed,
}

#[derive(Debug, thiserror::Error)]
#[error("the rate-limit store is unavailable: {0}")]
pub struct StoreError(String);

pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    pub on_error: OnError,
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
    last_attempt: Mutex<Option<Instant>>,
    up: AtomicBool,
    gcra: redis::Script,
    cooldown: redis::Script,
}

impl RedisStore {
    pub fn new(url: &str, prefix: &str, on_error: OnError) -> Result<RedisStore, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("invalid Redis URL ({:?})", e.kind()))?;
        Ok(RedisStore {
            client,
            prefix: prefix.to_string(),
            on_error,
            manager: tokio::sync::Mutex::new(None),
            last_attempt: Mutex::new(None),
            up: AtomicBool::new(true),
            gcra: redis::Script::new(GCRA),
            cooldown: redis::Script::new(COOLDOWN),
        })
    }

    /// Whether the last call succeeded.
    pub fn healthy(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// One GCRA step for `tenant`, and the shared cooldown left.
    pub async fn check(&self, tenant: &str, rate: Rate) -> Result<(Verdict, Duration), StoreError> {
        let mut conn = self.connection().await?;
        let interval = 1000.0 / f64::from(rate.per_second.max(1));
        let mut call = self.gcra.key(self.key(tenant, "gcra"));
        call.key(self.key(tenant, "cooldown"))
            .arg(interval)
            .arg(rate.burst);
        let reply: Result<(i64, i64, i64, i64, i64), _> =
            self.timed(call.invoke_async(&mut conn)).await;
        let (admitted, remaining, retry, reset, cooldown) = reply?;
        let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        let verdict = if admitted == 1 {
            Verdict::Admitted {
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset: ms(reset),
            }
        } else {
            Verdict::Limited {
                retry_after: ms(retry),
            }
        };
        Ok((verdict, ms(cooldown)))
    }

    /// Shares a Dataverse cooldown with every replica.
    pub async fn throttled(&self, tenant: &str, retry_after: Duration) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let mut call = self.cooldown.key(self.key(tenant, "cooldown"));
        call.arg(
            u64::try_from(retry_after.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        let _: i64 = self.timed(call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    fn key(&self, tenant: &str, what: &str) -> String {
        format!("{}{tenant}:{what}", self.prefix)
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(CALL_TIMEOUT, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError(format!("{:?}", e.kind()))),
            Err(_) => Err(StoreError("timed out".into())),
        };
        self.mark(result.is_ok(), result.as_ref().err());
        result
    }

    fn mark(&self, ok: bool, err: Option<&StoreError>) {
        let was = self.up.swap(ok, Ordering::Relaxed);
        match (was, ok) {
            (true, false) => {
                tracing::error!(error = %err.map(|e| e.to_string()).unwrap_or_default(), on_error = ?self.on_error, "rate-limit store (Redis) unavailable")
            }
            (false, true) => tracing::info!("rate-limit store (Redis) available again"),
            _ => {}
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.manager.lock().await;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < RECONNECT_EVERY) {
                drop(last);
                let err = StoreError("not connected".into());
                self.mark(false, Some(&err));
                return Err(err);
            }
            *last = Some(Instant::now());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            CALL_TIMEOUT * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(m)) => {
                *slot = Some(m.clone());
                Ok(m)
            }
            Ok(Err(e)) => {
                let err = StoreError(format!("{:?}", e.kind()));
                self.mark(false, Some(&err));
                Err(err)
            }
            Err(_) => {
                let err = StoreError("connect timed out".into());
                self.mark(false, Some(&err));
                Err(err)
            }
        }
    }
}
