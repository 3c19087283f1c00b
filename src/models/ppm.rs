//! Prediction by Partial Matching (Cleary & Witten 1984): a variable-order Markov model over an
//! alphabet of `0..alphabet_size` symbols, with interpolated smoothing (blending) as in IDyOM
//! (Pearce 2005, Pearce & Wiggins 2004).
//!
//! The probability of symbol `s` after context `c` blends every order from the start order down:
//!
//! ```text
//! P(s | c) = α(s | c) + γ(c) · P(s | c minus its oldest symbol),     P(s | order −1) = 1 / |A|
//! ```
//!
//! where `α` discounts the counts of `s` after `c` and `γ` is the escape probability
//! ([`Escape`]). Contexts never seen (or seen only at the end of a sequence) are skipped. Each
//! level's `α`s and `γ` sum to one, so the blend sums to one over the whole alphabet and, through
//! the uniform floor at order −1, every symbol has a probability above zero.
//!
//! The same model serves as a long-term memory (trained on a corpus with [`Ppm::train`], then
//! read without learning via [`Ppm::advance`]) and as a short-term memory that learns while it
//! reads ([`Ppm::learn`]). Storage is a trie of flat nodes in a `Vec` (no hashing), so training,
//! prediction and serialisation are deterministic.

use serde::{Deserialize, Serialize};

/// A symbol of the alphabet, `0..alphabet_size`.
pub type Symbol = u32;

/// Index of the root node (the empty context).
const ROOT: u32 = 0;
/// No node.
const NONE: u32 = u32::MAX;

/// How a context's counts are discounted to leave probability for its escape (`T` = total count
/// in the context, `t` = distinct symbols seen, `t1` = symbols seen exactly once, `c` = count of
/// the symbol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Escape {
    /// `α = c / (T + 1)`, `γ = 1 / (T + 1)`.
    A,
    /// `α = c / (T + t)`, `γ = t / (T + t)` (PPM-C, Moffat 1990).
    C,
    /// `α = (c − ½) / T`, `γ = t / 2T` (PPM-D, Howard 1993).
    D,
    /// `α = c / (T + t1 + 1)`, `γ = (t1 + 1) / (T + t1 + 1)` (PPM-AX: escape by novelty, after
    /// Witten & Bell 1991; IDyOM's default for short-term models).
    X,
}

/// How a [`Ppm`] learns and predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PpmConfig {
    /// Longest context used, in symbols (0 = order-0 frequencies).
    pub max_order: usize,
    /// Escape method.
    pub escape: Escape,
    /// Update exclusion: learning a symbol raises its count in the longest contexts down to the
    /// first one where it had been seen, not in the shorter ones below.
    pub update_exclusion: bool,
    /// PPM* start order (Cleary & Teahan 1997): blending starts at the shortest matching context
    /// with a single distinct successor if there is one, else at the longest matching context.
    pub shortest_deterministic: bool,
}

impl PpmConfig {
    /// PPM-C with the PPM* start order and no update exclusion, contexts of up to `max_order`
    /// symbols: the best of these settings for both memories of the `markov` engine on the
    /// folk-tune validation set.
    ///
    /// NOTE: update exclusion with the PPM* start order learns repeats slowly: once the longest
    /// contexts know a symbol, the shorter deterministic context where blending starts stops
    /// counting, so its escape never shrinks.
    pub fn new(max_order: usize) -> Self {
        Self {
            max_order,
            escape: Escape::C,
            update_exclusion: false,
            shortest_deterministic: true,
        }
    }
}

/// A trie node: one symbol after its parent's context, with how often it followed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Node {
    symbol: Symbol,
    /// Times `symbol` followed the parent's context (0 only for a node never counted).
    count: u32,
    /// First child, or `NONE`; children form a singly linked list, newest first.
    first_child: u32,
    /// Next sibling, or `NONE`.
    next_sibling: u32,
}

/// Why a deserialised [`Ppm`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPpm(pub String);

impl std::fmt::Display for InvalidPpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid PPM model: {}", self.0)
    }
}

impl std::error::Error for InvalidPpm {}

/// A PPM model (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ppm {
    /// Number of symbols.
    alphabet_size: u32,
    config: PpmConfig,
    /// The trie; `nodes[0]` is the root.
    nodes: Vec<Node>,
    /// The root's child for each symbol, or `NONE` (the root has the most children by far).
    root_children: Vec<u32>,
}

