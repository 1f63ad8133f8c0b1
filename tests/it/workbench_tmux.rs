//! Drives the real `ace` binary in tmux as a person would (tests/tmux/workbench.sh): start a run
//! against the bundled demo model, approve, undo, pause, step, quit, approve a headless run's batch
//! from a second workbench — then checks the database through the CLI.
use std::process::Command;

#[test]
fn the_workbench_driven_through_tmux() {
    let tmux = Command::new("tmux").arg("-V").output();
    assert!(
        tmux.is_ok_and(|o| o.status.success()),
        "this test drives the workbench in tmux, which is not installed: apt-get install -y tmux \
         (.ci/run installs it itself)"
    );
    let out = Command::new("bash")
        .arg("tests/tmux/workbench.sh")
        .arg(env!("CARGO_BIN_EXE_ace"))
        .output()
        .expect("bash runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the tmux drive failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}
