//! Throwaway driver: bits per note of the symbolic models on the extracted corpus.
//!
//! `cargo run --release --example symbolic_eval -- [corpus dir] [validation|test]`
//! Env: `WJ_CONFIG` = a `MarkovConfig` as JSON (default: `MarkovConfig::default()`),
//! `WJ_TRAIN=all` to train on the polyphonic chorales too (default: melodies only),
//! `WJ_LIMIT=n` to score only the first n tunes.

use std::path::PathBuf;
use std::time::Instant;

use wavejam::symbolic::encoding::Vocabulary;
use wavejam::symbolic::eval::{load_folder, score, EvalReport};
use wavejam::symbolic::models::{EventModel, Markov, MarkovConfig, Unigram};

fn main() {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().unwrap_or_else(|| "corpus".into()));
    let split = args.next().unwrap_or_else(|| "validation".into());
    let vocabulary = Vocabulary::default();
    let started = Instant::now();
    let train = load_folder(&root.join("train"), &vocabulary).expect("train folder");
    let data = load_folder(&root.join(&split), &vocabulary).expect("data folder");
    let all = std::env::var("WJ_TRAIN").is_ok_and(|v| v == "all");
    let train: Vec<_> = train
        .tunes
        .into_iter()
        .filter(|t| all || t.is_monophonic(&vocabulary))
        .collect();
    let mut tunes: Vec<_> = data
        .tunes
        .into_iter()
        .filter(|t| t.is_monophonic(&vocabulary))
        .collect();
    if let Some(n) = std::env::var("WJ_LIMIT").ok().and_then(|v| v.parse().ok()) {
        tunes.truncate(n);
    }
    eprintln!(
        "{} training tunes, {} {split} tunes (monophonic), loaded in {:.1}s",
        train.len(),
        tunes.len(),
        started.elapsed().as_secs_f64()
    );
    let config: MarkovConfig = match std::env::var("WJ_CONFIG") {
        Ok(json) => serde_json::from_str(&json).expect("WJ_CONFIG"),
        Err(_) => MarkovConfig::default(),
    };
    let mut unigram = Unigram::new(vocabulary);
    for tune in &train {
        unigram.train(&tune.tokens);
    }
    let started = Instant::now();
    let mut markov = Markov::new(vocabulary, config.clone());
    markov.train(train.iter().map(|t| &t.tokens[..]));
    let memory = markov.long_term().unwrap().clone();
    eprintln!(
        "trained in {:.1}s, {} trie nodes",
        started.elapsed().as_secs_f64(),
        memory.node_count()
    );
    let mut models: Vec<Box<dyn EventModel>> = vec![Box::new(unigram)];
    for (long_term, short_term) in [(true, false), (false, true)] {
        let mut m = Markov::new(
            vocabulary,
            MarkovConfig {
                long_term,
                short_term,
                ..config.clone()
            },
        );
        m.set_long_term(memory.clone());
        models.push(Box::new(m));
    }
    models.push(Box::new(markov));
    let mut rows = Vec::new();
    let notes: usize = tunes.iter().map(|t| t.notes).sum();
    for model in &mut models {
        let started = Instant::now();
        rows.push(score(model.as_mut(), &tunes, &vocabulary));
        // Bits per note by class of event.
        let mut by_class = [0.0f64; 4];
        let mut dist = vec![0.0; vocabulary.len()];
        for tune in &tunes {
            model.reset();
            for &t in &tune.tokens {
                model.distribution(&mut dist);
                let class = vocabulary.class(t) as usize;
                by_class[class] -= dist[usize::from(t)].log2();
                model.observe(t);
            }
        }
        let per_note: Vec<String> = by_class
            .iter()
            .map(|b| format!("{:.3}", b / notes as f64))
            .collect();
        eprintln!(
            "{} in {:.1}s; bits/note by class on/off/end/shift: {}",
            model.name(),
            started.elapsed().as_secs_f64(),
            per_note.join(" ")
        );
    }
    let report = EvalReport {
        rows,
        train_files: train.len(),
        skipped: Vec::new(),
    };
    print!("{}", report.table());
    println!("{}", report.to_json());
}
