//! The [`Pool`]: a block's worker threads, the calling thread included, created once and kept
//! from one block to the next; Block-STM runs on it, and so does parallel work outside it.

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::{executor::panic_message, lock};

/// How many batches, per worker, [`Pool::run_batches`] cuts its items into: enough for
/// workers that finish early to take over the rest, few enough that claiming one is rare.
const BATCHES_PER_WORKER: usize = 32;

/// The longest a helper woken by [`Pool::wake`] waits for the work it was woken for.
const WAKE_SPIN: Duration = Duration::from_millis(1);

/// Worker threads: rayon helpers plus the calling thread.
pub struct Pool {
    /// Helper threads; the calling thread is the remaining worker. `None` for one worker.
    threads: Option<ThreadPool>,
    /// Worker count: the helpers plus the calling thread.
    concurrency: usize,
    /// Bumped whenever work is handed to the helpers: a helper woken by [`Pool::wake`]
    /// waits until it changes.
    handed: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of `concurrency` workers (0 is treated as 1). If the operating system refuses to
    /// start the helper threads, it runs with the calling thread alone.
    pub fn new(concurrency: usize) -> Self {
        let helpers = concurrency.max(1) - 1;
        let threads = (helpers > 0)
            .then(|| {
                ThreadPoolBuilder::new()
                    .num_threads(helpers)
                    .thread_name(|i| format!("pevm-worker-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        let concurrency = if threads.is_some() { helpers + 1 } else { 1 };
        Self {
            threads,
            concurrency,
            handed: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts waking the helpers for work about to be handed to them, while the calling
    /// thread prepares it: each spins until the pool's next work arrives, for at most
    /// a millisecond. A helper asleep since the last block otherwise wakes only when the
    /// work arrives, and starts its share late: by 78 µs at the median over the mainnet
    /// blocks here (milliseconds at times), blocks that take a few milliseconds.
    pub fn wake(&self) {
        let Some(threads) = &self.threads else {
            return;
        };
        let handed = self.handed.load(Ordering::Acquire);
        for _ in 1..self.concurrency {
            let arrived = Arc::clone(&self.handed);
            threads.spawn(move || {
                let start = Instant::now();
                while arrived.load(Ordering::Acquire) == handed && start.elapsed() < WAKE_SPIN {
                    std::hint::spin_loop();
                }
            });
        }
    }

    /// Notes that work is being handed to the helpers: the ones [`Self::wake`] woke stop
    /// waiting for it and take it.
    fn hand_over(&self) {
        self.handed.fetch_add(1, Ordering::Release);
    }

    /// Number of workers, the calling thread included.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Runs `work` on `workers` workers at once (at least one, at most the pool's; the calling
    /// thread is one of them) and returns each one's result, the calling thread's first.
    pub fn run_workers<R: Send>(&self, workers: usize, work: impl Fn() -> R + Sync) -> Vec<R> {
        let workers = workers.clamp(1, self.concurrency);
        let mut results = Vec::with_capacity(workers);
        match &self.threads {
            Some(threads) if workers > 1 => {
                self.hand_over();
                let helpers = Mutex::new(Vec::with_capacity(workers - 1));
                threads.in_place_scope(|scope| {
                    for _ in 1..workers {
                        scope.spawn(|_| {
                            let result = work();
                            lock(&helpers).push(result);
                        });
                    }
                    results.push(work());
                });
                results.extend(helpers.into_inner().unwrap_or_else(PoisonError::into_inner));
            }
            _ => results.push(work()),
        }
        results
    }

    /// Applies `f` to every item on the workers (the calling thread included), in
    /// contiguous chunks, and returns the results in item order: a parallel stage outside
    /// Block-STM, such as recovering the senders of a block's transactions.
    pub fn map<T: Sync, R: Send>(&self, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
        if self.threads.is_none() || items.len() <= 1 {
            return items.iter().map(f).collect();
        }
        let chunk = items.len().div_ceil(self.concurrency);
        let mut results: Vec<Vec<R>> = items.chunks(chunk).map(|_| Vec::new()).collect();
        self.for_each_mut(&mut results, |index, results| {
            let start = index * chunk;
            *results = items[start..(start + chunk).min(items.len())]
                .iter()
                .map(&f)
                .collect();
        });
        results.into_iter().flatten().collect()
    }

    /// Applies `f` to every item of `items` with its index, on the workers (the calling thread
    /// included), in contiguous chunks: parallel work on state kept from one block to the
    /// next, such as one part of an index per worker.
    pub fn for_each_mut<T: Send>(&self, items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
        let Some(threads) = self.threads.as_ref().filter(|_| items.len() > 1) else {
            items
                .iter_mut()
                .enumerate()
                .for_each(|(index, item)| f(index, item));
            return;
        };
        self.hand_over();
        let chunk = items.len().div_ceil(self.concurrency);
        let run = |(first, items): (usize, &mut [T])| {
            for (index, item) in items.iter_mut().enumerate() {
                f(first * chunk + index, item);
            }
        };
        threads.in_place_scope(|scope| {
            let run = &run;
            let mut work = items.chunks_mut(chunk).enumerate();
            let own = work.next();
            for chunk in work {
                scope.spawn(move |_| run(chunk));
            }
            if let Some(chunk) = own {
                run(chunk);
            }
        });
    }

    /// Runs `f` over `items` on up to `workers` workers (the calling thread included), each
    /// with its own state from `init` (which may stay on its thread) and its own result, which
    /// `f` fills: a worker claims the next batch of items while any are left, so unequal items
    /// spread evenly. `f` breaks to stop every worker early. Returns every worker's result, or
    /// the message of a panic in `init` or `f`.
    ///
    /// This is for parallel work whose dependencies are known to be absent: no Block-STM.
    pub fn run_batches<T: Sync, S, R: Default + Send>(
        &self,
        items: &[T],
        workers: usize,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, &mut R, &[T]) -> ControlFlow<()> + Sync,
    ) -> Result<Vec<R>, String> {
        let workers = workers.clamp(1, self.concurrency).min(items.len().max(1));
        let batch = items.len().div_ceil(workers * BATCHES_PER_WORKER).max(1);
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let work = || {
            catch_unwind(AssertUnwindSafe(|| {
                let mut state = init();
                let mut result = R::default();
                while !stop.load(Ordering::Relaxed) {
                    let start = next.fetch_add(batch, Ordering::Relaxed);
                    let Some(chunk) = items.get(start..(start + batch).min(items.len())) else {
                        break;
                    };
                    if chunk.is_empty() || f(&mut state, &mut result, chunk).is_break() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                result
            }))
            .map_err(|payload| {
                stop.store(true, Ordering::Relaxed);
                panic_message(payload.as_ref())
            })
        };
        self.run_workers(workers, work).into_iter().collect()
    }
}
