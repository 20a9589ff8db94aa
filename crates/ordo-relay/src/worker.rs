//! Running the relays: one thread per destination, each with its own store connection and a
//! single-threaded async runtime for its network calls, polling the outbox until stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use ordo_engine::{Outbox, StoreError};

use crate::config::RelayConfig;
use crate::connectors::Connector;
use crate::relay::{BusError, BusRelay, ChannelRelay, CursorWriter, RelayStats};

/// Opens a store connection for a relay thread.
pub type OpenStore = Arc<dyn Fn() -> Result<Box<dyn Outbox>, StoreError> + Send + Sync>;

/// Waits `wait`, or less if the worker is asked to stop meanwhile (a round may be a minute
/// apart; a stopping worker must still save its cursor within a shutdown's grace period).
async fn pause(wait: std::time::Duration, stop: &AtomicBool) {
    let step = std::time::Duration::from_millis(100);
    let mut left = wait;
    while left > step && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(step).await;
        left -= step;
    }
    if !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(left).await;
    }
}

/// The relays of a worker, running.
pub struct Worker {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Result<RelayStats, String>>)>,
}

/// What a worker thread says as it goes (to stderr in `ordo worker`).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

impl Worker {
    /// Starts a thread per destination. With `until_idle`, each stops once it has nothing left
    /// to read (and, for the bus, nothing left undelivered).
    pub fn start(config: RelayConfig, open: OpenStore, until_idle: bool, log: Log) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let poll = config.poll;
        // One writer for every relay's cursor: relays never wait for the write lock.
        let writer = match open() {
            Ok(store) => {
                let log = log.clone();
                Some(CursorWriter::spawn(store, move |line| log(line)))
            }
            Err(e) => {
                log(&format!("cursor writer: {e}; relays write their own cursors"));
                None
            }
        };
        for destination in config.channels {
            let (stop, open, log, writer) = (stop.clone(), open.clone(), log.clone(), writer.clone());
            let name = destination.name();
            let thread = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    let mut store = open().map_err(|e| e.to_string())?;
                    // With --until-idle, rounds follow one another (nothing waits for a clock).
                    let every =
                        if until_idle { std::time::Duration::ZERO } else { destination.every.unwrap_or_default() };
                    let mut relay = ChannelRelay::new(Connector::new(destination));
                    if let Some(w) = writer {
                        relay = relay.with_cursor_writer(w);
                    }
                    runtime.block_on(async {
                        while !stop.load(Ordering::Relaxed) {
                            match relay.pass(store.as_mut()).await {
                                Ok(0) if until_idle => break,
                                Ok(0) => pause(poll.max(every), &stop).await,
                                // Behind: read on at once. Caught up: a destination taking
                                // rounds waits for the next one.
                                Ok(n) if n >= crate::relay::READ_LIMIT => {}
                                Ok(_) => pause(every, &stop).await,
                                Err(e) => {
                                    log(&format!("{}: {e}", relay.name()));
                                    tokio::time::sleep(poll.max(std::time::Duration::from_millis(500))).await;
                                }
                            }
                        }
                    });
                    relay.flush(store.as_mut()).map_err(|e| e.to_string())?;
                    Ok(relay.stats)
                })
                .expect("a relay thread");
            threads.push((name, thread));
        }
        if let Some(bus) = config.bus {
            let (stop, open, log, writer) = (stop.clone(), open.clone(), log.clone(), writer.clone());
            let thread = std::thread::Builder::new()
                .name("bus".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    let mut store = open().map_err(|e| e.to_string())?;
                    let mut relay = BusRelay::new(bus);
                    if let Some(w) = writer {
                        relay = relay.with_cursor_writer(w);
                    }
                    runtime.block_on(async {
                        let mut reported = false;
                        while !stop.load(Ordering::Relaxed) {
                            match relay.pass(store.as_mut()).await {
                                Ok(0) if until_idle => break,
                                Ok(0) => tokio::time::sleep(poll).await,
                                Ok(_) => {
                                    if reported {
                                        log("bus: delivering again");
                                        reported = false;
                                    }
                                }
                                Err(BusError::Down { error, wait }) => {
                                    if !reported {
                                        log(&format!("bus: {error}; the outbox keeps every message until it is back"));
                                        reported = true;
                                    }
                                    tokio::time::sleep(wait).await;
                                }
                                Err(BusError::Store(e)) => {
                                    log(&format!("bus: {e}"));
                                    tokio::time::sleep(poll.max(std::time::Duration::from_millis(500))).await;
                                }
                            }
                        }
                    });
                    relay.flush(store.as_mut()).map_err(|e| e.to_string())?;
                    Ok(relay.stats)
                })
                .expect("a relay thread");
            threads.push(("bus".into(), thread));
        }
        Self { stop, threads }
    }

    /// A handle that stops the worker (from a signal handler or a test).
    pub fn stopper(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Stops (if not stopped) and waits for every relay; returns each one's stats.
    pub fn join(self) -> Vec<(String, Result<RelayStats, String>)> {
        self.threads
            .into_iter()
            .map(|(name, t)| (name, t.join().unwrap_or_else(|_| Err("the relay thread panicked".into()))))
            .collect()
    }

    /// Asks every relay to stop after its current pass.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
