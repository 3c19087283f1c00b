//! The generator thread: one per plugin instance, started in `activate()` and joined in
//! `deactivate()` or on drop, never in `process()`.

pub mod continuation;
pub mod event_answer;
pub mod sampling;
pub mod shape;
pub mod worker;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::params::WaveJamParams;
use crate::protocol::{Observation, Scheduled};
use crate::status::Status;
use worker::Worker;

/// How long the thread sleeps when there is nothing to do. The audio thread never wakes it (that
/// would be a syscall), so this bounds the reaction time to a finished phrase.
const IDLE_SLEEP: Duration = Duration::from_micros(500);

/// Test hook for the host tests: with this environment variable set (to anything) when the
/// thread starts, the generator panics on every answer request, so the tests can check that
/// WaveJam survives a generator that fails.
pub const PANIC_HOOK_VARIABLE: &str = "WAVEJAM_TEST_GENERATOR_PANIC";

/// What outlives a generator thread between activations: its ends of the rings and the worker
/// with the session (phrases heard, the short-term and Continuator memories, the model). No
/// worker yet, or none after a panic that stopped the thread: the next thread makes one.
pub struct Parked {
    pub observations: rtrb::Consumer<Observation>,
    pub schedule: rtrb::Producer<Scheduled>,
    pub worker: Option<Worker>,
}

/// A running generator thread.
pub struct GeneratorThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Parked>>,
}

impl GeneratorThread {
    /// Start the thread on `parked`; it reads observations and writes answers. A worker that
    /// does not exist yet is made on the thread (it reads the project's model file), so this
    /// returns at once. A panic is caught: the thread starts over with a fresh worker once, and
    /// after a second panic it answers nothing more ([`Status::generator_dead`]).
    pub fn spawn(
        parked: Parked,
        params: Arc<WaveJamParams>,
        status: Arc<Status>,
    ) -> std::io::Result<Self> {
        let panic_on_answer = std::env::var_os(PANIC_HOOK_VARIABLE).is_some();
        Self::spawn_with(parked, params, status, panic_on_answer)
    }

    /// [`GeneratorThread::spawn`], panicking on every answer request if `panic_on_answer`.
    fn spawn_with(
        parked: Parked,
        params: Arc<WaveJamParams>,
        status: Arc<Status>,
        panic_on_answer: bool,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        status.generator_dead.store(false, Ordering::Release);
        let handle = std::thread::Builder::new()
            .name("wavejam-generator".into())
            .spawn(move || {
                let Parked {
                    mut observations,
                    mut schedule,
                    worker,
                } = parked;
                let mut worker =
                    Some(worker.unwrap_or_else(|| Worker::warming(&params, status.clone())));
                let mut restarted = false;
                let mut batch = Vec::with_capacity(crate::protocol::OBSERVATION_RING_CAPACITY);
                while !stop_flag.load(Ordering::Acquire) {
                    batch.clear();
                    while let Ok(observation) = observations.pop() {
                        batch.push(observation);
                    }
                    let Some(working) = worker.as_mut().filter(|_| !batch.is_empty()) else {
                        std::thread::sleep(IDLE_SLEEP);
                        continue;
                    };
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        if panic_on_answer
                            && batch.iter().any(|o| matches!(o, Observation::Answer(_)))
                        {
                            panic!("{PANIC_HOOK_VARIABLE} is set: the generator panics");
                        }
                        run_batch(working, &batch, &mut schedule, &status, &stop_flag);
                    }));
                    if outcome.is_err() {
                        worker = None;
                        if restarted {
                            status.generator_dead.store(true, Ordering::Release);
                        } else {
                            restarted = true;
                            worker = Some(Worker::warming(&params, status.clone()));
                        }
                        status.generator_panics.fetch_add(1, Ordering::AcqRel);
                    }
                }
                Parked {
                    observations,
                    schedule,
                    worker,
                }
            })?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Stop and join the thread; what it leaves for the next one (`None` if the thread itself
    /// could not be joined).
    pub fn stop(&mut self) -> Option<Parked> {
        self.stop.store(true, Ordering::Release);
        self.handle.take().and_then(|handle| handle.join().ok())
    }
}

