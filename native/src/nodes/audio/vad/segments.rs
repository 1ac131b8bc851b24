//! Speech segments from final frame decisions, as silero's `get_speech_timestamps`
//! makes them: silences shorter than `min_silence_ms` inside a segment are bridged,
//! segments are padded by `speech_pad_ms` on both sides (where two padded segments
//! would overlap, the gap between them is split in its middle), and a segment longer
//! than `max_speech_ms` is split at its quietest frame.
//!
//! Times are whole milliseconds (frame index × frame length), so both runtimes print
//! the same seconds. A closed segment is held until the next one starts or neither
//! bridging nor padding can join it to another.

/// One segment in milliseconds, `end` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A segment: its padded start, its first frame, and the scores of its frames from
/// there on (silent frames after it included while it is held), kept only with a
/// `max_speech_ms` (so memory stays flat however long a segment lasts without one).
struct Open {
    start_ms: u64,
    first: u64,
    scores: Vec<f32>,
}

pub struct Segmenter {
    frame_ms: u64,
    pad_ms: u64,
    min_silence_ms: u64,
    max_frames: Option<u64>,
    open: Option<Open>,
    /// A segment that ended at this frame (end not padded yet).
    held: Option<(Open, u64)>,
}

impl Segmenter {
    /// Segments of frames of `frame_ms`, bridging silences shorter than
    /// `min_silence_ms`, padded by `pad_ms`, split when longer than `max_speech_ms` (if
    /// given; at least two frames).
    pub fn new(frame_ms: u32, min_silence_ms: u32, pad_ms: u32, max_speech_ms: Option<u64>) -> Self {
        let frame_ms = u64::from(frame_ms);
        Self {
            frame_ms,
            pad_ms: u64::from(pad_ms),
            min_silence_ms: u64::from(min_silence_ms),
            max_frames: max_speech_ms.map(|ms| (ms / frame_ms).max(2)),
            open: None,
            held: None,
        }
    }

    /// The final decision of frame `index` (frames come in order); pushes the segments
    /// that are now final.
    pub fn frame(&mut self, index: u64, speech: bool, score: f32, out: &mut Vec<Segment>) {
        let at = index * self.frame_ms;
        if !speech {
            if let Some(open) = self.open.take() {
                self.held = Some((open, index));
            }
            let reach = self.min_silence_ms.max(2 * self.pad_ms);
            match self.held.take() {
                // no segment starting at the next frame or later can join this one
                Some((held, end)) if at + self.frame_ms >= end * self.frame_ms + reach => {
                    out.push(Segment { start_ms: held.start_ms, end_ms: end * self.frame_ms + self.pad_ms });
                }
                Some((mut held, end)) => {
                    if self.max_frames.is_some() {
                        held.scores.push(score);
                    }
                    self.held = Some((held, end));
                }
                None => {}
            }
            return;
        }
        let open = match (self.open.take(), self.held.take()) {
            (Some(open), _) => open,
            // bridged, unless that would make it longer than max_speech_ms: then the gap
            // is where it splits
            (None, Some((held, end)))
                if at - end * self.frame_ms < self.min_silence_ms && self.max_frames.is_none_or(|m| held.scores.len() as u64 + 1 < m) =>
            {
                held
            }
            (None, Some((held, end))) => {
                let end_ms = end * self.frame_ms;
                let start_ms = if at < end_ms + 2 * self.pad_ms {
                    let middle = end_ms + (at - end_ms) / 2;
                    out.push(Segment { start_ms: held.start_ms, end_ms: middle });
                    middle
                } else {
                    out.push(Segment { start_ms: held.start_ms, end_ms: end_ms + self.pad_ms });
                    at.saturating_sub(self.pad_ms)
                };
                Open { start_ms, first: index, scores: Vec::new() }
            }
            (None, None) => Open { start_ms: at.saturating_sub(self.pad_ms), first: index, scores: Vec::new() },
        };
        self.open = Some(self.extend(open, score, out));
    }

    /// Adds a frame to the open segment; at `max_frames` closes it at the quietest frame
    /// of its second half and opens the next one there, without padding between.
    fn extend(&self, mut open: Open, score: f32, out: &mut Vec<Segment>) -> Open {
        let Some(max) = self.max_frames else { return open };
        open.scores.push(score);
        if (open.scores.len() as u64) < max {
            return open;
        }
        let half = open.scores.len() / 2;
        let quietest = (half..open.scores.len()).rev().min_by(|&a, &b| open.scores[a].total_cmp(&open.scores[b])).unwrap_or(half);
        let split = open.first + quietest as u64;
        out.push(Segment { start_ms: open.start_ms, end_ms: split * self.frame_ms });
        Open { start_ms: split * self.frame_ms, first: split, scores: open.scores.split_off(quietest) }
    }

    /// The end of the stream after `frames` frames: everything still held or open.
    pub fn finish(&mut self, frames: u64, out: &mut Vec<Segment>) {
        let end_of_stream = frames * self.frame_ms;
        let last = match (self.open.take(), self.held.take()) {
            (Some(open), _) => Some((open.start_ms, end_of_stream)),
            (None, Some((held, end))) => Some((held.start_ms, end * self.frame_ms)),
            (None, None) => None,
        };
        if let Some((start, end)) = last {
            out.push(Segment { start_ms: start, end_ms: (end + self.pad_ms).min(end_of_stream) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(segmenter: &mut Segmenter, speech: &str) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for (i, c) in speech.chars().enumerate() {
            segmenter.frame(i as u64, c != '.', if c == 'q' { 0.1 } else { 0.9 }, &mut out);
        }
        segmenter.finish(speech.len() as u64, &mut out);
        out.iter().map(|s| (s.start_ms, s.end_ms)).collect()
    }

    #[test]
    fn unpadded_segments_are_the_runs() {
        assert_eq!(run(&mut Segmenter::new(10, 0, 0, None), "..xx..x"), [(20, 40), (60, 70)]);
    }

    #[test]
    fn short_silences_are_bridged() {
        assert_eq!(run(&mut Segmenter::new(10, 30, 0, None), "xx..xx...x"), [(0, 60), (90, 100)]);
    }

    #[test]
    fn padding_grows_segments_and_splits_gaps_they_would_overlap() {
        // pad 20 ms: far runs grow by 20 ms each side; a 30 ms gap is split in its middle
        assert_eq!(run(&mut Segmenter::new(10, 0, 20, None), ".....xx.....xx...xx"), [(30, 90), (100, 155), (155, 190)]);
    }

    #[test]
    fn long_segments_split_at_their_quietest_frame() {
        assert_eq!(run(&mut Segmenter::new(10, 0, 0, Some(60)), "xxxxqxxx"), [(0, 40), (40, 80)]);
    }
}
