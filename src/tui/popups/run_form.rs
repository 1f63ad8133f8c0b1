//! The form that starts a run: one line per setting, checked here for what needs no file system;
//! the effects runner checks the files and answers.

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui_textarea::{CursorMove, TextArea};

use super::Popup;
use crate::adaptation::{RunConfig, RunKind};
use crate::tui::action::Effect;
use crate::tui::keymap::{self, Cmd, Layer};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, centered};

/// One field of the run form.
pub struct FormField {
    /// The [`parse_run_fields`] key (`dataset`, `epochs`, …).
    pub key: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub editor: TextArea<'static>,
}

impl FormField {
    pub fn value(&self) -> String {
        self.editor.lines().join(" ").trim().to_string()
    }
}

/// The start-a-run form. A field the run cannot use keeps the form open with the reason and the
/// cursor on that field.
pub struct RunForm {
    pub fields: Vec<FormField>,
    pub focus: usize,
    pub error: Option<String>,
    /// Submitted; waiting for the runner to check the files.
    pub checking: bool,
}

/// The run form, filled with `c`.
pub fn run_form(c: &RunConfig) -> RunForm {
    let approve = c.approve.to_string();
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let field = |key, label, hint, value: String| {
        let mut editor = TextArea::new(vec![value]);
        editor.move_cursor(CursorMove::End);
        FormField {
            key,
            label,
            hint,
            editor,
        }
    };
    RunForm {
        fields: vec![
            field(
                "playbook",
                "playbook",
                "learns into this playbook (created if new)",
                c.playbook.clone(),
            ),
            field(
                "mode",
                "mode",
                "offline (epochs) | online (windows of batch size: answer, then learn)",
                c.kind.to_string(),
            ),
            field(
                "dataset",
                "dataset",
                "JSONL: {context, target} or {question, context, ground_truth}",
                c.dataset.display().to_string(),
            ),
            field("val", "validation", "optional JSONL", path(&c.val)),
            field("test", "test", "optional JSONL", path(&c.test)),
            field(
                "env",
                "environment",
                "exact | numeric | contains | regex:PATTERN | json | cmd:COMMAND",
                c.env.to_string(),
            ),
            field(
                "epochs",
                "epochs",
                "passes over the dataset",
                c.epochs.to_string(),
            ),
            field(
                "batch",
                "batch size",
                "samples per curator call (1 = the paper)",
                c.batch_size.to_string(),
            ),
            field(
                "concurrency",
                "concurrency",
                "model calls at once within a batch",
                c.concurrency.to_string(),
            ),
            field(
                "approve",
                "approve",
                "wait (pause for decisions) | queue (go on) | auto (apply all) | gate:POINTS (trial, then apply)",
                approve.to_string(),
            ),
            field(
                "max_cost",
                "max cost $",
                "stop before the run's model calls would cost more (empty: no limit)",
                c.max_cost.map(|m| m.to_string()).unwrap_or_default(),
            ),
        ],
        focus: 2,
        error: None,
        checking: false,
    }
}