impl Drop for GeneratorThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Handle a batch of observations in order; of several answer requests only the last is worked
/// out (the audio thread plays only the latest anyway). A skipped request that is the last
/// before its phrase is committed is still heard for the player's time (see
/// [`Worker::follow`]): the phrase is committed in it, so a busy generator answers as an idle
/// one (the others are not, for hearing the time costs milliseconds, and a phrase asks for an
/// answer at every release).
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
        if let Observation::Answer(request) = observation {
            if Some(i) != last_request {
                let committed_next = batch[i + 1..]
                    .iter()
                    .take_while(|o| !matches!(o, Observation::Answer(_)))
                    .any(|o| matches!(o, Observation::Commit));
                if committed_next {
                    worker.follow(request);
                }
                continue;
            }
        }
        if let Some((request, answer)) = worker.handle(*observation) {
            for message in answer.messages(request.serial) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::EngineChoice;
    use crate::protocol::{Request, OBSERVATION_RING_CAPACITY, SCHEDULE_RING_CAPACITY};
    use std::time::Instant;

    fn request(serial: u64) -> Observation {
        Observation::Answer(Request {
            serial,
            ..crate::test_kit::request(EngineChoice::Continuator)
        })
    }

    /// Waits (at most 30 s) until `done` holds.
    fn wait_until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(done(), "timed out");
    }

    /// A generator that panics starts over once with a fresh worker, and after a second panic
    /// stays down (and says so) until it is started again; its rings survive for the next one.
    #[test]
    fn a_panicking_generator_restarts_once_then_stays_down() {
        let (mut to_generator, observations) = rtrb::RingBuffer::new(OBSERVATION_RING_CAPACITY);
        let (schedule, _from_generator) = rtrb::RingBuffer::new(SCHEDULE_RING_CAPACITY);
        let status = Arc::new(Status::default());
        let params = Arc::new(WaveJamParams::default());
        let parked = Parked {
            observations,
            schedule,
            worker: None,
        };
        let mut thread =
            GeneratorThread::spawn_with(parked, params.clone(), status.clone(), true).unwrap();
        to_generator.push(request(1)).unwrap();
        wait_until(|| status.generator_panics.load(Ordering::Acquire) == 1);
        assert!(
            !status.generator_dead.load(Ordering::Acquire),
            "restarted once"
        );
        to_generator.push(request(2)).unwrap();
        wait_until(|| status.generator_dead.load(Ordering::Acquire));
        assert_eq!(status.generator_panics.load(Ordering::Acquire), 2);
        let parked = thread.stop().expect("the thread ends normally");
        assert!(parked.worker.is_none());
        // Started again (the next activation), it is up, with a new worker.
        let mut thread =
            GeneratorThread::spawn_with(parked, params, status.clone(), false).unwrap();
        assert!(!status.generator_dead.load(Ordering::Acquire));
        assert!(thread.stop().unwrap().worker.is_some());
    }

    /// A busy generator answers as an idle one: a request it skips (a later one came in the same
    /// batch) still hears the free player's time, which the phrase is committed in and the next
    /// phrase's reading leans to.
    #[test]
    fn a_skipped_request_still_hears_the_players_time() {
        let free = |serial: u64| {
            Observation::Answer(Request {
                serial,
                free_tempo: true,
                ..crate::test_kit::request(EngineChoice::WaveNet)
            })
        };
        // 8ths at 90 BPM against the clock's 120: two of its beats an 8th.
        let played = |from: f64, pitches: &[u8]| -> Vec<Observation> {
            let mut notes = Vec::new();
            for (i, &pitch) in pitches.iter().enumerate() {
                let beat = from + i as f64 * 2.0 / 3.0;
                notes.push(Observation::NoteOn {
                    pitch,
                    velocity: 90,
                    beat,
                });
                notes.push(Observation::NoteOff {
                    pitch,
                    beat: beat + 0.6,
                });
            }
            notes
        };
        let mut batch = played(0.0, &[62, 64, 66, 67, 69, 71, 69, 67, 66, 64, 62, 64]);
        batch.extend([free(1), Observation::Commit]);
        batch.extend(played(12.0, &[69, 71, 74, 71, 69, 67, 66, 64]));
        batch.push(free(2));
        let answered = |batched: bool| {
            let status = Arc::new(Status::default());
            let mut worker = Worker::new(&WaveJamParams::default(), status.clone());
            let (mut schedule, mut from_generator) = rtrb::RingBuffer::new(SCHEDULE_RING_CAPACITY);
            if batched {
                run_batch(
                    &mut worker,
                    &batch,
                    &mut schedule,
                    &status,
                    &AtomicBool::new(false),
                );
            } else {
                for observation in &batch {
                    run_batch(
                        &mut worker,
                        std::slice::from_ref(observation),
                        &mut schedule,
                        &status,
                        &AtomicBool::new(false),
                    );
                }
            }
            let mut second = Vec::new();
            while let Ok(message) = from_generator.pop() {
                let (Scheduled::Note { serial, .. } | Scheduled::End { serial, .. }) = message;
                if serial == 2 {
                    second.push(message);
                }
            }
            second
        };
        let idle = answered(false);
        assert!(idle.len() > 2, "{idle:?}");
        assert_eq!(answered(true), idle);
    }
}
