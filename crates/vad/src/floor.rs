//! A running-minimum estimate of the noise floor.

use std::collections::VecDeque;

/// The quietest frame level of a sliding window (a couple of seconds): in speech,
/// the pauses between syllables reach the noise, so the minimum tracks it; when the
/// noise changes, the window forgets the old level.
///
/// The window is kept as eight blocks of running minima, so an update is O(1).
#[derive(Debug, Clone)]
pub(crate) struct NoiseFloor {
    block_minima: VecDeque<f32>,
    block_frames: usize,
    current_min: f32,
    current_frames: usize,
    lowest: f32,
}

const BLOCKS: usize = 8;

impl NoiseFloor {
    /// A floor over `window_frames` frames that never reads below `lowest` dBFS.
    pub(crate) fn new(window_frames: usize, lowest: f32) -> Self {
        Self {
            block_minima: VecDeque::with_capacity(BLOCKS),
            block_frames: window_frames.div_ceil(BLOCKS).max(1),
            current_min: f32::INFINITY,
            current_frames: 0,
            lowest,
        }
    }

    /// Adds a frame's level in dBFS.
    pub(crate) fn update(&mut self, level_dbfs: f32) {
        self.current_min = self.current_min.min(level_dbfs);
        self.current_frames += 1;
        if self.current_frames == self.block_frames {
            if self.block_minima.len() == BLOCKS {
                self.block_minima.pop_front();
            }
            self.block_minima.push_back(self.current_min);
            self.current_min = f32::INFINITY;
            self.current_frames = 0;
        }
    }

    /// The floor in dBFS (the lowest bound before any frame was seen).
    pub(crate) fn dbfs(&self) -> f32 {
        let min = self
            .block_minima
            .iter()
            .copied()
            .fold(self.current_min, f32::min);
        if min.is_finite() {
            min.max(self.lowest)
        } else {
            self.lowest
        }
    }

    /// Forgets everything.
    pub(crate) fn reset(&mut self) {
        self.block_minima.clear();
        self.current_min = f32::INFINITY;
        self.current_frames = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_minimum_and_forgets_old_levels() {
        let mut floor = NoiseFloor::new(16, -90.0);
        assert_eq!(floor.dbfs(), -90.0);
        for level in [-40.0, -60.0, -30.0] {
            floor.update(level);
        }
        assert_eq!(floor.dbfs(), -60.0);
        // 16 frames later the -60 dB frame has left the window.
        for _ in 0..20 {
            floor.update(-45.0);
        }
        assert_eq!(floor.dbfs(), -45.0);
        floor.update(-120.0);
        assert_eq!(floor.dbfs(), -90.0, "never below the lowest bound");
    }
}
