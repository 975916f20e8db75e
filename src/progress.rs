//! A progress line for long commands, on standard error when it is a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shows how far along the log a command is, with its rate and the time left, twice a
/// second at most. Shared by reference: it may be ticked from any task.
pub struct Progress {
    label: &'static str,
    on: bool,
    state: Mutex<State>,
}

struct State {
    first: Option<u64>,
    end: u64,
    started: Instant,
    shown: Option<Instant>,
}

impl Progress {
    pub fn new(label: &'static str, end: u64) -> Self {
        Self {
            label,
            on: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                first: None,
                end,
                started: Instant::now(),
                shown: None,
            }),
        }
    }

    /// `count` things done, up to log sequence `sequence`, of `end` (which may grow).
    pub fn tick(&self, sequence: u64, end: u64, count: u64) {
        if !self.on {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.end = state.end.max(end);
        let first = *state.first.get_or_insert(sequence);
        if state
            .shown
            .is_some_and(|shown| shown.elapsed() < Duration::from_millis(500))
        {
            return;
        }
        state.shown = Some(Instant::now());
        let rate = sequence.saturating_sub(first) as f64
            / state.started.elapsed().as_secs_f64().max(0.001);
        let left = state.end.saturating_sub(sequence) as f64 / rate.max(1.0);
        eprint!(
            "\r  {count} {} · sequence {sequence} of {} ({:.0}%) · {rate:.0}/s · about {left:.0} s left   ",
            self.label,
            state.end,
            100.0 * sequence as f64 / state.end.max(1) as f64
        );
        let _ = std::io::stderr().flush();
    }

    /// Shows where a read-model build stands.
    pub fn build(&self, at: natter_projections::build::Progress) {
        self.tick(at.through, at.target, at.applied);
    }

    /// Ends the line.
    pub fn done(&self) {
        if self.on {
            eprintln!();
        }
    }
}
