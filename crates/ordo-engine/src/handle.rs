//! Runs an [`Engine`] on its own thread and feeds it batches: every request waiting in the queue
//! when the engine finishes a commit goes into the next batch (up to `max_batch`), so many
//! callers share one transaction and one fsync.

use std::sync::mpsc;
use std::thread;

use ordo_domain::State;

use crate::{CommandError, Engine, Request, Sequences, Store};

type Query = Box<dyn FnOnce(&State) + Send>;

enum Job {
    Submit(Request, mpsc::Sender<Result<Sequences, CommandError>>),
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
                let mut pending: Option<Job> = None;
                loop {
                    let first = match pending.take() {
                        Some(j) => j,
                        None => match queue.recv() {
                            Ok(j) => j,
                            Err(_) => return engine,
                        },
                    };
                    let mut requests = Vec::new();
                    let mut replies = Vec::new();
                    match first {
                        Job::Query(q) => {
                            q(engine.state());
                            continue;
                        }
                        Job::Submit(r, tx) => {
                            requests.push(r);
                            replies.push(tx);
                        }
                    }
                    while requests.len() < max_batch {
                        match queue.try_recv() {
                            Ok(Job::Submit(r, tx)) => {
                                requests.push(r);
                                replies.push(tx);
                            }
                            Ok(q @ Job::Query(_)) => {
                                pending = Some(q);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let outcome = engine.execute(requests);
                    for (tx, result) in replies.into_iter().zip(outcome.results) {
                        let _ = tx.send(result);
                    }
                }
            })
            .expect("spawn engine thread");
        (Self { jobs }, thread)
    }

    pub fn submit(&self, request: Request) -> Submission {
        let (tx, rx) = mpsc::channel();
        self.jobs.send(Job::Submit(request, tx)).expect("engine thread is running");
        Submission(rx)
    }

    /// Runs `f` against the state between batches and returns its answer.
    pub fn query<R: Send + 'static>(&self, f: impl FnOnce(&State) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Job::Query(Box::new(move |s| {
                let _ = tx.send(f(s));
            })))
            .expect("engine thread is running");
        rx.recv().expect("engine thread answers every query")
    }
}
