//! How a person steers a run: [`Controls`] send [`Control`]s, the loop's [`Gate`] turns them into
//! when it may go on. One channel in, one event stream out, per run.

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::{Control, Event, LoopError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Running,
    Paused,
    Step,
    ToBatchEnd,
    ToEpochEnd,
}

/// Turns controls into when the loop may go on.
pub(super) struct Gate {
    pub mode: Mode,
    pub controls: UnboundedReceiver<Control>,
    pub events: UnboundedSender<Event>,
    pub cancel: CancellationToken,
    /// False once every [`Controls`] is dropped: the run then goes on by itself.
    pub attached: bool,
}

impl Gate {
    pub fn new(
        controls: UnboundedReceiver<Control>,
        events: UnboundedSender<Event>,
        cancel: CancellationToken,
    ) -> Self {
        Gate {
            mode: Mode::Running,
            controls,
            events,
            cancel,
            attached: true,
        }
    }

    pub fn absorb(&mut self, c: Control) {
        self.mode = match c {
            Control::Pause => Mode::Paused,
            Control::Resume => Mode::Running,
            Control::Step => Mode::Step,
            Control::RunToBatchEnd => Mode::ToBatchEnd,
            Control::RunToEpochEnd => Mode::ToEpochEnd,
            Control::Cancel => {
                self.cancel.cancel();
                self.mode
            }
            Control::Wake => self.mode,
        };
    }

    fn drain(&mut self) {
        while let Ok(c) = self.controls.try_recv() {
            self.absorb(c);
        }
    }

    /// Returns when the loop may process more; errors when cancelled.
    pub async fn wait(&mut self) -> Result<(), LoopError> {
        self.drain();
        if self.mode == Mode::Paused {
            let _ = self.events.send(Event::Paused);
            while self.mode == Mode::Paused && self.attached {
                tokio::select! {
                    c = self.controls.recv() => match c {
                        Some(c) => self.absorb(c),
                        None => self.attached = false,
                    },
                    _ = self.cancel.cancelled() => return Err(LoopError::Cancelled),
                }
            }
            if !self.attached {
                self.mode = Mode::Running;
            }
            let _ = self.events.send(Event::Resumed);
        }
        if self.cancel.is_cancelled() {
            Err(LoopError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// How many of `left` samples to take before looking at the controls again.
    pub fn chunk(&self, left: usize) -> usize {
        if self.mode == Mode::Step { 1 } else { left }
    }

    /// A unit of work at `level` finished: pause if that is what the person asked for.
    pub fn finished(&mut self, level: Mode) {
        self.drain();
        if self.mode == level || (level == Mode::ToBatchEnd && self.mode == Mode::Step) {
            self.mode = Mode::Paused;
        }
    }

    /// Waits for the next control (or none, once detached); `None` when cancelled.
    pub async fn next(&mut self) -> Option<()> {
        tokio::select! {
            c = self.controls.recv(), if self.attached => {
                match c {
                    Some(c) => self.absorb(c),
                    None => self.attached = false,
                }
                Some(())
            }
            _ = self.cancel.cancelled() => None,
        }
    }
}

/// Sends controls to a run, in order. The loop reads them between samples; `Cancel` also fires the
/// run's cancellation token at once, so model calls in flight stop. When every clone is dropped the
/// loop goes on by itself (detached).
#[derive(Debug, Clone)]
pub struct Controls {
    pub(super) tx: UnboundedSender<Control>,
    pub(super) cancel: CancellationToken,
}

impl Controls {
    /// Fails only if the run has ended. A cancel always succeeds: the token fires at once, and the
    /// run may be gone before the control itself could be queued.
    pub fn send(
        &self,
        control: Control,
    ) -> Result<(), tokio::sync::mpsc::error::SendError<Control>> {
        if control == Control::Cancel {
            self.cancel.cancel();
            let _ = self.tx.send(control);
            return Ok(());
        }
        self.tx.send(control)
    }
}
