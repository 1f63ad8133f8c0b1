//! The one key table. Each layer (global, a pane, a popup) maps keys to commands; `update` matches
//! commands, never raw keys, and the footer, the `?` help and the popup titles are all drawn from
//! the hints below, whose key labels are read from the same bindings, so a key and what it is said
//! to do cannot drift apart.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Every pane, when no popup is open.
    Global,
    /// Both halves of the Playbook pane.
    Playbook,
    Sections,
    Bullets,
    Run,
    Queue,
    Revisions,
    Help,
    Confirm,
    /// A one-line text input (a filter, a reason, a name).
    Input,
    /// A text input that takes line breaks (bullet content).
    Text,
    /// The JSON editor of a queued op.
    EditOp,
    RunForm,
    /// A list to pick one item from.
    Pick,
}

impl Layer {
    pub const ALL: [Layer; 14] = [
        Layer::Global,
        Layer::Playbook,
        Layer::Sections,
        Layer::Bullets,
        Layer::Run,
        Layer::Queue,
        Layer::Revisions,
        Layer::Help,
        Layer::Confirm,
        Layer::Input,
        Layer::Text,
        Layer::EditOp,
        Layer::RunForm,
        Layer::Pick,
    ];

    /// The name the help screen gives it.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Global => "everywhere",
            Layer::Playbook => "playbook",
            Layer::Sections => "sections",
            Layer::Bullets => "bullets",
            Layer::Run => "run",
            Layer::Queue => "queue",
            Layer::Revisions => "revisions",
            Layer::Help => "help",
            Layer::Confirm => "confirm",
            Layer::Input => "input",
            Layer::Text => "bullet text",
            Layer::EditOp => "op editor",
            Layer::RunForm => "run form",
            Layer::Pick => "pick list",
        }
    }
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    // everywhere
    Help,
    Quit,
    NextPane,
    PrevPane,
    ShowPlaybook,
    ShowRun,
    ShowQueue,
    ShowRevisions,
    SwitchPlaybook,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    /// Leave the view of a past revision, or clear the filter.
    Back,
    // the playbook
    ToSections,
    ToBullets,
    Filter,
    Sort,
    Details,
    AddBullet,
    AddSection,
    EditBullet,
    MoveBullet,
    RemoveBullet,
    CopyBullet,
    RenameSection,
    SectionDown,
    SectionUp,
    RemoveSection,
    // the run
    StartRun,
    ResumeRun,
    AllRuns,
    PauseResume,
    Step,
    ToBatchEnd,
    ToEpochEnd,
    CancelRun,
    // the queue
    Approve,
    Reject,
    EditOp,
    Skip,
    ApproveAll,
    RejectAll,
    Undo,
    NextBatch,
    PrevBatch,
    RenamePlaybook,
    CopyPlaybook,
    DeletePlaybook,
    ToOps,
    ToBatches,
    /// Try the proposal (or the op in view) on samples before deciding.
    Trial,
    /// The selected bullet's leave-one-out impact on samples of the playbook's last run.
    Impact,
    // revisions
    Diff,
    Compare,
    CompareNow,
    Revert,
    ViewAt,
    // popups
    Close,
    Confirm,
    Submit,
    NewLine,
    ClearLine,
    Save,
    NextField,
    PrevField,
    Pick,
}

/// A key as bound: a code and the Control / Alt modifiers (Shift is part of the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::NONE,
    }
}

const fn code(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::CONTROL,
    }
}

const fn alt(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::ALT,
    }
}

impl Key {
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let relevant = KeyModifiers::CONTROL | KeyModifiers::ALT;
        self.code == event.code && self.mods == (event.modifiers & relevant)
    }

    /// How the key is written in hints: `j`, `Enter`, `Ctrl-s`, `space`.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{base}")
        } else if self.mods.contains(KeyModifiers::ALT) {
            format!("Alt-{base}")
        } else {
            base
        }
    }
}

