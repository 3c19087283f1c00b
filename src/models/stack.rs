//! The layer arithmetic both WaveNets share (the phrase model's and the voices'): stacks of
//! gated layers whose dilations double within a stack, `1, 2, 4, …, 2^(layers_per_stack − 1)`
//! steps (events or samples), the pattern repeated `stacks` times.

use crate::models::container::TensorSpec;

/// Most floats a WaveNet's running state (its layers' histories) may take: 64 MiB. WaveJam's
/// models and voices take under 1 MiB; a file whose sizes ask for gigabytes (a few MB of weights
/// can, through long dilations) would take the host's memory when it is built.
pub const MAX_STATE_FLOATS: usize = 16 << 20;

/// An error naming the size when a running state of `floats` is over [`MAX_STATE_FLOATS`].
pub fn check_state_size(floats: usize) -> Result<(), String> {
    if floats > MAX_STATE_FLOATS {
        return Err(format!(
            "its running state would take {} MiB (at most {} MiB)",
            floats / (1 << 18),
            MAX_STATE_FLOATS / (1 << 18)
        ));
    }
    Ok(())
}

/// A WaveNet's stack of dilated layers, from its configuration's two numbers.
pub trait DilatedStack {
    /// Layers per stack.
    fn layers_per_stack(&self) -> usize;
    /// Number of stacks.
    fn stacks(&self) -> usize;

    /// Total number of dilated layers.
    fn layers(&self) -> usize {
        self.layers_per_stack() * self.stacks()
    }

    /// Dilation of layer `layer` (0-based), in steps.
    fn dilation(&self, layer: usize) -> usize {
        1 << (layer % self.layers_per_stack().max(1))
    }

    /// Whether layer `layer` has a residual 1×1 (every layer but the last: its residual output
    /// would feed nothing).
    fn has_residual(&self, layer: usize) -> bool {
        layer + 1 < self.layers()
    }

    /// How many steps the output at step `t` sees: `t` itself and the `receptive_field() − 1`
    /// before it (one plus the sum of the dilations).
    fn receptive_field(&self) -> usize {
        1 + (0..self.layers()).map(|l| self.dilation(l)).sum::<usize>()
    }
}

/// The tensors of `stack`'s gated layers, layer by layer, for `residual` (C), `gate` (G) and
/// `skip` (S) channels: the kernel-2 dilated convolution (C → 2G), the skip 1×1 (G → S) and,
/// but in the last layer, the residual 1×1 (G → C), each with its bias.
pub fn layer_tensors(
    stack: &impl DilatedStack,
    residual: usize,
    gate: usize,
    skip: usize,
) -> Vec<TensorSpec> {
    let (c, g, s) = (residual, gate, skip);
    let mut specs = Vec::new();
    let mut push = |name: String, shape: Vec<usize>| specs.push(TensorSpec { name, shape });
    for l in 0..stack.layers() {
        push(format!("layers.{l}.dilated.weight"), vec![2 * g, c, 2]);
        push(format!("layers.{l}.dilated.bias"), vec![2 * g]);
        push(format!("layers.{l}.skip.weight"), vec![s, g, 1]);
        push(format!("layers.{l}.skip.bias"), vec![s]);
        if stack.has_residual(l) {
            push(format!("layers.{l}.residual.weight"), vec![c, g, 1]);
            push(format!("layers.{l}.residual.bias"), vec![c]);
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stack(usize, usize);

    impl DilatedStack for Stack {
        fn layers_per_stack(&self) -> usize {
            self.0
        }
        fn stacks(&self) -> usize {
            self.1
        }
    }

    #[test]
    fn dilations_double_within_a_stack_and_repeat() {
        let stack = Stack(3, 2);
        let dilations: Vec<usize> = (0..stack.layers()).map(|l| stack.dilation(l)).collect();
        assert_eq!(dilations, [1, 2, 4, 1, 2, 4]);
        assert_eq!(stack.receptive_field(), 15);
        assert!(stack.has_residual(4) && !stack.has_residual(5));
    }
}
