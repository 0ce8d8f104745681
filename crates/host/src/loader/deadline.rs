//! A load's deadline: the budget a load has, and what it has inserted so far, shared
//! with the watchdog thread. The loader checks the budget before each insertion and
//! while it waits for a module someone else is loading; an insertion the kernel does
//! not return from cannot be checked, so when the budget runs out during one the
//! watchdog stops the load and rolls back what it inserted before that (the loader is
//! kept from going on: its insertion, should it ever return, is not recorded).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{remove_newest_first, roll_back, LoadError};
use crate::kernel::ModuleSyscalls;

/// Where a load was when its budget ran out, for the error.
pub const BEFORE_INSERTING: &str = "before inserting";
pub const WAITING_FOR: &str = "while another process was still loading";
pub const WHILE_INSERTING: &str = "while the kernel was still inserting";

/// The budget of one load, from its creation.
pub struct Deadline {
    at: Instant,
    budget: Duration,
    /// How long past the budget the watchdog lets an insertion in flight return (a
    /// slow init, not a stuck one) before it takes the load over.
    grace: Duration,
    progress: Mutex<Progress>,
    changed: Condvar,
}

/// What the loader and the watchdog share.
#[derive(Debug, Default)]
pub struct Progress {
    /// Inserted by this load, in order.
    inserted: Vec<String>,
    /// The insertion the loader is in, if any.
    inserting: Option<String>,
    /// The watchdog stopped the load and rolled it back.
    stopped: bool,
    /// The work is over (loaded, failed, or never loaded anything).
    finished: bool,
}

/// What the watchdog found when it woke.
pub enum Watch<'a> {
    /// The work ended within the budget.
    Finished,
    /// The budget ran out between insertions: the loader stops at its next check.
    Passed,
    /// The budget ran out during an insertion: the load was stopped and rolled back
    /// (the error says what was removed). The guard keeps the loader from going on
    /// until it is dropped; the hook exits holding it.
    TakenOver(LoadError, MutexGuard<'a, Progress>),
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
            grace: Duration::ZERO,
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
        }
    }

    /// An insertion still in flight when the budget runs out gets `grace` to return:
    /// then the loader stops at its next check and removes it with the rest. Only one
    /// that outlasts the grace is taken over, and left behind if it ever completes.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// When it runs out.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Time left, zero once it ran out.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        // A panic elsewhere leaves the list as it was: still the one to roll back.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn over(&self, module: &str, when: &'static str) -> LoadError {
        LoadError::Deadline {
            module: module.to_string(),
            budget: self.budget,
            when,
        }
    }

    /// Fails when the budget ran out, with `when` saying where the load was.
    pub(super) fn check(&self, module: &str, when: &'static str) -> Result<(), LoadError> {
        if self.remaining().is_zero() {
            return Err(self.over(module, when));
        }
        Ok(())
    }

    /// Before an insertion: fails when the budget ran out, else marks it in flight.
    pub(super) fn enter(&self, module: &str) -> Result<(), LoadError> {
        let mut p = self.lock();
        if p.stopped || self.remaining().is_zero() {
            return Err(self.over(module, BEFORE_INSERTING));
        }
        p.inserting = Some(module.to_string());
        Ok(())
    }

    /// After an insertion (`inserted`: it went in). When the watchdog stopped the load
    /// meanwhile, a module that went in is removed again here and the load ends with
    /// [`LoadError::TakenOver`]: the watchdog already rolled back the rest.
    pub(super) fn leave(
        &self,
        module: &str,
        inserted: bool,
        syscalls: &dyn ModuleSyscalls,
    ) -> Result<(), LoadError> {
        let mut p = self.lock();
        p.inserting = None;
        if p.stopped {
            let left = if inserted {
                remove_newest_first(syscalls, &[module.to_string()]).1
            } else {
                Vec::new()
            };
            return Err(LoadError::TakenOver {
                module: module.to_string(),
                left,
            });
        }
        if inserted {
            p.inserted.push(module.to_string());
        }
        self.changed.notify_all();
        Ok(())
    }

    /// The work is over: the watchdog has nothing to take over.
    pub fn finish(&self) {
        self.lock().finished = true;
        self.changed.notify_all();
    }

    /// The watchdog's side: waits for the end of the work or of the budget. When the
    /// budget runs out during an insertion that does not return within the grace,
    /// stops the load and rolls back what it inserted, newest first.
    pub fn watch(&self, syscalls: &dyn ModuleSyscalls) -> Watch<'_> {
        let (p, finished) = self.wait_while(self.lock(), self.at, |_| true);
        if finished {
            return Watch::Finished;
        }
        // An insertion in flight: give it the grace to return.
        let (mut p, finished) = self.wait_while(p, self.at + self.grace, |p| p.inserting.is_some());
        if finished {
            return Watch::Finished;
        }
        let Some(module) = p.inserting.clone() else {
            return Watch::Passed;
        };
        p.stopped = true;
        let inserted = std::mem::take(&mut p.inserted);
        let error = roll_back(syscalls, self.over(&module, WHILE_INSERTING), &inserted);
        Watch::TakenOver(error, p)
    }

    /// Waits until `until` or the end of the work; `true` when the work ended.
    pub fn wait_end(&self, until: Instant) -> bool {
        self.wait_while(self.lock(), until, |_| true).1
    }

    /// Waits while `busy` holds, until `until` or the end of the work; `true` with the
    /// guard when the work ended.
    fn wait_while<'a>(
        &'a self,
        mut p: MutexGuard<'a, Progress>,
        until: Instant,
        busy: impl Fn(&Progress) -> bool,
    ) -> (MutexGuard<'a, Progress>, bool) {
        loop {
            if p.finished {
                return (p, true);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !busy(&p) {
                return (p, false);
            }
            p = self
                .changed
                .wait_timeout(p, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}
