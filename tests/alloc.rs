//! No allocation per poll on the static path: a counting global allocator
//! shows zero allocations over 1,000 polls after the first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Jitter, LongPoll, ShortPoll};

struct Counting;

thread_local! {
    // Counts only this thread's allocations, so tests running in parallel on
    // other threads do not disturb the figure.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn short_poll_allocates_nothing_per_poll() {
    paused_runtime().block_on(async {
        let mut n = 0_u64;
        let mut poller = ShortPoll::new(move || {
            n += 1;
            std::future::ready(Ok::<_, std::io::Error>(n))
        })
        .interval(Duration::from_millis(1))
        .jitter(Jitter::Full);
        // The first poll allocates the poller's one timer-and-request slot.
        assert_eq!(poller.next().await.unwrap().unwrap(), 1);
        let before = allocations();
        for i in 2..=1001 {
            assert_eq!(poller.next().await.unwrap().unwrap(), i);
        }
        assert_eq!(allocations() - before, 0, "allocations over 1,000 polls");
    });
}

#[test]
fn long_poll_allocates_nothing_per_request() {
    paused_runtime().block_on(async {
        let mut poller = LongPoll::new(|req: Request<u64>| {
            let next = req.cursor().copied().unwrap_or(0) + 1;
            std::future::ready(Ok::<_, std::io::Error>(Reply::changed(next, next)))
        })
        .rate_limit(2, Duration::from_millis(1));
        assert_eq!(poller.next().await.unwrap().unwrap(), 1);
        let before = allocations();
        for i in 2..=1001 {
            assert_eq!(poller.next().await.unwrap().unwrap(), i);
        }
        assert_eq!(allocations() - before, 0, "allocations over 1,000 requests");
    });
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the two tests above against a counter that counts nothing.
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(10);
    assert_eq!(allocations() - before, 1);
    drop(v);
}

#[test]
fn sse_stream_allocates_at_most_one_block_per_event() {
    paused_runtime().block_on(async {
        const EVENTS: usize = 1000;
        let body: Vec<u8> = (0..EVENTS)
            .flat_map(|i| format!("id: {i}\ndata: {{\"percent\":{}}}\n\n", i % 100).into_bytes())
            .collect();
        let body: &'static [u8] = Box::leak(body.into_boxed_slice());
        let mut stream = pollkit::SseStream::new(move |_id: Option<String>| {
            // The body arrives in 512-byte chunks, so events straddle them.
            std::future::ready(Ok::<_, std::io::Error>(futures::stream::iter(
                body.chunks(512).map(Ok::<_, std::io::Error>),
            )))
        });
        // The first event pays for the stream's slot and the parser's buffers.
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.last_event_id(), "0");
        let before = allocations();
        let mut events = 1;
        while events < EVENTS {
            let event = stream.next().await.unwrap().unwrap();
            assert_eq!(event.last_event_id().parse::<usize>().unwrap(), events);
            events += 1;
        }
        let per_event = (allocations() - before) as f64 / (EVENTS - 1) as f64;
        assert!(per_event <= 1.0, "{per_event} allocations per event");
    });
}