pub struct Binding {
    pub layer: Layer,
    pub keys: &'static [Key],
    pub cmd: Cmd,
}

const fn bind(layer: Layer, keys: &'static [Key], cmd: Cmd) -> Binding {
    Binding { layer, keys, cmd }
}

use KeyCode::{BackTab, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up};
use Layer as L;

/// Every key of the workbench. Order matters only within a layer: the first binding of a command
/// names it in hints.
pub const BINDINGS: &[Binding] = &[
    bind(L::Global, &[ch('?')], Cmd::Help),
    bind(L::Global, &[ch('q'), ctrl('c')], Cmd::Quit),
    bind(L::Global, &[code(Tab)], Cmd::NextPane),
    bind(L::Global, &[code(BackTab)], Cmd::PrevPane),
    bind(L::Global, &[ch('1')], Cmd::ShowPlaybook),
    bind(L::Global, &[ch('2')], Cmd::ShowRun),
    bind(L::Global, &[ch('3')], Cmd::ShowQueue),
    bind(L::Global, &[ch('4')], Cmd::ShowRevisions),
    bind(L::Global, &[ch('P')], Cmd::SwitchPlaybook),
    bind(L::Global, &[ch('j'), code(Down)], Cmd::Down),
    bind(L::Global, &[ch('k'), code(Up)], Cmd::Up),
    bind(L::Global, &[code(PageDown)], Cmd::PageDown),
    bind(L::Global, &[code(PageUp)], Cmd::PageUp),
    bind(L::Global, &[ch('g'), code(Home)], Cmd::Top),
    bind(L::Global, &[ch('G'), code(End)], Cmd::Bottom),
    bind(L::Global, &[code(Esc)], Cmd::Back),
    bind(L::Sections, &[ch('l'), code(Right)], Cmd::ToBullets),
    bind(L::Sections, &[ch('e')], Cmd::RenameSection),
    bind(L::Sections, &[ch('J')], Cmd::SectionDown),
    bind(L::Sections, &[ch('K')], Cmd::SectionUp),
    bind(L::Sections, &[ch('d')], Cmd::RemoveSection),
    bind(L::Bullets, &[ch('h'), code(Left)], Cmd::ToSections),
    bind(L::Bullets, &[ch('e')], Cmd::EditBullet),
    bind(L::Bullets, &[ch('m')], Cmd::MoveBullet),
    bind(L::Bullets, &[ch('d')], Cmd::RemoveBullet),
    bind(L::Bullets, &[ch('c')], Cmd::CopyBullet),
    bind(L::Playbook, &[ch('/')], Cmd::Filter),
    bind(L::Playbook, &[ch('o')], Cmd::Sort),
    bind(L::Playbook, &[code(Enter)], Cmd::Details),
    bind(L::Playbook, &[ch('a')], Cmd::AddBullet),
    bind(L::Playbook, &[ch('S')], Cmd::AddSection),
    bind(L::Playbook, &[ch('u')], Cmd::Undo),
    bind(L::Playbook, &[ch('I')], Cmd::Impact),
    bind(L::Run, &[ch('r')], Cmd::StartRun),
    bind(L::Run, &[ch('R')], Cmd::ResumeRun),
    bind(L::Run, &[ch('L')], Cmd::AllRuns),
    bind(L::Run, &[ch('p')], Cmd::PauseResume),
    bind(L::Run, &[ch(' ')], Cmd::Step),
    bind(L::Run, &[ch('b')], Cmd::ToBatchEnd),
    bind(L::Run, &[ch('E')], Cmd::ToEpochEnd),
    bind(L::Run, &[ch('x')], Cmd::CancelRun),
    bind(L::Queue, &[ch('y')], Cmd::Approve),
    bind(L::Queue, &[ch('n')], Cmd::Reject),
    bind(L::Queue, &[ch('e')], Cmd::EditOp),
    bind(L::Queue, &[ch('s')], Cmd::Skip),
    bind(L::Queue, &[ch('A')], Cmd::ApproveAll),
    bind(L::Queue, &[ch('R')], Cmd::RejectAll),
    bind(L::Queue, &[ch('u')], Cmd::Undo),
    bind(L::Queue, &[ch('t')], Cmd::Trial),
    bind(L::Queue, &[ch(']')], Cmd::NextBatch),
    bind(L::Queue, &[ch('[')], Cmd::PrevBatch),
    bind(L::Queue, &[code(Enter), ch('l'), code(Right)], Cmd::ToOps),
    bind(L::Queue, &[ch('h'), code(Left)], Cmd::ToBatches),
    bind(L::Revisions, &[code(Enter)], Cmd::Diff),
    bind(L::Revisions, &[ch('r')], Cmd::Revert),
    bind(L::Revisions, &[ch('v')], Cmd::ViewAt),
    bind(L::Revisions, &[ch('c')], Cmd::Compare),
    bind(L::Revisions, &[ch('w')], Cmd::CompareNow),
    bind(L::Help, &[ch('j'), code(Down)], Cmd::Down),
    bind(L::Help, &[ch('k'), code(Up)], Cmd::Up),
    bind(L::Help, &[code(PageDown), ch(' ')], Cmd::PageDown),
    bind(L::Help, &[code(PageUp)], Cmd::PageUp),
    bind(L::Help, &[ch('g'), code(Home)], Cmd::Top),
    bind(L::Help, &[ch('G'), code(End)], Cmd::Bottom),
    bind(
        L::Help,
        &[code(Esc), ch('?'), ch('q'), code(Enter)],
        Cmd::Close,
    ),
    bind(L::Confirm, &[ch('y'), code(Enter)], Cmd::Confirm),
    bind(L::Confirm, &[ch('n'), code(Esc)], Cmd::Close),
    bind(L::Input, &[code(Enter)], Cmd::Submit),
    bind(L::Input, &[ctrl('u')], Cmd::ClearLine),
    bind(L::Input, &[code(Esc)], Cmd::Close),
    bind(L::Text, &[code(Enter)], Cmd::Submit),
    bind(L::Text, &[alt(Enter), ctrl('j')], Cmd::NewLine),
    bind(L::Text, &[ctrl('u')], Cmd::ClearLine),
    bind(L::Text, &[code(Esc)], Cmd::Close),
    bind(L::EditOp, &[ctrl('s')], Cmd::Save),
    bind(L::EditOp, &[code(Esc)], Cmd::Close),
    bind(L::RunForm, &[code(Tab), code(Down)], Cmd::NextField),
    bind(L::RunForm, &[code(BackTab), code(Up)], Cmd::PrevField),
    bind(L::RunForm, &[ctrl('u')], Cmd::ClearLine),
    bind(L::RunForm, &[code(Enter)], Cmd::Submit),
    bind(L::RunForm, &[code(Esc)], Cmd::Close),
    bind(L::Pick, &[ch('j'), code(Down)], Cmd::Down),
    bind(L::Pick, &[ch('k'), code(Up)], Cmd::Up),
    bind(L::Pick, &[ch('g'), code(Home)], Cmd::Top),
    bind(L::Pick, &[ch('G'), code(End)], Cmd::Bottom),
    bind(L::Pick, &[code(Enter)], Cmd::Pick),
    bind(L::Pick, &[code(Esc)], Cmd::Close),
    bind(L::Pick, &[ch('e')], Cmd::RenamePlaybook),
    bind(L::Pick, &[ch('c')], Cmd::CopyPlaybook),
    bind(L::Pick, &[ch('d')], Cmd::DeletePlaybook),
];

