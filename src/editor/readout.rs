//! Figures the panel shows, derived from [`Status`](crate::status::Status) values.

/// Tempo assumed while the host has not reported one, in BPM.
pub const FALLBACK_TEMPO_BPM: f64 = 120.0;
/// Bar length assumed while the host has not reported a time signature, in beats.
pub const FALLBACK_BAR_BEATS: f64 = 4.0;

/// `tempo_bpm` if it is a usable tempo, else [`FALLBACK_TEMPO_BPM`].
pub fn tempo_bpm(tempo_bpm: f64) -> f64 {
    if tempo_bpm.is_finite() && tempo_bpm > 0.0 {
        tempo_bpm
    } else {
        FALLBACK_TEMPO_BPM
    }
}

/// `bar_beats` if it is a usable bar length, else [`FALLBACK_BAR_BEATS`].
pub fn bar_beats(bar_beats: f64) -> f64 {
    if bar_beats.is_finite() && bar_beats > 0.0 {
        bar_beats
    } else {
        FALLBACK_BAR_BEATS
    }
}

/// The playhead at `beat` (beats from the song start) as "bar.beat", both counted from 1; a
/// count-in before the song start shows as bar 0 or below.
pub fn bar_beat(beat: f64, bar_beats_now: f64) -> String {
    let bar_len = bar_beats(bar_beats_now);
    let beat = if beat.is_finite() { beat } else { 0.0 };
    let bar = (beat / bar_len).floor() as i64 + 1;
    let beat_in_bar = beat.rem_euclid(bar_len).floor() as i64 + 1;
    format!("{bar}.{beat_in_bar}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_bars_and_beats_from_one() {
        assert_eq!(bar_beat(0.0, 4.0), "1.1");
        assert_eq!(bar_beat(3.99, 4.0), "1.4");
        assert_eq!(bar_beat(5.5, 4.0), "2.2");
        assert_eq!(bar_beat(6.0, 3.0), "3.1");
        assert_eq!(bar_beat(-0.5, 4.0), "0.4");
    }

    #[test]
    fn missing_host_figures_fall_back() {
        assert_eq!(bar_beat(4.0, 0.0), "2.1");
        assert_eq!(bar_beat(f64::NAN, f64::NAN), "1.1");
        assert_eq!(tempo_bpm(0.0), FALLBACK_TEMPO_BPM);
        assert_eq!(tempo_bpm(f64::INFINITY), FALLBACK_TEMPO_BPM);
        assert_eq!(tempo_bpm(97.5), 97.5);
    }
}
