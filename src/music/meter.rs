//! Where the bar lines of a tune fall, in event ticks ([`TICKS_PER_BEAT`] per quarter note): the
//! phrase WaveNet is fed each event's position in its bar, so it learns meter (a jig's 6/8 bar is
//! 72 ticks, a reel's 4/4 or 2/2 bar 96).
//!
//! A meter is a list of changes, each a bar length starting on a bar line; the first is at tick
//! 0 (time 0 is a bar line, so a pickup sits at the end of a silent first bar, as the corpus
//! files are written). A MIDI file without time signatures is in 4/4, as the standard says.

use crate::music::TICKS_PER_BEAT;

/// One meter change: from `at_ticks` on, bars are `bar_ticks` long (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterChange {
    pub at_ticks: u64,
    pub bar_ticks: u32,
}

/// The bar lines of a tune (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    /// Sorted by `at_ticks`, the first at 0, no two at the same tick.
    changes: Vec<MeterChange>,
}

impl Default for Meter {
    /// 4/4 throughout.
    fn default() -> Self {
        Self::constant(bar_ticks(4, 4))
    }
}

impl Meter {
    /// Bars of `bar_ticks` ticks throughout (0 counts as 1).
    pub fn constant(bar_ticks: u32) -> Self {
        Self {
            changes: vec![MeterChange {
                at_ticks: 0,
                bar_ticks: bar_ticks.max(1),
            }],
        }
    }

    /// The meter of `changes` in any order: where two fall on one tick the later in the list
    /// wins, and 4/4 holds until the first.
    pub fn from_changes(changes: impl IntoIterator<Item = MeterChange>) -> Self {
        let mut meter = Self::default();
        let mut sorted: Vec<MeterChange> = changes.into_iter().collect();
        // NOTE: a stable sort keeps the list order among changes at one tick.
        sorted.sort_by_key(|c| c.at_ticks);
        for change in sorted {
            meter.push(change);
        }
        meter
    }

    /// Adds a change at or after the last one.
    fn push(&mut self, change: MeterChange) {
        let change = MeterChange {
            bar_ticks: change.bar_ticks.max(1),
            ..change
        };
        let last = self.changes.last_mut().expect("a meter has a change at 0");
        let on_bar_line =
            (change.at_ticks - last.at_ticks).is_multiple_of(u64::from(last.bar_ticks));
        if last.at_ticks == change.at_ticks {
            *last = change;
        } else if last.bar_ticks != change.bar_ticks || !on_bar_line {
            // NOTE: the same meter again on one of its bar lines changes nothing.
            self.changes.push(change);
        }
    }

    /// The changes, the first at tick 0.
    pub fn changes(&self) -> &[MeterChange] {
        &self.changes
    }

    /// The change in force at `ticks`.
    fn at(&self, ticks: u64) -> MeterChange {
        let i = self.changes.partition_point(|c| c.at_ticks <= ticks);
        self.changes[i.saturating_sub(1)]
    }

    /// Ticks per bar at `ticks`.
    pub fn bar_ticks(&self, ticks: u64) -> u32 {
        self.at(ticks).bar_ticks
    }

    /// Ticks from the last bar line at or before `ticks`.
    pub fn position(&self, ticks: u64) -> u32 {
        let change = self.at(ticks);
        ((ticks - change.at_ticks) % u64::from(change.bar_ticks)) as u32
    }

    /// The tick of the `bars`-th bar line after tick 0 (bar line 0 is tick 0).
    pub fn bar_line(&self, bars: u64) -> u64 {
        let mut now = 0u64;
        let mut left = bars;
        for (i, change) in self.changes.iter().enumerate() {
            let bar = u64::from(change.bar_ticks);
            match self.changes.get(i + 1) {
                // Bar lines of this segment before the next change (a change between bar lines
                // starts a new bar).
                Some(next) if (next.at_ticks - now).div_ceil(bar) <= left => {
                    left -= (next.at_ticks - now).div_ceil(bar);
                    now = next.at_ticks;
                }
                _ => return now + left * bar,
            }
        }
        now
    }
}

/// Ticks per bar of a `numerator`/`denominator` time signature (denominator a note value: 4 is a
/// quarter), at least 1; a bar that is not a whole number of ticks is rounded.
pub fn bar_ticks(numerator: u32, denominator: u32) -> u32 {
    let ticks = f64::from(numerator) * 4.0 * f64::from(TICKS_PER_BEAT) / f64::from(denominator);
    (ticks.round() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at_ticks: u64, bar_ticks: u32) -> MeterChange {
        MeterChange {
            at_ticks,
            bar_ticks,
        }
    }

    #[test]
    fn time_signatures_in_ticks() {
        assert_eq!(bar_ticks(4, 4), 96);
        assert_eq!(bar_ticks(6, 8), 72);
        assert_eq!(bar_ticks(9, 8), 108);
        assert_eq!(bar_ticks(2, 2), 96);
        assert_eq!(bar_ticks(3, 32), 9);
        assert_eq!(bar_ticks(0, 4), 1);
    }

    #[test]
    fn positions_follow_meter_changes() {
        // Two bars of 3/4, then 6/8 from tick 144.
        let meter = Meter::from_changes([change(144, 72), change(0, 72)]);
        assert_eq!(meter.changes(), [change(0, 72)]);
        let meter = Meter::from_changes([change(0, 72), change(144, 48)]);
        assert_eq!(meter.position(0), 0);
        assert_eq!(meter.position(71), 71);
        assert_eq!(meter.position(72), 0);
        assert_eq!(meter.position(150), 6);
        assert_eq!(meter.position(144 + 48), 0);
        assert_eq!(meter.bar_ticks(143), 72);
        assert_eq!(meter.bar_ticks(144), 48);
        // A change off a bar line starts a new bar there.
        let meter = Meter::from_changes([change(100, 96)]);
        assert_eq!(meter.changes(), [change(0, 96), change(100, 96)]);
        assert_eq!(meter.position(99), 3);
        assert_eq!(meter.position(101), 1);
    }

    #[test]
    fn later_changes_at_one_tick_win_and_zero_bars_are_one_tick() {
        let meter = Meter::from_changes([change(0, 72), change(0, 0)]);
        assert_eq!(meter, Meter::constant(1));
        assert_eq!(meter.position(5), 0);
        assert_eq!(Meter::constant(0), Meter::constant(1));
        assert_eq!(Meter::from_changes([]), Meter::default());
    }

    #[test]
    fn bar_lines_across_changes() {
        let meter = Meter::from_changes([change(0, 72), change(144, 48)]);
        let lines: Vec<u64> = (0..5).map(|b| meter.bar_line(b)).collect();
        assert_eq!(lines, [0, 72, 144, 192, 240]);
        // A change inside the second bar: that bar ends there.
        let meter = Meter::from_changes([change(0, 96), change(120, 72)]);
        let lines: Vec<u64> = (0..4).map(|b| meter.bar_line(b)).collect();
        assert_eq!(lines, [0, 96, 120, 192]);
        for &line in &lines {
            assert_eq!(meter.position(line), 0);
        }
    }
}
