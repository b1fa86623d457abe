//! A shared request budget on the paused clock: the rate holds across a
//! fleet, every poller gets its turn, deadlines are honoured.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ApiError, secs};
use futures::StreamExt;
use pollkit::{Budget, Error, Poller, ShortPoll, Stats};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn ten_thousand_pollers_share_a_budget_of_100_per_second_fairly() {
    const POLLERS: usize = 10_000;
    let budget = Budget::per_second(100).burst(10);
    let start = Instant::now();
    // (poller, instant) of every request.
    let log: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
    let pollers = (0..POLLERS).map(|p| {
        let log = log.clone();
        // Each poller wants 3 requests, 1 s apart: 30,000 requests wanted at
        // 10,000 per second, 100 times what the budget allows.
        ShortPoll::new(move || {
            log.lock().unwrap().push((p, start.elapsed()));
            std::future::ready(Ok::<_, ApiError>(()))
        })
        .interval(secs(1))
        .budget(budget.clone())
        .take(3)
        .for_each(|_| async {})
    });
    futures::future::join_all(pollers).await;
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3 * POLLERS, "every poller got all its turns");
    // The rate holds: in any one-second window at most 100 requests plus the burst.
    let mut per_second = vec![0_usize; 400];
    for (_, at) in log.iter() {
        per_second[at.as_secs() as usize] += 1;
    }
    let busiest = per_second.iter().max().unwrap();
    assert!(*busiest <= 110, "busiest second had {busiest} requests");
    // 30,000 requests at 100/s take about 300 s, not less.
    let last = log.iter().map(|(_, at)| *at).max().unwrap();
    assert!(last >= secs(299) && last <= secs(301), "{last:?}");
    // Fair: every poller's first request came before any poller's third one
    // had to wait behind it (FIFO by the time each asked).
    let mut firsts = vec![Duration::MAX; POLLERS];
    for (p, at) in log.iter() {
        firsts[*p] = firsts[*p].min(*at);
    }
    let last_first = firsts.iter().max().unwrap();
    assert!(
        *last_first <= secs(100),
        "the last poller started at {last_first:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_never_pushes_a_request_past_the_deadline() {
    let budget = Budget::every(secs(100));
    let stats = Stats::new();
    let results = futures::future::join_all((0..3).map(|_| {
        ShortPoll::new(|| std::future::ready(Ok::<_, ApiError>(false)))
            .budget(budget.clone())
            .stats(stats.clone())
            .timeout(secs(10))
            .until(|done| *done)
    }))
    .await;
    // The first poller goes at once; the others are held by the budget until
    // their deadline, make their final request there, and time out on time.
    for r in &results {
        match r {
            Err(Error::Timeout { elapsed, .. }) => assert!(*elapsed <= secs(10)),
            other => panic!("{other:?}"),
        }
    }
    assert!(stats.requests() <= 5, "{}", stats.requests());
}

#[tokio::test(start_paused = true)]
async fn stats_count_requests_errors_and_waits_across_a_fleet() {
    let stats = Stats::new();
    let mut answers = vec![
        Err(ApiError::Unavailable { retry_after: None }),
        Ok(1),
        Ok(2),
    ]
    .into_iter();
    let r = ShortPoll::new(move || std::future::ready(answers.next().unwrap_or(Ok(3))))
        .interval(secs(5))
        .backoff(pollkit::Backoff::new().jitter(pollkit::Jitter::None))
        .stats(stats.clone())
        .until(|n| *n == 2)
        .await;
    assert_eq!(r.unwrap(), 2);
    assert_eq!(stats.requests(), 3);
    assert_eq!(stats.errors(), 1);
    // 1 s backoff, then one 5 s interval.
    assert_eq!(stats.waited(), secs(6));
    assert_eq!(stats.reconnects(), 0);
}

/// An admission step that answers after a round trip (as a shared store
/// would): a budget of one request per second behind a 10 ms "network".
#[derive(Debug)]
struct Remote {
    budget: Budget,
    asked: Arc<Mutex<u32>>,
}