pub(super) fn key(
    state: &mut State,
    mut form: RunForm,
    cmd: Option<Cmd>,
    key: KeyEvent,
) -> Vec<Effect> {
    let n = form.fields.len();
    let mut effects = Vec::new();
    match cmd {
        Some(Cmd::Close) => return Vec::new(),
        Some(Cmd::NextField) => form.focus = (form.focus + 1) % n,
        Some(Cmd::PrevField) => form.focus = (form.focus + n - 1) % n,
        Some(Cmd::ClearLine) => form.fields[form.focus].editor = TextArea::default(),
        Some(Cmd::Submit) if !form.checking => {
            let values: Vec<(&'static str, String)> =
                form.fields.iter().map(|f| (f.key, f.value())).collect();
            match parse_run_fields(&state.default_run, &values) {
                Ok(config) => {
                    form.error = None;
                    form.checking = true;
                    effects.push(Effect::StartRun(Box::new(config)));
                }
                Err((field, message)) => refuse(&mut form, field, message),
            }
        }
        Some(_) => {}
        None => {
            form.error = None;
            form.fields[form.focus].editor.input(key);
        }
    }
    state.popup = Some(Popup::RunForm(form));
    effects
}

/// Shows why the form cannot start a run, with the cursor on the field at fault.
pub fn refuse(form: &mut RunForm, field: Option<&'static str>, message: String) {
    if let Some(i) = form.fields.iter().position(|f| Some(f.key) == field) {
        form.focus = i;
    }
    form.error = Some(message);
    form.checking = false;
}

/// Builds a run config from form fields (`key`, value); an empty value keeps the default (or, for
/// `val` and `test`, means none). An error names its field. Whether the files exist is checked
/// where the run starts.
pub fn parse_run_fields(
    defaults: &RunConfig,
    fields: &[(&'static str, String)],
) -> Result<RunConfig, (Option<&'static str>, String)> {
    let mut c = defaults.clone();
    for (k, v) in fields {
        let (k, v) = (*k, v.trim());
        let err = |m: String| (Some(k), m);
        let num = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| err(format!("{k}: '{v}' is not a whole number above 0")))
        };
        match k {
            "val" if v.is_empty() => c.val = None,
            "max_cost" if v.is_empty() => c.max_cost = None,
            "test" if v.is_empty() => c.test = None,
            _ if v.is_empty() => {}
            "dataset" => c.dataset = v.into(),
            "val" => c.val = Some(v.into()),
            "test" => c.test = Some(v.into()),
            "env" => c.env = v.parse().map_err(|e| err(format!("environment: {e}")))?,
            "epochs" => c.epochs = num(v)? as u32,
            "batch" => c.batch_size = num(v)? as usize,
            "concurrency" => c.concurrency = num(v)? as usize,
            "approve" => c.approve = v.parse().map_err(err)?,
            "max_cost" => {
                c.max_cost = Some(
                    v.trim_start_matches('$')
                        .parse::<f64>()
                        .ok()
                        .filter(|m| m.is_finite() && *m >= 0.0)
                        .ok_or_else(|| {
                            err(format!("max cost: '{v}' is not a number of US dollars"))
                        })?,
                )
            }
            "playbook" => c.playbook = v.into(),
            "mode" => {
                c.kind = RunKind::parse(&v.to_ascii_lowercase())
                    .ok_or_else(|| err(format!("mode: '{v}' is not offline or online")))?
            }
            other => return Err((None, format!("unknown field '{other}'"))),
        }
    }
    if c.dataset.as_os_str().is_empty() {
        return Err((Some("dataset"), "give a dataset file".into()));
    }
    Ok(c)
}

pub(super) fn render(form: &RunForm, frame: &mut Frame, theme: &Theme) {
    let height = form.fields.len() as u16 + 6;
    let r = centered(frame.area(), 78, height);
    frame.render_widget(Clear, r);
    let outer = block(
        format!("Start a run · {}", keymap::hint_line(&[Layer::RunForm])),
        true,
        theme,
    );
    let inner = outer.inner(r);
    frame.render_widget(outer, r);
    let rows = Layout::vertical(
        std::iter::repeat_n(Constraint::Length(1), form.fields.len()).chain([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(1),
        ]),
    )
    .split(inner);
    for (i, f) in form.fields.iter().enumerate() {
        let [label, value] =
            Layout::horizontal([Constraint::Length(15), Constraint::Min(1)]).areas(rows[i]);
        let focused = i == form.focus;
        let style = if focused {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            theme.dim()
        };
        frame.render_widget(
            Paragraph::new(format!("{}{}", if focused { "▸ " } else { "  " }, f.label))
                .style(style),
            label,
        );
        let mut e = f.editor.clone();
        if !focused {
            e.set_cursor_style(Style::default());
        }
        e.set_cursor_line_style(Style::default());
        frame.render_widget(&e, value);
    }
    let n = form.fields.len();
    let hint = if form.checking {
        "checking the files…"
    } else {
        form.fields[form.focus].hint
    };
    frame.render_widget(
        Paragraph::new(Span::styled(hint.to_string(), theme.dim())),
        rows[n + 1],
    );
    if let Some(e) = &form.error {
        frame.render_widget(
            Paragraph::new(Span::styled(e.clone(), theme.removed())).wrap(Wrap { trim: true }),
            rows[n + 2],
        );
    }
}
