//! The shared hub's cost per waiter: N waiters on one key receive the same
//! statuses from one poller, beside N independent pollers making N times the
//! requests. On tokio's paused clock, so the figure is CPU, not waiting.
//!
//! Each benchmark delivers 100 statuses to every waiter; criterion's
//! throughput is "status deliveries" (waiters × 100), so the time per element
//! is the cost of handing one status to one waiter.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use pollkit::{Hub, ShortPoll};

const STATUSES: usize = 100;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime")
}

fn poller() -> impl pollkit::Poller<Status = usize, Error = std::io::Error> + Send + 'static {
    let mut n = 0;
    ShortPoll::new(move || {
        n += 1;
        std::future::ready(Ok(n))
    })
    .interval(Duration::from_millis(1))
}

fn hub(c: &mut Criterion) {
    let rt = paused_runtime();
    let mut group = c.benchmark_group("hub");
    for waiters in [1_usize, 10, 100, 1_000] {
        group.throughput(Throughput::Elements((waiters * STATUSES) as u64));
        group.bench_with_input(
            BenchmarkId::new("shared", waiters),
            &waiters,
            |b, &waiters| {
                b.to_async(&rt).iter(|| async move {
                    let hub: Hub<u8, usize, std::io::Error> = Hub::new();
                    let watches: Vec<_> = (0..waiters)
                        .map(|_| hub.watch(1, poller).take(STATUSES).count())
                        .collect();
                    let seen: usize = futures::future::join_all(watches).await.into_iter().sum();
                    assert!(seen >= waiters * STATUSES / 2);
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("independent", waiters),
            &waiters,
            |b, &waiters| {
                b.to_async(&rt).iter(|| async move {
                    let pollers: Vec<_> = (0..waiters)
                        .map(|_| poller().take(STATUSES).count())
                        .collect();
                    let seen: usize = futures::future::join_all(pollers).await.into_iter().sum();
                    assert_eq!(seen, waiters * STATUSES);
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, hub);
criterion_main!(benches);