/// Where a reader is in a sequence: the trie node of each suffix of the symbols read so far
/// that the model has seen, by length (`active[0]` is the root, the empty context). Create it
/// with [`Ppm::context`] and use it only with that model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    active: Vec<u32>,
    scratch: Vec<u32>,
}

impl Context {
    /// The order of the longest context the model has seen (0 = none but the empty one).
    pub fn order(&self) -> usize {
        self.active.len() - 1
    }

    /// Forget the symbols read (start a new sequence).
    pub fn reset(&mut self) {
        self.active.clear();
        self.active.push(ROOT);
    }
}

/// One context's escape probability `γ` and discounted shares `α(c) = (c − offset) / denominator`
/// (see [`Escape`]).
#[derive(Debug, Clone, Copy)]
struct Discount {
    escape: f64,
    offset: f64,
    denominator: f64,
}

impl Discount {
    /// `α` of a symbol seen `count` times in the context.
    fn share(self, count: u32) -> f64 {
        (f64::from(count) - self.offset) / self.denominator
    }
}

/// Counts of one context: total `T`, distinct symbols `t`, singletons `t1`.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    total: u64,
    distinct: u64,
    singletons: u64,
}

impl Ppm {
    /// An empty model over `alphabet_size` symbols (at least 1).
    pub fn new(alphabet_size: u32, config: PpmConfig) -> Self {
        let alphabet_size = alphabet_size.max(1);
        Self {
            alphabet_size,
            config,
            nodes: vec![Node {
                symbol: 0,
                count: 0,
                first_child: NONE,
                next_sibling: NONE,
            }],
            root_children: vec![NONE; alphabet_size as usize],
        }
    }

    /// Number of symbols.
    pub fn alphabet_size(&self) -> u32 {
        self.alphabet_size
    }

    /// How it learns and predicts.
    pub fn config(&self) -> PpmConfig {
        self.config
    }

    /// Number of trie nodes (a measure of memory use: 16 bytes each).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Symbols learned (the order-0 total count; with update exclusion, fewer).
    pub fn symbols_learned(&self) -> u64 {
        self.stats(ROOT).total
    }

    /// Forget everything learned.
    pub fn clear(&mut self) {
        *self = Self::new(self.alphabet_size, self.config);
    }

    /// A reader at the start of a sequence.
    pub fn context(&self) -> Context {
        Context {
            active: vec![ROOT],
            scratch: Vec::new(),
        }
    }

    /// Learn a whole sequence, read from its start (its first symbol has no context).
    pub fn train(&mut self, sequence: &[Symbol]) {
        let mut context = self.context();
        for &symbol in sequence {
            self.learn(&mut context, symbol);
        }
    }

    /// Learn `symbol` after the context and move the context past it.
    ///
    /// # Panics
    /// If `symbol` is not in the alphabet.
    pub fn learn(&mut self, context: &mut Context, symbol: Symbol) {
        assert!(
            symbol < self.alphabet_size,
            "symbol {symbol} outside an alphabet of {}",
            self.alphabet_size
        );
        let n = context.active.len();
        context.scratch.clear();
        context.scratch.resize(n, NONE);
        let mut counting = true;
        for i in (0..n).rev() {
            let child = self.child_or_insert(context.active[i], symbol);
            let node = &mut self.nodes[child as usize];
            if counting {
                let seen = node.count > 0;
                node.count = node.count.saturating_add(1);
                counting = !(self.config.update_exclusion && seen);
            }
            context.scratch[i] = child;
        }
        // The new contexts are the old ones extended by `symbol`, as long as they fit the order.
        let keep = n.min(self.config.max_order);
        context.active.truncate(1);
        context.active.extend_from_slice(&context.scratch[..keep]);
    }

    /// Move the context past `symbol` without learning it.
    pub fn advance(&self, context: &mut Context, symbol: Symbol) {
        self.prefetch_children(context);
        let keep = context.active.len().min(self.config.max_order);
        context.scratch.clear();
        context.scratch.push(ROOT);
        for i in 0..keep {
            match self.child(context.active[i], symbol) {
                Some(child) => context.scratch.push(child),
                // NOTE: every suffix of a string in the trie is in the trie, so no longer
                // context can match either.
                None => break,
            }
        }
        std::mem::swap(&mut context.active, &mut context.scratch);
    }

