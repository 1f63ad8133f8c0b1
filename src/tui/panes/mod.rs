//! The panes: one file each, with what its commands do and how it is drawn. A new pane is one
//! file here, one [`crate::tui::state::Pane`] variant with its key layers, and one line in
//! `update::route` and `render::body`.

pub mod playbook;
pub mod queue;
pub mod revisions;
pub mod run;

/// `sel` moved by `delta` within `0..len`.
pub fn step(sel: usize, len: usize, delta: isize) -> usize {
    if len == 0 {
        return 0;
    }
    (sel as isize + delta).clamp(0, len as isize - 1) as usize
}
