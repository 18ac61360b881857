//! `hostctl deploy --timings`: how long each step took, one line per step on stderr, so a
//! slow deploy splits into the client's part (listing, hashing) and the server's (the
//! file list, the uploads, the publish) without a profiler.

use std::time::Instant;

/// Step durations, measured from one step's end to the next; printing only when on.
#[derive(Debug)]
pub struct Timings {
    on: bool,
    started: Instant,
    last: Instant,
}

impl Timings {
    /// Starts the clock; prints nothing unless `on`.
    pub fn new(on: bool) -> Timings {
        let now = Instant::now();
        Timings {
            on,
            started: now,
            last: now,
        }
    }

    /// Ends step `name` (one word): prints the seconds since the previous step ended and
    /// `detail`, which is only built when printing.
    pub fn step(&mut self, name: &str, detail: impl FnOnce() -> String) {
        let now = Instant::now();
        if self.on {
            let secs = now.duration_since(self.last).as_secs_f64();
            eprintln!("{}", line(name, secs, &detail()));
        }
        self.last = now;
    }

    /// [`Timings::step`] for a step that ended at `at` (a step that overlapped another and
    /// ended before it); `at` must not be before the previous step's end.
    pub fn step_at(&mut self, name: &str, at: Instant, detail: impl FnOnce() -> String) {
        if self.on {
            let secs = at.saturating_duration_since(self.last).as_secs_f64();
            eprintln!("{}", line(name, secs, &detail()));
        }
        self.last = self.last.max(at);
    }

    /// Prints the time since the start.
    pub fn total(&self) {
        if self.on {
            eprintln!(
                "{}",
                line("total", self.started.elapsed().as_secs_f64(), "")
            );
        }
    }
}

/// `timing <step> <seconds> s  <detail>`: the shape `loadtest/bench` reads.
fn line(name: &str, secs: f64, detail: &str) -> String {
    format!("timing {name:<8} {secs:.3} s  {detail}")
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_line_names_the_step_its_seconds_and_detail() {
        assert_eq!(
            line("hash", 0.0421, "1 read, 10000 cached"),
            "timing hash     0.042 s  1 read, 10000 cached"
        );
        assert_eq!(line("total", 1.5, ""), "timing total    1.500 s");
    }
}