    /// The distribution of the next symbol after the context, into `out` (one entry per symbol).
    /// It sums to one and every entry is above zero.
    ///
    /// # Panics
    /// If `out` is not as long as the alphabet.
    pub fn distribution(&self, context: &Context, out: &mut [f64]) {
        assert_eq!(
            out.len(),
            self.alphabet_size as usize,
            "distribution length"
        );
        out.fill(0.0);
        let floor = self.blend(context, |weight, node, discount| {
            self.for_each_child(node, |symbol, count| {
                out[symbol as usize] += weight * discount.share(count);
            });
        }) / f64::from(self.alphabet_size);
        for p in out.iter_mut() {
            *p += floor;
        }
    }

    /// The probability of `symbol` after the context (as [`Self::distribution`] would give it).
    pub fn probability(&self, context: &Context, symbol: Symbol) -> f64 {
        let mut p = 0.0;
        let floor = self.blend(context, |weight, node, discount| {
            if let Some(child) = self.child(node, symbol) {
                let count = self.nodes[child as usize].count;
                if count > 0 {
                    p += weight * discount.share(count);
                }
            }
        });
        p + floor / f64::from(self.alphabet_size)
    }

    /// Renumbers the trie breadth first, so that each node's children lie next to each other in
    /// memory, in their list order: reading a large trained model then streams through sibling
    /// lists instead of jumping across the whole trie. Predictions are unchanged; contexts made
    /// before must be reset.
    pub fn compact(&mut self) {
        let len = self.nodes.len();
        // Old ids in their new order, and each old id's new one.
        let mut order: Vec<u32> = Vec::with_capacity(len);
        let mut renumbered = vec![NONE; len];
        order.push(ROOT);
        renumbered[ROOT as usize] = ROOT;
        let mut next = 0;
        while next < order.len() {
            let mut child = self.nodes[order[next] as usize].first_child;
            next += 1;
            while child != NONE {
                renumbered[child as usize] = order.len() as u32;
                order.push(child);
                child = self.nodes[child as usize].next_sibling;
            }
        }
        let new_id = |old: u32| {
            if old == NONE {
                NONE
            } else {
                renumbered[old as usize]
            }
        };
        self.nodes = order
            .iter()
            .map(|&old| {
                let node = self.nodes[old as usize];
                Node {
                    first_child: new_id(node.first_child),
                    next_sibling: new_id(node.next_sibling),
                    ..node
                }
            })
            .collect();
        for child in &mut self.root_children {
            *child = new_id(*child);
        }
    }

    /// Checks a deserialised model's structure (links, symbols, root index).
    pub fn validate(&self) -> Result<(), InvalidPpm> {
        let bad = |msg: String| Err(InvalidPpm(msg));
        let len = self.nodes.len();
        if len == 0 || len >= NONE as usize {
            return bad(format!("{len} nodes"));
        }
        if self.root_children.len() != self.alphabet_size as usize {
            return bad(format!(
                "root index of {} entries for an alphabet of {}",
                self.root_children.len(),
                self.alphabet_size
            ));
        }
        // Every node but the root must be reached exactly once from the root.
        let mut seen = vec![false; len];
        let mut stack = vec![ROOT];
        seen[0] = true;
        while let Some(node) = stack.pop() {
            let mut child = self.nodes[node as usize].first_child;
            while child != NONE {
                let Some(c) = self.nodes.get(child as usize) else {
                    return bad(format!("node {node} links to missing node {child}"));
                };
                if seen[child as usize] {
                    return bad(format!("node {child} is linked twice"));
                }
                if c.symbol >= self.alphabet_size {
                    return bad(format!("node {child} has symbol {}", c.symbol));
                }
                if node == ROOT && self.root_children[c.symbol as usize] != child {
                    return bad(format!("root index misses symbol {}", c.symbol));
                }
                seen[child as usize] = true;
                stack.push(child);
                child = c.next_sibling;
            }
        }
        if let Some(orphan) = seen.iter().position(|&s| !s) {
            return bad(format!("node {orphan} is not reachable"));
        }
        Ok(())
    }