/// How commands are described: one line of the help and one item of a footer or title each,
/// `keys what`, the keys read from [`BINDINGS`].
pub struct Hint {
    pub layer: Layer,
    pub cmds: &'static [Cmd],
    pub what: &'static str,
}

const fn hint(layer: Layer, cmds: &'static [Cmd], what: &'static str) -> Hint {
    Hint { layer, cmds, what }
}

pub const HINTS: &[Hint] = &[
    hint(L::Global, &[Cmd::Help], "help"),
    hint(L::Global, &[Cmd::Quit], "quit"),
    hint(
        L::Global,
        &[Cmd::NextPane, Cmd::PrevPane],
        "next/previous pane",
    ),
    hint(
        L::Global,
        &[
            Cmd::ShowPlaybook,
            Cmd::ShowRun,
            Cmd::ShowQueue,
            Cmd::ShowRevisions,
        ],
        "playbook/run/queue/revisions",
    ),
    hint(L::Global, &[Cmd::SwitchPlaybook], "switch playbook"),
    hint(L::Global, &[Cmd::Down, Cmd::Up], "move"),
    hint(L::Global, &[Cmd::PageDown, Cmd::PageUp], "page"),
    hint(L::Global, &[Cmd::Top, Cmd::Bottom], "top/bottom"),
    hint(L::Global, &[Cmd::Back], "back / clear filter"),
    hint(L::Sections, &[Cmd::RenameSection], "rename section"),
    hint(
        L::Sections,
        &[Cmd::SectionDown, Cmd::SectionUp],
        "move section",
    ),
    hint(L::Sections, &[Cmd::RemoveSection], "remove section"),
    hint(L::Sections, &[Cmd::ToBullets], "to bullets"),
    hint(L::Bullets, &[Cmd::EditBullet], "edit"),
    hint(L::Bullets, &[Cmd::MoveBullet], "move to section"),
    hint(L::Bullets, &[Cmd::RemoveBullet], "remove"),
    hint(L::Bullets, &[Cmd::CopyBullet], "copy"),
    hint(L::Bullets, &[Cmd::ToSections], "to sections"),
    hint(L::Playbook, &[Cmd::Filter], "filter"),
    hint(L::Playbook, &[Cmd::Sort], "sort"),
    hint(L::Playbook, &[Cmd::Details], "details"),
    hint(L::Playbook, &[Cmd::AddBullet], "add bullet"),
    hint(L::Playbook, &[Cmd::AddSection], "add section"),
    hint(L::Playbook, &[Cmd::Undo], "undo last hand edit"),
    hint(L::Playbook, &[Cmd::Impact], "bullet impact"),
    hint(L::Run, &[Cmd::StartRun], "start run"),
    hint(L::Run, &[Cmd::ResumeRun], "resume run"),
    hint(L::Run, &[Cmd::AllRuns], "all runs"),
    hint(L::Run, &[Cmd::PauseResume], "pause/resume"),
    hint(L::Run, &[Cmd::Step], "step sample"),
    hint(L::Run, &[Cmd::ToBatchEnd], "to batch end"),
    hint(L::Run, &[Cmd::ToEpochEnd], "to epoch end"),
    hint(L::Run, &[Cmd::CancelRun], "cancel run"),
    hint(L::Queue, &[Cmd::Approve], "approve"),
    hint(L::Queue, &[Cmd::Reject], "reject"),
    hint(L::Queue, &[Cmd::EditOp], "edit"),
    hint(L::Queue, &[Cmd::Skip], "skip"),
    hint(
        L::Queue,
        &[Cmd::ApproveAll, Cmd::RejectAll],
        "approve/reject all",
    ),
    hint(L::Queue, &[Cmd::ToOps], "into the batch's ops"),
    hint(L::Queue, &[Cmd::ToBatches], "back to the batches"),
    hint(L::Queue, &[Cmd::Undo], "undo"),
    hint(L::Queue, &[Cmd::Trial], "trial"),
    hint(
        L::Queue,
        &[Cmd::NextBatch, Cmd::PrevBatch],
        "next/prev batch",
    ),
    hint(L::Revisions, &[Cmd::Diff], "diff"),
    hint(L::Revisions, &[Cmd::Revert], "revert"),
    hint(L::Revisions, &[Cmd::ViewAt], "view playbook as of it"),
    hint(
        L::Revisions,
        &[Cmd::Compare],
        "mark, then compare with another",
    ),
    hint(
        L::Revisions,
        &[Cmd::CompareNow],
        "compare with the playbook now",
    ),
    hint(L::Help, &[Cmd::Close], "closes"),
    hint(L::Help, &[Cmd::Down, Cmd::Up], "scroll"),
    hint(L::Help, &[Cmd::PageDown, Cmd::PageUp], "page"),
    hint(L::Help, &[Cmd::Top, Cmd::Bottom], "top/bottom"),
    hint(L::Confirm, &[Cmd::Confirm], "confirm"),
    hint(L::Confirm, &[Cmd::Close], "cancel"),
    hint(L::Input, &[Cmd::Submit], "ok"),
    hint(L::Input, &[Cmd::Close], "cancel"),
    hint(L::Input, &[Cmd::ClearLine], "clear"),
    hint(L::Text, &[Cmd::Submit], "saves"),
    hint(L::Text, &[Cmd::Close], "cancel"),
    hint(L::Text, &[Cmd::NewLine], "new line"),
    hint(L::Text, &[Cmd::ClearLine], "clear"),
    hint(L::EditOp, &[Cmd::Save], "saves and approves"),
    hint(L::EditOp, &[Cmd::Close], "cancels"),
    hint(L::RunForm, &[Cmd::Submit], "start"),
    hint(L::RunForm, &[Cmd::Close], "cancel"),
    hint(L::RunForm, &[Cmd::NextField, Cmd::PrevField], "field"),
    hint(L::RunForm, &[Cmd::ClearLine], "clear"),
    hint(L::Pick, &[Cmd::Pick], "pick"),
    hint(L::Pick, &[Cmd::Close], "cancel"),
    hint(L::Pick, &[Cmd::Down, Cmd::Up], "move"),
    hint(L::Pick, &[Cmd::Top, Cmd::Bottom], "top/bottom"),
    hint(L::Pick, &[Cmd::RenamePlaybook], "rename (playbooks)"),
    hint(L::Pick, &[Cmd::CopyPlaybook], "copy (playbooks)"),
    hint(L::Pick, &[Cmd::DeletePlaybook], "delete (playbooks)"),
];

