//! Runs an [`Engine`] on its own thread and feeds it batches: every request waiting in the queue
//! goes into the next batch (up to `max_batch`), so many callers share one transaction and one
//! fsync, and the next batch is decided while the previous one commits
//! ([`Engine::execute_stream`]); a committed batch's callers are answered from the committing
//! thread. Queries see only committed state.

use std::sync::mpsc;
use std::thread;

use ordo_domain::State;

use crate::{CommandError, Engine, Request, Sequences, Store};

type StateRead = Box<dyn FnOnce(&State) + Send>;
type StoreRead = Box<dyn FnOnce(&mut dyn crate::Store) + Send>;

/// A read between batches: of the state, or of the store itself (the journal).
enum Query {
    State(StateRead),
    Store(StoreRead),
}
type Reply = Box<dyn FnOnce(Result<Sequences, CommandError>, Option<crate::Answer>) + Send>;

enum Job {
    Submit(Request, Reply),
    Query(Query),
}

/// A pending acknowledgement: resolves once the batch holding the request is committed.
pub struct Submission(mpsc::Receiver<Result<Sequences, CommandError>>);

impl Submission {
    pub fn wait(self) -> Result<Sequences, CommandError> {
        self.0.recv().expect("engine thread answers every submission")
    }
}

/// A cloneable handle to the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::SyncSender<Job>,
}

impl EngineHandle {
    pub fn spawn<S: Store + 'static>(mut engine: Engine<S>, max_batch: usize) -> (Self, thread::JoinHandle<Engine<S>>) {
        assert!(max_batch >= 1);
        let (jobs, queue) = mpsc::sync_channel::<Job>(max_batch * 4);
        let thread = thread::Builder::new()
            .name("ordo-engine".into())
            .spawn(move || {
                let mut query: Option<Query> = None;
                let mut closed = false;
                // Coalesced projection rows are written by the batches that follow; when none
                // follow for a projection interval, the engine writes them on its own.
                let idle_after = engine.projection_interval();
                let mut idle = false;
                loop {
                    engine.execute_stream(
                        |block| {
                            if query.is_some() || closed {
                                return None;
                            }
                            let mut requests = Vec::new();
                            // Whom to answer, in the batch's order; the outcome comes back with them.
                            let mut replies: Vec<Reply> = Vec::new();
                            let mut take = |job: Job, query: &mut Option<Query>| match job {
                                Job::Submit(r, tx) => {
                                    requests.push(r);
                                    replies.push(tx);
                                    true
                                }
                                Job::Query(q) => {
                                    // Answered once everything before it is committed.
                                    *query = Some(q);
                                    false
                                }
                            };
                            let first = if block {
                                let job = if idle_after.is_zero() {
                                    queue.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                                } else {
                                    queue.recv_timeout(idle_after)
                                };
                                match job {
                                    Ok(j) => j,
                                    Err(mpsc::RecvTimeoutError::Timeout) => {
                                        idle = true;
                                        return None;
                                    }
                                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                                        closed = true;
                                        return None;
                                    }
                                }
                            } else {
                                queue.try_recv().ok()?
                            };
                            if take(first, &mut query) {
                                for _ in 1..max_batch {
                                    let Ok(job) = queue.try_recv() else { break };
                                    if !take(job, &mut query) {
                                        break;
                                    }
                                }
                            }
                            (!requests.is_empty()).then_some((requests, replies))
                        },
                        |outcome, replies| {
                            assert_eq!(outcome.results.len(), replies.len(), "one result per request");
                            let answers = outcome.answers.into_iter().chain(std::iter::repeat(None));
                            for ((result, answer), tx) in outcome.results.into_iter().zip(answers).zip(replies) {
                                tx(result, answer);
                            }
                        },
                    );
                    if let Some(q) = query.take() {
                        match q {
                            Query::State(q) => {
                                // Queries answer from the journal's committed end, other
                                // writers included.
                                let _ = engine.catch_up_reads();
                                q(engine.state());
                            }
                            Query::Store(q) => q(engine.store_mut()),
                        }
                        continue;
                    }
                    if std::mem::take(&mut idle) && engine.has_unwritten_projections() {
                        // A failure leaves the rows pending for the next batch or idle turn.
                        let _ = engine.flush_projections();
                    }
                    if closed {
                        return engine;
                    }
                }
            })
            .expect("spawn engine thread");
        (Self { jobs }, thread)
    }

    pub fn submit(&self, request: Request) -> Submission {
        let (tx, rx) = mpsc::channel();
        self.submit_then(request, move |result, _| {
            let _ = tx.send(result);
        });
        Submission(rx)
    }

    /// Submits without waiting: `reply` runs once the request's batch is durably committed (or
    /// refused) — usually on the committing thread, right after the commit; for a batch decided
    /// again after a conflict, on the engine thread. For callers with their own runtime (the HTTP
    /// service). `reply` must only hand the answer on: the next commit waits for it, and a reply
    /// that waits for the engine (a query, a submission to a full queue) never returns.
    pub fn submit_then(
        &self,
        request: Request,
        reply: impl FnOnce(Result<Sequences, CommandError>, Option<crate::Answer>) + Send + 'static,
    ) {
        self.jobs.send(Job::Submit(request, Box::new(reply))).expect("engine thread is running");
    }

    /// Like [`EngineHandle::query`] without waiting: `f` runs on the engine thread between batches.
    pub fn query_then(&self, f: impl FnOnce(&State) + Send + 'static) {
        self.jobs.send(Job::Query(Query::State(Box::new(f)))).expect("engine thread is running");
    }

    /// Runs `f` on the engine thread against the store (the journal itself), between batches.
    pub fn store_then(&self, f: impl FnOnce(&mut dyn crate::Store) + Send + 'static) {
        self.jobs.send(Job::Query(Query::Store(Box::new(f)))).expect("engine thread is running");
    }

    /// Runs `f` against the state between batches and returns its answer.
    pub fn query<R: Send + 'static>(&self, f: impl FnOnce(&State) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Job::Query(Query::State(Box::new(move |s| {
                let _ = tx.send(f(s));
            }))))
            .expect("engine thread is running");
        rx.recv().expect("engine thread answers every query")
    }
}
