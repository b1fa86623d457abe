//! When an interval is counted from.

/// Where a poll interval is counted from.
///
/// With a 5 s interval and a request that takes 2 s:
///
/// ```text
/// FixedDelay: |req..|     wait 5 s     |req..|     wait 5 s     |req..|
///             0     2                  7     9                  14
/// FixedRate:  |req..|  wait 3 s  |req..|  wait 3 s  |req..|
///             0     2            5     7            10
/// ```
///
/// With [`FixedRate`](Cadence::FixedRate), a request slower than the interval
/// makes the poller skip the ticks it missed and wait for the next one on the
/// grid: there is never a burst of catch-up requests, and the grid does not
/// drift over thousands of ticks. After an error backoff or a server hint,
/// the grid restarts from the request that followed it.
///
/// # Default
/// [`Cadence::FixedDelay`]: the server always gets at least one interval of
/// rest between a response and the next request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cadence {
    /// The interval is counted from the end of the previous response.
    #[default]
    FixedDelay,
    /// The interval is counted from the start of the previous request.
    FixedRate,
}