    /// Calls `visit(weight, node, discount)` for each context to blend, from the start order
    /// down to order 0, skipping contexts with no counts; `weight` is the product of the escapes
    /// above. Returns the weight left for the uniform floor (order −1).
    fn blend(&self, context: &Context, mut visit: impl FnMut(f64, u32, Discount)) -> f64 {
        // NOTE: the start-order search computes the counts of the contexts it passes; the
        // blend reuses them (contexts this long are rare enough to count again).
        const KEPT: usize = 32;
        self.prefetch_children(context);
        let mut kept = [Stats::default(); KEPT];
        let longest = context.active.len() - 1;
        let mut start = longest;
        let mut searched = 0;
        if self.config.shortest_deterministic {
            for (i, &node) in context.active.iter().enumerate() {
                let stats = self.stats(node);
                if i < KEPT {
                    kept[i] = stats;
                    searched = i + 1;
                }
                if stats.distinct == 1 {
                    start = i;
                    break;
                }
            }
        }
        let mut weight = 1.0;
        for i in (0..=start).rev() {
            let node = context.active[i];
            let stats = if i < searched {
                kept[i]
            } else {
                self.stats(node)
            };
            if stats.total == 0 {
                continue;
            }
            let discount = self.discount(stats);
            visit(weight, node, discount);
            weight *= discount.escape;
        }
        weight
    }

    /// How a context with counts `s` discounts them.
    fn discount(&self, s: Stats) -> Discount {
        let total = s.total as f64;
        let (escape, offset, denominator) = match self.config.escape {
            Escape::A => (1.0 / (total + 1.0), 0.0, total + 1.0),
            Escape::C => {
                let d = total + s.distinct as f64;
                (s.distinct as f64 / d, 0.0, d)
            }
            Escape::D => (s.distinct as f64 / (2.0 * total), 0.5, total),
            Escape::X => {
                let d = total + s.singletons as f64 + 1.0;
                ((s.singletons as f64 + 1.0) / d, 0.0, d)
            }
        };
        Discount {
            escape,
            offset,
            denominator,
        }
    }

