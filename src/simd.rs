//! What the hand-written kernels (the phrase WaveNet's and the neural voice's) share: the
//! instruction sets they are compiled for ([`SimdPath`], picked once at load) and the scalar
//! maths their loops vectorise (a fused multiply-add switch, a branch-free `exp` and sigmoid).

/// The instruction set a kernel's loops run with; picked once at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimdPath {
    /// `[f32; 4]` chunks in plain Rust: SSE2 on any x86-64, NEON on aarch64.
    Portable,
    /// `[f32; 8]` chunks with AVX2, fused multiply-add and F16C (x86-64 CPUs since about 2013).
    Avx2Fma,
    /// `[f32; 16]` chunks with AVX-512F (and fused multiply-add and F16C).
    Avx512,
}

impl SimdPath {
    /// Every path, slowest first.
    pub const ALL: [SimdPath; 3] = [SimdPath::Portable, SimdPath::Avx2Fma, SimdPath::Avx512];

    /// The path a loaded model runs: the fastest this CPU supports, by a rule (not a timing at
    /// load, so the same seed gives the same answer in every session on a machine: the paths
    /// round differently).
    ///
    /// A step streams its half-precision weights (0.91 MB for the default model), and which
    /// width reads them fastest depends on the core. `cargo bench --bench kernel` measured
    /// AVX-512 faster on an Intel Xeon with it (Sapphire Rapids: 18.8 µs a step and 530 µs to
    /// the first answer event, against 22.6 µs and 659 µs with AVX2), and slower on AMD Zen 4,
    /// which runs 512-bit operations as two 256-bit halves (18.4 µs and 518 µs, against 15.3 µs
    /// and 426 µs). So AVX-512 is chosen on Intel CPUs only, AVX2+FMA elsewhere. The bench times
    /// every path the CPU runs and says if one beats this choice.
    pub fn detect() -> Self {
        if SimdPath::Avx512.is_supported() && intel_cpu() {
            SimdPath::Avx512
        } else if SimdPath::Avx2Fma.is_supported() {
            SimdPath::Avx2Fma
        } else {
            SimdPath::Portable
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            SimdPath::Portable => true,
            SimdPath::Avx2Fma => avx2_fma_detected(),
            SimdPath::Avx512 => avx512_detected(),
        }
    }

    /// A short name for reports: `portable`, `avx2+fma` or `avx512f`.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Portable => "portable",
            SimdPath::Avx2Fma => "avx2+fma",
            SimdPath::Avx512 => "avx512f",
        }
    }

    /// Whether the path keeps a half-precision file's weights in half precision (widening them
    /// with F16C as it reads them); the portable path widens them once, at load.
    pub(crate) fn streams_half(self) -> bool {
        cfg!(target_arch = "x86_64") && self != SimdPath::Portable
    }

    /// Floats per chunk of the path's loops (and of the packing's padding).
    pub(crate) fn lanes(self) -> usize {
        match self {
            SimdPath::Portable => 4,
            SimdPath::Avx2Fma => 8,
            SimdPath::Avx512 => 16,
        }
    }
}

/// Whether the CPU has AVX2, FMA and F16C (run-time check, cached by std).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn avx2_fma_detected() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

/// Whether the CPU has AVX-512F, AVX2, FMA and F16C (run-time check, cached by std).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn avx512_detected() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && avx2_fma_detected()
}

/// Whether the CPU's vendor is Intel (`cpuid` leaf 0).
#[cfg(target_arch = "x86_64")]
fn intel_cpu() -> bool {
    let id = std::arch::x86_64::__cpuid(0);
    let vendor = [id.ebx, id.edx, id.ecx].map(u32::to_le_bytes);
    vendor.concat() == b"GenuineIntel"
}

#[cfg(not(target_arch = "x86_64"))]
fn intel_cpu() -> bool {
    false
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn avx2_fma_detected() -> bool {
    false
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn avx512_detected() -> bool {
    false
}

/// `a · b + c`, fused (one rounding) if `FMA`: only call that inside an `fma` target feature,
/// elsewhere it is a libm call.
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `1 / (1 + e⁻ˣ)`, with fused multiply-adds if `FMA` (see [`madd`]).
#[inline(always)]
pub(crate) fn sigmoid<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp::<FMA>(-x))
}