impl pollkit::Admission for Remote {
    fn reserve(&self, due: Instant, deadline: Option<Instant>) -> pollkit::Reservation {
        *self.asked.lock().unwrap() += 1;
        let budget = self.budget.clone();
        pollkit::Reservation::Pending(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            match pollkit::Admission::reserve(&budget, due, deadline) {
                pollkit::Reservation::At(at) => Some(at),
                pollkit::Reservation::Refused => None,
                pollkit::Reservation::Pending(answer) => answer.await,
                _ => None,
            }
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn an_admission_that_answers_after_a_round_trip_paces_a_fleet() {
    let asked = Arc::new(Mutex::new(0));
    let remote = Arc::new(Remote {
        budget: Budget::per_second(1),
        asked: asked.clone(),
    });
    let start = Instant::now();
    let log: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let fleet = (0..3).map(|_| {
        let log = log.clone();
        let remote = remote.clone();
        ShortPoll::new(move || {
            log.lock().unwrap().push(start.elapsed());
            std::future::ready(Ok::<_, ApiError>(()))
        })
        .admission(RemoteRef(remote))
        .until(|_| true)
    });
    futures::future::join_all(fleet).await;
    let mut times = log.lock().unwrap().clone();
    times.sort();
    // One a second, each after the 10 ms round trip.
    assert_eq!(times, [ms(10), ms(1_000), ms(2_000)]);
    assert_eq!(*asked.lock().unwrap(), 3);
}

/// Shares one `Remote` between pollers.
#[derive(Debug)]
struct RemoteRef(Arc<Remote>);

impl pollkit::Admission for RemoteRef {
    fn reserve(&self, due: Instant, deadline: Option<Instant>) -> pollkit::Reservation {
        self.0.reserve(due, deadline)
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_poller_dropped_while_it_waits_gives_its_slot_back() {
    let budget = Budget::per_second(1);
    let start = Instant::now();
    // The first takes the slot at 0; the second reserves 1 s, then is dropped.
    let first = ShortPoll::new(|| async { Ok::<_, ApiError>(()) })
        .budget(budget.clone())
        .until(|_| true);
    first.await.unwrap();
    let mut second = ShortPoll::new(|| async { Ok::<_, ApiError>(()) }).budget(budget.clone());
    let waited = tokio::time::timeout(ms(100), second.next()).await;
    assert!(waited.is_err(), "still waiting for its slot");
    drop(second);
    // The slot at 1 s is free again: a third poller takes it, not the one at 2 s.
    ShortPoll::new(|| async { Ok::<_, ApiError>(()) })
        .budget(budget)
        .until(|_| true)
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(1));
}

#[tokio::test(start_paused = true)]
async fn pollers_that_share_a_deadline_do_not_all_make_a_final_request_over_budget() {
    // 1 request a second for the fleet; 20 pollers, each with a 5 s deadline.
    let budget = Budget::per_second(1);
    let start = Instant::now();
    let log: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let fleet = (0..20).map(|_| {
        let log = log.clone();
        ShortPoll::new(move || {
            log.lock().unwrap().push(start.elapsed());
            std::future::ready(Ok::<_, ApiError>(()))
        })
        .interval(Duration::ZERO)
        .timeout(secs(5))
        .budget(budget.clone())
        .until(|_| false)
    });
    let results = futures::future::join_all(fleet).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::Timeout { .. })))
    );
    let times = log.lock().unwrap().clone();
    // Slots at 0, 1, 2, 3, 4 s (and one at the deadline): never 20 at once.
    assert!(times.len() <= 6, "{times:?}");
    for w in 0..=5u64 {
        let in_second = times
            .iter()
            .filter(|t| **t >= secs(w) && **t < secs(w + 1))
            .count();
        assert!(in_second <= 1, "{w}: {times:?}");
    }
    assert_eq!(start.elapsed(), secs(5));
}

#[tokio::test(start_paused = true)]
async fn the_final_request_at_a_shared_deadline_needs_a_slot_too() {
    // Two slots in 10 s for two pollers that each want one a second and
    // share a 1 s deadline: the two first requests, then nothing over budget.
    let budget = Budget::every(secs(10)).burst(2);
    let start = Instant::now();
    let log: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let fleet = (0..2).map(|_| {
        let log = log.clone();
        ShortPoll::new(move || {
            log.lock().unwrap().push(start.elapsed());
            std::future::ready(Ok::<_, ApiError>(()))
        })
        .interval(secs(1))
        .timeout(secs(1))
        .budget(budget.clone())
        .until(|_| false)
    });
    let results = futures::future::join_all(fleet).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::Timeout { .. })))
    );
    assert_eq!(*log.lock().unwrap(), [secs(0), secs(0)]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_slot_past_the_deadline_ends_at_the_deadline() {
    use pollkit::LongPoll;
    use pollkit::long::{Reply, Request};
    let start = Instant::now();
    let r = LongPoll::new(|req: Request<u64>| {
        let next = req.cursor().copied().unwrap_or(0) + 1;
        std::future::ready(Ok::<_, ApiError>(Reply::changed(next, next)))
    })
    .rate_limit(1, secs(60))
    .timeout(secs(30))
    .until(|n| *n == 2)
    .await;
    assert!(
        matches!(r, Err(Error::Timeout { attempts: 1, .. })),
        "{r:?}"
    );
    assert_eq!(start.elapsed(), secs(30), "at the deadline, not before");
}