    /// Asks the CPU to start loading the first children of every context, so that the walks
    /// through them (one after another) wait for memory once instead of once per context: in a
    /// large trained trie each walk starts with a cache miss.
    fn prefetch_children(&self, context: &Context) {
        #[cfg(target_arch = "x86_64")]
        for &node in &context.active {
            let child = self.nodes[node as usize].first_child;
            if let Some(c) = self.nodes.get(child as usize) {
                // SAFETY: a prefetch has no effect on the program's state; the pointer is valid.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(c).cast());
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = context;
    }

    fn stats(&self, node: u32) -> Stats {
        let mut stats = Stats::default();
        self.for_each_child(node, |_, count| {
            stats.total += u64::from(count);
            stats.distinct += 1;
            stats.singletons += u64::from(count == 1);
        });
        stats
    }

    /// Calls `f(symbol, count)` for each counted child of `node`.
    fn for_each_child(&self, node: u32, mut f: impl FnMut(Symbol, u32)) {
        let mut child = self.nodes[node as usize].first_child;
        while child != NONE {
            let c = &self.nodes[child as usize];
            if c.count > 0 {
                f(c.symbol, c.count);
            }
            child = c.next_sibling;
        }
    }

    fn child(&self, node: u32, symbol: Symbol) -> Option<u32> {
        if node == ROOT {
            let child = *self.root_children.get(symbol as usize)?;
            return (child != NONE).then_some(child);
        }
        let mut child = self.nodes[node as usize].first_child;
        while child != NONE {
            let c = &self.nodes[child as usize];
            if c.symbol == symbol {
                return Some(child);
            }
            child = c.next_sibling;
        }
        None
    }

    fn child_or_insert(&mut self, node: u32, symbol: Symbol) -> u32 {
        if let Some(child) = self.child(node, symbol) {
            return child;
        }
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&id| id != NONE)
            .expect("PPM trie too large");
        let parent = &mut self.nodes[node as usize];
        let next_sibling = parent.first_child;
        parent.first_child = id;
        self.nodes.push(Node {
            symbol,
            count: 0,
            first_child: NONE,
            next_sibling,
        });
        if node == ROOT {
            self.root_children[symbol as usize] = id;
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn configs() -> Vec<PpmConfig> {
        let mut out = Vec::new();
        for escape in [Escape::A, Escape::C, Escape::D, Escape::X] {
            for update_exclusion in [false, true] {
                for shortest_deterministic in [false, true] {
                    for max_order in [0, 1, 3, 8] {
                        out.push(PpmConfig {
                            max_order,
                            escape,
                            update_exclusion,
                            shortest_deterministic,
                        });
                    }
                }
            }
        }
        out
    }

    fn random_sequence(rng: &mut ChaCha8Rng, len: usize, alphabet: u32) -> Vec<Symbol> {
        // A skewed source with some structure: mostly small steps from the last symbol.
        let mut s = rng.random_range(0..alphabet);
        (0..len)
            .map(|_| {
                if rng.random_bool(0.7) {
                    s = (s + rng.random_range(0..3)) % alphabet;
                } else {
                    s = rng.random_range(0..alphabet);
                }
                s
            })
            .collect()
    }

    fn assert_normalised(model: &Ppm, context: &Context, dist: &mut [f64]) {
        model.distribution(context, dist);
        let sum: f64 = dist.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-12,
            "sum {sum} ({:?})",
            model.config()
        );
        assert!(dist.iter().all(|&p| p > 0.0), "{:?}", model.config());
        for (symbol, &p) in dist.iter().enumerate() {
            let q = model.probability(context, symbol as Symbol);
            assert!((p - q).abs() < 1e-15, "{p} vs {q}");
        }
    }

    #[test]
    fn distributions_sum_to_one_with_every_symbol_possible() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let alphabet = 12;
        let mut dist = vec![0.0; alphabet as usize];
        for config in configs() {
            // Long-term: trained, then read without learning (also on unseen material).
            let mut ltm = Ppm::new(alphabet, config);
            assert_normalised(&ltm, &ltm.context(), &mut dist);
            for _ in 0..5 {
                ltm.train(&random_sequence(&mut rng, 60, alphabet - 2));
            }
            let mut context = ltm.context();
            for symbol in random_sequence(&mut rng, 40, alphabet) {
                assert_normalised(&ltm, &context, &mut dist);
                ltm.advance(&mut context, symbol);
                assert!(context.order() <= config.max_order);
            }
            // Short-term: learns as it reads.
            let mut stm = Ppm::new(alphabet, config);
            let mut context = stm.context();
            for symbol in random_sequence(&mut rng, 80, alphabet) {
                assert_normalised(&stm, &context, &mut dist);
                stm.learn(&mut context, symbol);
            }
            stm.validate().unwrap();
        }
    }

    #[test]
    fn ppm_c_blends_as_computed_by_hand() {
        // After 0 1 0 1 0 with order 1: the context "0" has seen 1 twice (T = 2, t = 1); the
        // empty context 0 ×3 and 1 ×2 (T = 5, t = 2); order −1 is 1/3.
        let config = PpmConfig {
            shortest_deterministic: false,
            ..PpmConfig::new(1)
        };
        let mut model = Ppm::new(3, config);
        let mut context = model.context();
        for s in [0, 1, 0, 1, 0] {
            model.learn(&mut context, s);
        }
        let mut dist = [0.0; 3];
        model.distribution(&context, &mut dist);
        // P(1) = 2/3 + 1/3 (2/7 + 2/7 · 1/3); P(0) = 1/3 (3/7 + 2/21); P(2) = 1/3 · 2/7 · 1/3.
        let expected = [11.0 / 63.0, 50.0 / 63.0, 2.0 / 63.0];
        for (p, e) in dist.iter().zip(expected) {
            assert!((p - e).abs() < 1e-12, "{dist:?}");
        }
        assert_eq!(context.order(), 1);
        assert_eq!(model.symbols_learned(), 5);
    }

    #[test]
    fn update_exclusion_stops_at_the_first_context_that_knew_the_symbol() {
        let mut with = Ppm::new(
            3,
            PpmConfig {
                update_exclusion: true,
                ..PpmConfig::new(2)
            },
        );
        with.train(&[0, 1, 0, 1]);
        // The root counts 0 and 1 while they are new, and the second 0 (new after "1" but known
        // at order 0, where counting stops); the second 1 was known after "0", so the root
        // never counts it: a total of 3, not 4.
        assert_eq!(with.symbols_learned(), 3);
        let mut without = Ppm::new(3, PpmConfig::new(2));
        without.train(&[0, 1, 0, 1]);
        assert_eq!(without.symbols_learned(), 4);
    }

    #[test]
    fn a_repeated_pattern_becomes_nearly_certain_online() {
        let pattern = [3, 1, 4, 1, 5, 9, 2, 6];
        let x = PpmConfig {
            escape: Escape::X,
            ..PpmConfig::new(12)
        };
        let c_plain = PpmConfig {
            shortest_deterministic: false,
            ..PpmConfig::new(12)
        };
        for config in [x, PpmConfig::new(12), c_plain] {
            let mut model = Ppm::new(10, config);
            let mut context = model.context();
            let mut bits_per_pass = Vec::new();
            for _ in 0..12 {
                let mut bits = 0.0;
                for &s in &pattern {
                    bits -= model.probability(&context, s).log2();
                    model.learn(&mut context, s);
                }
                bits_per_pass.push(bits);
            }
            // First pass ≈ 8 log2(10) bits; the last costs little (PPM-C escapes more slowly).
            assert!(bits_per_pass[0] > 20.0, "{bits_per_pass:?}");
            let limit = if config.escape == Escape::X { 1.0 } else { 2.0 };
            assert!(bits_per_pass[11] < limit, "{config:?} {bits_per_pass:?}");
            assert!(bits_per_pass
                .windows(2)
                .skip(1)
                .all(|w| w[1] <= w[0] + 1e-9));
        }
    }

    #[test]
    fn advance_reads_without_learning_and_unseen_symbols_reset_the_context() {
        let mut model = Ppm::new(5, PpmConfig::new(3));
        model.train(&[0, 1, 2, 3, 0, 1, 2, 3]);
        let before = model.clone();
        let mut context = model.context();
        for s in [0, 1, 2] {
            model.advance(&mut context, s);
        }
        assert_eq!(model, before);
        assert_eq!(context.order(), 3);
        assert!(model.probability(&context, 3) > 0.7);
        model.advance(&mut context, 4); // never seen
        assert_eq!(context.order(), 0);
        context.reset();
        assert_eq!(context.order(), 0);
    }

    #[test]
    fn serialises_to_the_same_model() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut model = Ppm::new(9, PpmConfig::new(4));
        for _ in 0..4 {
            model.train(&random_sequence(&mut rng, 50, 9));
        }
        let json = serde_json::to_string(&model).unwrap();
        let back: Ppm = serde_json::from_str(&json).unwrap();
        back.validate().unwrap();
        assert_eq!(back, model);
        let (mut a, mut b) = ([0.0; 9], [0.0; 9]);
        let (mut ca, mut cb) = (model.context(), back.context());
        for s in random_sequence(&mut rng, 30, 9) {
            model.distribution(&ca, &mut a);
            back.distribution(&cb, &mut b);
            assert_eq!(a, b);
            model.advance(&mut ca, s);
            back.advance(&mut cb, s);
        }
        // Training is deterministic: the same data gives the same bytes.
        let mut again = Ppm::new(9, PpmConfig::new(4));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..4 {
            again.train(&random_sequence(&mut rng, 50, 9));
        }
        assert_eq!(serde_json::to_string(&again).unwrap(), json);

        let mut broken = model.clone();
        broken.nodes[1].next_sibling = 1;
        assert!(broken.validate().is_err());
    }

    #[test]
    fn compacting_keeps_every_prediction_and_makes_siblings_adjacent() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for config in configs() {
            let mut model = Ppm::new(10, config);
            for _ in 0..6 {
                model.train(&random_sequence(&mut rng, 70, 10));
            }
            let mut compact = model.clone();
            compact.compact();
            compact.validate().unwrap();
            assert_eq!(compact.node_count(), model.node_count());
            for node in &compact.nodes {
                let mut child = node.first_child;
                while child != NONE {
                    let next = compact.nodes[child as usize].next_sibling;
                    assert!(
                        next == NONE || next == child + 1,
                        "{config:?}: {child} → {next}"
                    );
                    child = next;
                }
            }
            let (mut a, mut b) = ([0.0; 10], [0.0; 10]);
            let (mut ca, mut cb) = (model.context(), compact.context());
            for s in random_sequence(&mut rng, 40, 10) {
                model.distribution(&ca, &mut a);
                compact.distribution(&cb, &mut b);
                assert_eq!(a, b, "{config:?}");
                model.learn(&mut ca, s);
                compact.learn(&mut cb, s);
            }
        }
    }
}