/// `eˣ` for `|x| ≤ 80` (clamped beyond, so a sigmoid of it stays a normal float) to 2.3e-7
/// relative, branch-free so a loop of it vectorises; NaN stays NaN. `eˣ = 2ⁿ · eʳ` with
/// `n = round(x / ln 2)`, `|r| ≤ ln 2 / 2`, and eʳ by a degree-5 polynomial fitted to it over
/// that range (relative error 7.5e-8 in exact arithmetic; the rest is float rounding), in
/// Horner's form, with fused multiply-adds if `FMA` (see [`madd`]). The kernels' gates spend
/// most of their time here: the fused form halves its chain of dependent operations, and the
/// fitted degree 5 does in five steps what a Taylor polynomial needs seven for.
#[inline(always)]
pub(crate) fn exp<const FMA: bool>(x: f32) -> f32 {
    /// 1.5 · 2²³: adding it rounds a float of magnitude below 2²² to an integer `n`, which
    /// then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // NOTE: ln 2 in two parts (Cody–Waite), so `r` keeps its low bits: `n · LN2_HI` is exact.
    const LN2_HI: f32 = f32::from_bits(0x3f31_8000); // 0.693359375: 9 significant bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// The polynomial's coefficients, highest degree first: a near-minimax fit of eʳ's relative
    /// error on |r| ≤ ln 2 / 2 (Lawson's iteration on weighted least squares).
    const FIT: [f32; 6] = [
        0.008_297_655,
        0.041_915_383,
        0.166_675_75,
        0.499_988_94,
        0.999_999_7,
        1.000_000_1,
    ];
    let x = x.clamp(-80.0, 80.0);
    let shifted = madd::<FMA>(x, std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, x));
    let p = FIT[1..].iter().fold(FIT[0], |p, &c| madd::<FMA>(p, r, c));
    // 2ⁿ from its biased exponent (n ∈ [−116, 116] after the clamp).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `z = tanh(f) ⊙ sigmoid(s)`, with `tanh(f) = 2 sigmoid(2f) − 1`: within 3e-7 of the exact
/// value (absolute; `z` is at most 1 in magnitude), with fused multiply-adds if `FMA`.
#[inline(always)]
pub(crate) fn gated_activation<const FMA: bool>(z: &mut [f32], filter: &[f32], gate: &[f32]) {
    for ((z, &f), &s) in z.iter_mut().zip(filter).zip(gate) {
        *z = (2.0 * sigmoid::<FMA>(2.0 * f) - 1.0) * sigmoid::<FMA>(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worst relative error of `exp::<FMA>` and absolute error of the gate over
    /// −80…80, and the clamped and NaN cases.
    fn check_accuracy<const FMA: bool>() {
        let mut worst_exp = 0.0f64;
        let mut worst_gate = 0.0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-3;
            let exact = f64::from(x).exp();
            worst_exp = worst_exp.max((f64::from(exp::<FMA>(x)) - exact).abs() / exact);
            let (mut z, filter, gate) = ([0.0f32], [x / 8.0], [x / 8.0 - 1.0]);
            gated_activation::<FMA>(&mut z, &filter, &gate);
            let (f, s) = (f64::from(filter[0]), f64::from(gate[0]));
            let exact = f.tanh() / (1.0 + (-s).exp());
            worst_gate = worst_gate.max((f64::from(z[0]) - exact).abs());
        }
        assert!(
            worst_exp < 3e-7,
            "exp (fma {FMA}): relative error {worst_exp:e}"
        );
        assert!(
            worst_gate < 5e-7,
            "gate (fma {FMA}): absolute error {worst_gate:e}"
        );
        // Clamped, not overflowed: sigmoids stay normal floats; NaN propagates.
        assert!(exp::<FMA>(200.0).is_finite() && exp::<FMA>(-200.0) > 0.0);
        assert!(sigmoid::<FMA>(-1e9).is_normal() && sigmoid::<FMA>(1e9) == 1.0);
        assert!(exp::<FMA>(f32::NAN).is_nan());
    }

    #[test]
    fn exp_and_the_gate_activations_are_accurate() {
        check_accuracy::<false>();
    }

    #[test]
    fn exp_and_the_gate_activations_are_accurate_with_fused_multiply_adds() {
        check_accuracy::<true>();
    }
}
