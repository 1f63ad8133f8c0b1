//! A text input: the filter, a rejection reason, a new bullet or section, a rename, an edit.
//! Bullet content takes line breaks; the other inputs are one line.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::{CursorMove, TextArea, WrapMode};

use super::Popup;
use crate::approval::Decision;
use crate::delta::{AddOp, DeltaOp, UpdateOp};
use crate::tui::action::{Effect, HandEdit, Manage};
use crate::tui::keymap::{self, Cmd, Layer};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, centered};

/// What a text input is for.
#[derive(Debug, Clone, PartialEq)]
pub enum InputFor {
    Filter,
    RejectReason {
        batch: i64,
        op: usize,
    },
    /// A new bullet in `section`; with no section, the name of a new section.
    AddBullet {
        section: String,
    },
    EditBullet {
        id: String,
    },
    RenameSection {
        section: String,
    },
    RenamePlaybook {
        name: String,
    },
    CopyPlaybook {
        name: String,
    },
}

impl InputFor {
    /// Bullet content may span lines (code snippets).
    pub fn multiline(&self) -> bool {
        match self {
            InputFor::EditBullet { .. } => true,
            InputFor::AddBullet { section } => !section.is_empty(),
            _ => false,
        }
    }
}

/// The keys of an input: line breaks only in bullet content.
pub(super) fn layers(purpose: &InputFor) -> &'static [Layer] {
    if purpose.multiline() {
        &[Layer::Text]
    } else {
        &[Layer::Input]
    }
}

/// A text editor that wraps long lines on screen (bullets run to hundreds of characters).
pub fn wrapping_editor(lines: Vec<String>) -> TextArea<'static> {
    let mut editor = TextArea::new(lines);
    editor.set_wrap_mode(WrapMode::WordOrGlyph);
    editor
}

/// An input popup holding `text`, the cursor at its end.
pub fn input(title: &str, purpose: InputFor, text: &str) -> Popup {
    let mut editor = wrapping_editor(text.split('\n').map(str::to_string).collect());
    editor.move_cursor(CursorMove::Bottom);
    editor.move_cursor(CursorMove::End);
    Popup::Input {
        purpose,
        title: title.to_string(),
        editor,
    }
}

/// Whether a key would put a line break into the text (the editor's own Enter handling).
fn breaks_line(key: &KeyEvent) -> bool {
    key.code == KeyCode::Enter
        || (key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('j' | 'm')))
}

pub(super) fn key(
    state: &mut State,
    purpose: InputFor,
    title: String,
    mut editor: TextArea<'static>,
    cmd: Option<Cmd>,
    key: KeyEvent,
) -> Vec<Effect> {
    match cmd {
        Some(Cmd::Close) => return Vec::new(),
        Some(Cmd::Submit) => {
            let joint = if purpose.multiline() { "\n" } else { " " };
            return submit(
                state,
                purpose,
                editor.lines().join(joint).trim().to_string(),
            );
        }
        Some(Cmd::NewLine) => editor.insert_newline(),
        // clears the text, as Ctrl-u does in a shell
        Some(Cmd::ClearLine) => editor = wrapping_editor(Vec::new()),
        _ if breaks_line(&key) => {}
        _ => {
            editor.input(key);
        }
    }
    if purpose == InputFor::Filter {
        state.filter = editor.lines().join(" ");
        state.bullet = 0;
        state.refilter();
    }
    state.popup = Some(Popup::Input {
        purpose,
        title,
        editor,
    });
    Vec::new()
}

fn submit(state: &mut State, purpose: InputFor, text: String) -> Vec<Effect> {
    let edit = |what, reason: String, ops| vec![Effect::Apply(HandEdit { what, reason, ops })];
    match purpose {
        InputFor::Filter => {
            state.filter = text;
            state.refilter();
            Vec::new()
        }
        InputFor::RejectReason { batch, op } => vec![Effect::Decide {
            batch,
            decisions: vec![(
                op,
                Decision::Reject {
                    reason: (!text.is_empty()).then_some(text),
                },
            )],
        }],
        _ if text.is_empty() => {
            state.message = "nothing entered".into();
            Vec::new()
        }
        InputFor::AddBullet { section } if section.is_empty() => edit(
            "section",
            format!("added section {text} by hand"),
            vec![DeltaOp::AddSection {
                section: text,
                slug: None,
            }],
        ),
        InputFor::RenamePlaybook { name } if name == text => {
            state.message = "the name is unchanged".into();
            Vec::new()
        }
        InputFor::RenamePlaybook { name } => vec![Effect::ManagePlaybook(Manage::Rename {
            name,
            new_name: text,
        })],
        InputFor::CopyPlaybook { name } => vec![Effect::ManagePlaybook(Manage::Copy {
            name,
            new_name: text,
        })],
        InputFor::RenameSection { section } if section == text => {
            state.message = "the name is unchanged".into();
            Vec::new()
        }
        InputFor::RenameSection { section } => {
            state.follow_section = Some(text.clone());
            edit(
                "section-rename",
                format!("renamed section {section} by hand"),
                vec![DeltaOp::RenameSection {
                    section,
                    new_name: text,
                }],
            )
        }
        InputFor::AddBullet { section } => edit(
            "add",
            "added by hand".into(),
            vec![DeltaOp::Add(AddOp::new(section, text))],
        ),
        InputFor::EditBullet { id } => edit(
            "edit",
            "edited by hand".into(),
            vec![DeltaOp::Update(UpdateOp {
                bullet_id: id,
                content: Some(text),
                section: None,
                metadata: None,
            })],
        ),
    }
}

pub(super) fn render(
    purpose: &InputFor,
    title: &str,
    editor: &TextArea<'static>,
    frame: &mut Frame,
    theme: &Theme,
) {
    let area = frame.area();
    // Grows with the text (wrapped), up to 10 rows, so a long bullet is seen whole.
    let width = area
        .width
        .saturating_sub(2)
        .min(76)
        .saturating_sub(2)
        .max(1) as usize;
    let wrapped: usize = editor
        .lines()
        .iter()
        .map(|l| (l.chars().count() + 1).div_ceil(width))
        .sum();
    let rows = match wrapped as u16 {
        0 | 1 => 1,
        n => n + 1, // words wrap earlier than characters would
    };
    let r = centered(area, 76, (rows + 2).min(12));
    frame.render_widget(ratatui::widgets::Clear, r);
    let mut e = editor.clone();
    e.set_block(block(
        format!("{title} · {}", keymap::hint_line(layers(purpose))),
        true,
        theme,
    ));
    frame.render_widget(&e, r);
}
