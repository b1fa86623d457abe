//! [`connect`]: a connection manager with the timeouts a poller needs.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::Error;

/// How long one connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The configuration of every manager this crate makes: short connection
/// timeouts and few reconnection retries, so that a command sent while Redis
/// is down fails within about a second (and the caller degrades) instead of
/// waiting for a long reconnection schedule.
pub(crate) fn config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// A [`ConnectionManager`] for a [`FleetBudget`](crate::FleetBudget), made
/// lazily: it does not fail when Redis is down (the budget starts degraded
/// and recovers when Redis answers), and it reconnects by itself.
///
/// Commands time out after 1 s and a connection attempt after 0.5 s.
///
/// # Errors
/// [`Error::Redis`] when the client's configuration is unusable.
///
/// # Examples
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), pollkit_redis::Error> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let conn = pollkit_redis::connect(&client).await?;
/// # let _ = conn; Ok(()) }
/// ```
pub async fn connect(client: &redis::Client) -> Result<ConnectionManager, Error> {
    manager(client, Duration::from_secs(1))
}

/// A lazy manager with a response timeout (the hub's reader needs one longer
/// than its blocking reads).
pub(crate) fn manager(
    client: &redis::Client,
    response_timeout: Duration,
) -> Result<ConnectionManager, Error> {
    Ok(ConnectionManager::new_lazy_with_config(
        client.clone(),
        config(response_timeout),
    )?)
}