/// The command `event` asks for in `layers` (searched in order), if any.
pub fn command(layers: &[Layer], event: &KeyEvent) -> Option<Cmd> {
    layers.iter().find_map(|layer| {
        BINDINGS
            .iter()
            .filter(|b| b.layer == *layer)
            .find(|b| b.keys.iter().any(|k| k.matches(event)))
            .map(|b| b.cmd)
    })
}

/// The keys bound to `cmd` in `layer`.
fn keys_of(layer: Layer, cmd: Cmd) -> &'static [Key] {
    BINDINGS
        .iter()
        .find(|b| b.layer == layer && b.cmd == cmd)
        .map_or(&[], |b| b.keys)
}

impl Hint {
    /// The keys of the hint as shown: every key of a one-command hint (`q/Ctrl-c`), else the first
    /// key of each command (`j/k`), and `1-4` for a run of digits.
    pub fn keys(&self) -> String {
        let labels: Vec<String> = match self.cmds {
            [one] => keys_of(self.layer, *one).iter().map(Key::label).collect(),
            many => many
                .iter()
                .filter_map(|c| keys_of(self.layer, *c).first())
                .map(Key::label)
                .collect(),
        };
        let digits: Vec<u32> = labels
            .iter()
            .filter_map(|l| l.parse::<u32>().ok().filter(|_| l.len() == 1))
            .collect();
        if labels.len() > 2
            && digits.len() == labels.len()
            && digits.windows(2).all(|w| w[1] == w[0] + 1)
        {
            format!("{}-{}", digits[0], digits[digits.len() - 1])
        } else {
            labels.join("/")
        }
    }

