//! Cost of a neural voice on one thread: the embedded Fiddle (`$WAVEJAM_VOICE` for another voice
//! file) playing a legato line, timed on every SIMD path this CPU runs, as the plugin runs it at
//! 48 kHz in blocks of 512 (its `VoiceStream`: 256 samples at the voice's 24 kHz, resampled).
//!
//! Prints µs per 48 kHz output sample (the fastest of five rounds) and the share of one core's real time, per path and for
//! the path the voice picks at load, and how that splits between the controls (the line and the
//! excitation, scalar code) and the network (the kernel alone on fixed controls); the rest of a
//! path's row is the resampler. Then the chosen path's cost when the host splits its blocks
//! into smaller pieces (as at every automation point, with sample-accurate automation). Run:
//! `cargo bench --bench voice`.

use std::hint::black_box;
use std::time::Instant;

use wavejam::assets::FIDDLE_VOICE;
use wavejam::simd::SimdPath;
use wavejam::voice::controls::{Excitation, Line};
use wavejam::voice::kernel::BLOCK;
use wavejam::voice::player::VoicePlayer;
use wavejam::voice::stream::VoiceStream;
use wavejam::voice::{VoiceFile, VoiceKernel, CONTROLS};

/// The host's rate and block size the figures are for.
const HOST_RATE: f64 = 48_000.0;
const HOST_BLOCK: usize = 512;
/// Host blocks timed in a round (about 4 s of audio).
const BLOCKS: usize = 400;
const WARMUP_BLOCKS: usize = 100;
/// Rounds of every measurement, taken in turn; each figure is its fastest round, the cost
/// without the other work a shared machine does meanwhile (one round of it here ran up to 70 %
/// slower than another).
const ROUNDS: usize = 5;
/// Pieces a host block is split into for the last table, host samples.
const SPLIT_PIECES: [usize; 4] = [512, 64, 16, 1];

/// Seconds per host block of `stream` playing `blocks` blocks of a line of detached notes, one
/// every eight blocks, each released as the next is struck (so it rings on under it); each
/// block rendered in pieces of `piece` samples.
fn time_blocks(stream: &mut VoiceStream, blocks: usize, piece: usize) -> f64 {
    let mut out = vec![0.0f32; HOST_BLOCK];
    let line = [62u8, 64, 66, 67, 69, 71, 73, 74];
    let start = Instant::now();
    for b in 0..blocks {
        if b % 8 == 0 {
            if let Some((held, _)) = stream.held() {
                stream.note_off(held);
            }
            stream.note_on(line[(b / 8) % line.len()], 90);
        }
        for part in out.chunks_mut(piece) {
            stream.render(part);
        }
        black_box(&out);
    }
    start.elapsed().as_secs_f64() / blocks as f64
}

/// Seconds per host block of the line and excitation alone (no network).
fn time_controls(file: &VoiceFile, voice_block: usize) -> f64 {
    let rate = file.config.sample_rate;
    let mut line = Line::new(&file.dynamics, rate);
    let mut excitation = Excitation::new(rate);
    let start = Instant::now();
    for b in 0..BLOCKS {
        if b % 8 == 0 {
            line.note_on(60 + (b / 8 % 12) as u8, 90);
        }
        for _ in 0..voice_block {
            black_box(excitation.next(&line.step()));
        }
    }
    start.elapsed().as_secs_f64() / BLOCKS as f64
}

/// Seconds per host block of the kernel alone, on `kernel`'s path, with fixed controls.
fn time_network(kernel: &mut VoiceKernel, voice_block: usize) -> f64 {
    let controls = [[0.5f32; BLOCK]; CONTROLS];
    let amplitude = [0.1f32; BLOCK];
    let mut out = [0.0f32; BLOCK];
    let start = Instant::now();
    for _ in 0..BLOCKS {
        for chunk in (0..voice_block).step_by(BLOCK) {
            let n = BLOCK.min(voice_block - chunk);
            kernel.render_block(&controls, &amplitude, &mut out[..n]);
            black_box(&out);
        }
    }
    start.elapsed().as_secs_f64() / BLOCKS as f64
}

fn main() {
    let bytes = match std::env::var("WAVEJAM_VOICE") {
        Ok(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}")),
        Err(_) => FIDDLE_VOICE.to_vec(),
    };
    let file = VoiceFile::parse(&bytes).expect("a valid voice file");
    let rate = f64::from(file.config.sample_rate);
    let voice_block = (HOST_BLOCK as f64 * rate / HOST_RATE).round() as usize;
    println!(
        "neural voice: {} multiply-adds per sample at {} Hz, host blocks of {HOST_BLOCK} at {HOST_RATE} Hz ({voice_block} voice samples each)",
        file.config.macs_per_sample(),
        file.config.sample_rate
    );
    println!(
        "| path | µs per output sample | share of one core | of which the network alone (µs) |"
    );
    println!("|---|---|---|---|");
    let chosen = SimdPath::detect();
    // Per path: its kernel alone, its whole stream, and their fastest rounds so far.
    let mut paths: Vec<(SimdPath, VoiceKernel, VoiceStream, f64, f64)> = SimdPath::ALL
        .into_iter()
        .filter_map(|path| {
            let kernel = VoiceKernel::with_simd_path(&file, path)?;
            let player = VoicePlayer::with_kernel(kernel.clone(), &file);
            let mut stream = VoiceStream::with_player(player, HOST_RATE as f32);
            time_blocks(&mut stream, WARMUP_BLOCKS, HOST_BLOCK);
            Some((path, kernel, stream, f64::INFINITY, f64::INFINITY))
        })
        .collect();
    let mut controls = f64::INFINITY;
    for _ in 0..ROUNDS {
        for (_, kernel, stream, network, whole) in &mut paths {
            *network = network.min(time_network(kernel, voice_block));
            *whole = whole.min(time_blocks(stream, BLOCKS, HOST_BLOCK));
        }
        controls = controls.min(time_controls(&file, voice_block));
    }
    for path in SimdPath::ALL {
        let Some((_, _, _, network, whole)) = paths.iter().find(|p| p.0 == path) else {
            println!("| {} | not supported by this CPU | | |", path.name());
            continue;
        };
        let per_sample = whole / HOST_BLOCK as f64;
        println!(
            "| {}{} | {:.3} | {:.2} % | {:.3} |",
            path.name(),
            if path == chosen { " (chosen)" } else { "" },
            per_sample * 1e6,
            per_sample * HOST_RATE * 100.0,
            network / HOST_BLOCK as f64 * 1e6
        );
    }
    let controls = controls / HOST_BLOCK as f64;
    println!(
        "| controls only (line + excitation) | {:.3} | {:.2} % | |",
        controls * 1e6,
        controls * HOST_RATE * 100.0
    );
    println!();
    println!(
        "blocks of {HOST_BLOCK} split into pieces, {} path:",
        chosen.name()
    );
    println!("| piece (host samples) | µs per output sample | share of one core |");
    println!("|---|---|---|");
    let mut stream = VoiceStream::new(&file, HOST_RATE as f32);
    for piece in SPLIT_PIECES {
        let fastest = (0..ROUNDS)
            .map(|_| time_blocks(&mut stream, BLOCKS / 4, piece))
            .fold(f64::INFINITY, f64::min);
        let per_sample = fastest / HOST_BLOCK as f64;
        println!(
            "| {piece} | {:.3} | {:.2} % |",
            per_sample * 1e6,
            per_sample * HOST_RATE * 100.0
        );
    }
}
