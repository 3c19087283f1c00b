//! The generator thread: one per plugin instance, started in `activate()` and joined in
//! `deactivate()` or on drop, never in `process()`.

pub mod continuation;
pub mod continuator;
pub mod engine;
pub mod event_answer;
pub mod offline;
pub mod sampling;
pub mod steps;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::protocol::{Observation, Scheduled};
use crate::status::Status;
use worker::Worker;

/// How long the thread sleeps when there is nothing to do. The audio thread never wakes it (that
/// would be a syscall), so this bounds the reaction time to a finished phrase.
const IDLE_SLEEP: Duration = Duration::from_micros(500);

/// A running generator thread.
pub struct GeneratorThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl GeneratorThread {
    /// Start the thread; it reads `observations` and writes answers to `schedule`.
    pub fn spawn(
        mut worker: Worker,
        mut observations: rtrb::Consumer<Observation>,
        mut schedule: rtrb::Producer<Scheduled>,
        status: Arc<Status>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("wavejam-generator".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(crate::protocol::OBSERVATION_RING_CAPACITY);
                while !stop_flag.load(Ordering::Acquire) {
                    batch.clear();
                    while let Ok(observation) = observations.pop() {
                        batch.push(observation);
                    }
                    if batch.is_empty() {
                        std::thread::sleep(IDLE_SLEEP);
                        continue;
                    }
                    run_batch(&mut worker, &batch, &mut schedule, &status, &stop_flag);
                }
            })?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Stop and join the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            // NOTE: a panicked generator has nothing left to clean up.
            let _ = handle.join();
        }
    }
}

impl Drop for GeneratorThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Handle a batch of observations in order; of several answer requests only the last is worked
/// out (the audio thread plays only the latest anyway).
fn run_batch(
    worker: &mut Worker,
    batch: &[Observation],
    schedule: &mut rtrb::Producer<Scheduled>,
    status: &Status,
    stop: &AtomicBool,
) {
    let last_request = batch
        .iter()
        .rposition(|o| matches!(o, Observation::Answer(_)));
    for (i, observation) in batch.iter().enumerate() {
        if matches!(observation, Observation::Answer(_)) && Some(i) != last_request {
            continue;
        }
        if let Some((request, notes)) = worker.handle(*observation) {
            let messages = notes
                .iter()
                .map(|&note| Scheduled::Note {
                    serial: request.serial,
                    note,
                })
                .chain(std::iter::once(Scheduled::End {
                    serial: request.serial,
                    length_beats: request.length_beats,
                }));
            for message in messages {
                send(schedule, message, status, stop);
            }
        }
    }
}

/// Push to the audio thread, retrying while its ring is full (counted, shown in the panel).
fn send(
    schedule: &mut rtrb::Producer<Scheduled>,
    message: Scheduled,
    status: &Status,
    stop: &AtomicBool,
) {
    let mut message = message;
    loop {
        match schedule.push(message) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(back)) => {
                status.schedule_ring_full.fetch_add(1, Ordering::Relaxed);
                if stop.load(Ordering::Acquire) {
                    return;
                }
                message = back;
                std::thread::sleep(IDLE_SLEEP);
            }
        }
    }
}