    /// `keys what`, as the footer and titles show it.
    pub fn text(&self) -> String {
        format!("{} {}", self.keys(), self.what)
    }
}

/// The hints of `layers`, in order.
pub fn hints(layers: &[Layer]) -> impl Iterator<Item = &'static Hint> + '_ {
    layers
        .iter()
        .flat_map(|layer| HINTS.iter().filter(move |h| h.layer == *layer))
}

/// The hints of `layers` as one line: `a · b · c`.
pub fn hint_line(layers: &[Layer]) -> String {
    hints(layers)
        .map(Hint::text)
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The hints of `layers` that fit in `width` columns, in the table's order (the focused pane's
/// own first), skipping those that do not fit; the help hint always ends the line.
pub fn fitted_hint_line(layers: &[Layer], width: usize) -> String {
    let help = hints(&[Layer::Global])
        .find(|h| h.cmds.contains(&Cmd::Help))
        .map(Hint::text)
        .unwrap_or_else(|| "? help".into());
    let mut used = help.chars().count();
    let mut shown = Vec::new();
    for text in hints(layers).map(Hint::text).filter(|t| *t != help) {
        let cost = text.chars().count() + 3;
        if used + cost <= width {
            used += cost;
            shown.push(text);
        }
    }
    shown.push(help);
    shown.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_footer_fits_its_width_and_always_ends_with_help() {
        for width in [40, 80, 120, 200] {
            for layers in [
                &[Layer::Bullets, Layer::Playbook, Layer::Global][..],
                &[Layer::Queue, Layer::Global][..],
            ] {
                let line = fitted_hint_line(layers, width);
                assert!(line.chars().count() <= width, "{width}: {line}");
                assert!(line.ends_with("? help"), "{width}: {line}");
            }
        }
        // wide enough, nothing is left out
        let all = hint_line(&[Layer::Queue, Layer::Global]);
        assert_eq!(
            fitted_hint_line(&[Layer::Queue, Layer::Global], 1000).len(),
            all.len()
        );
    }

    #[test]
    fn every_binding_is_described_and_every_hint_is_bound() {
        for b in BINDINGS {
            assert!(
                HINTS
                    .iter()
                    .any(|h| h.layer == b.layer && h.cmds.contains(&b.cmd)),
                "{:?} in {:?} has no hint",
                b.cmd,
                b.layer
            );
        }
        for h in HINTS {
            for c in h.cmds {
                assert!(
                    !keys_of(h.layer, *c).is_empty(),
                    "the hint '{}' names {c:?}, which has no key in {:?}",
                    h.what,
                    h.layer
                );
            }
        }
    }

    #[test]
    fn no_key_means_two_things_in_one_layer() {
        for layer in Layer::ALL {
            let keys: Vec<(&Key, Cmd)> = BINDINGS
                .iter()
                .filter(|b| b.layer == layer)
                .flat_map(|b| b.keys.iter().map(move |k| (k, b.cmd)))
                .collect();
            for (i, (k, c)) in keys.iter().enumerate() {
                for (k2, c2) in &keys[i + 1..] {
                    assert!(k != k2, "{} means {c:?} and {c2:?} in {layer:?}", k.label());
                }
            }
        }
    }

    #[test]
    fn labels_read_from_the_bindings() {
        let line = hint_line(&[Layer::Global]);
        assert!(
            line.starts_with(
                "? help · q/Ctrl-c quit · Tab/Shift-Tab next/previous pane · 1-4 playbook/run/queue/revisions"
            ),
            "{line}"
        );
        assert_eq!(
            hint_line(&[Layer::EditOp]),
            "Ctrl-s saves and approves · Esc cancels"
        );
        let shifted = KeyEvent::new(KeyCode::Char('J'), KeyModifiers::SHIFT);
        assert_eq!(
            command(&[Layer::Sections], &shifted),
            Some(Cmd::SectionDown)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(command(&[Layer::Global], &ctrl_c), Some(Cmd::Quit));
        let plain_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(command(&[Layer::Global], &plain_c), None);
    }
}
