#!/usr/bin/env bash
# Drives the real workbench in tmux as a person would: start a run against the bundled demo model,
# approve the curator's proposal, undo it (a revert), pause and step one sample, quit — then checks the
# database with the CLI. Polls the screen; no fixed sleeps. Usage: tests/tmux/workbench.sh [path/to/ace]
set -euo pipefail
ACE=${1:-target/debug/ace}
ACE=$(realpath "$ACE")
dir=$(mktemp -d)
db="$dir/ace.db"
session="ace-e2e"
# A private tmux server (its own socket, no user configuration, whatever $TMUX says), killed at the end.
# Sessions are never killed one by one: killing the last session makes the server exit while the next
# `new-session` may already be talking to it ("server exited unexpectedly", seen in CI under load).
unset TMUX
t() { tmux -S "$dir/tmux.sock" -f /dev/null "$@"; }
cleanup() { t kill-server 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

screen() { t capture-pane -p -t "$session"; }
wait_for() { # wait_for TEXT [SECONDS]
  local deadline=$((SECONDS + ${2:-30}))
  until screen | grep -qF -- "$1"; do
    if ((SECONDS > deadline)); then
      echo "FAIL: did not see '$1' on screen:" >&2; screen >&2; exit 1
    fi
    sleep 0.1
  done
}
keys() { t send-keys -t "$session" "$@"; }

t new-session -d -s "$session" -x 110 -y 32 "ACE_DB='$db' '$ACE' demo; echo WORKBENCH-EXITED; sleep 60"
wait_for "SCRIPTED DEMO"
wait_for "FORMULAS AND CALCULATIONS"

# start a run from the form with its defaults (the bundled sample dataset)
keys 2; wait_for "none yet (r starts one"
keys r; wait_for "Start a run"
keys Enter
wait_for "waiting for decisions on proposal #" 60

# review the proposal and approve it
keys 3; wait_for "Proposal #"
wait_for "LESSON"
keys y; wait_for "applied as revision" 30
applied=$(screen | grep -oE "applied as revision [0-9]+" | head -1 | grep -oE "[0-9]+$")

# undo it: a new revision that reverts the approved one
keys u; wait_for "revision $applied reverted by revision" 30

progress() { screen | grep -oE "epoch [0-9]+ · [0-9]+/" | head -1; }

# reject whatever the run proposes next, until it pauses with progress other than $1
settle() {
  local deadline=$((SECONDS + 60))
  until screen | grep -qF "paused" && [ "$(progress)" != "${1:-none}" ]; do
    ((SECONDS > deadline)) && { echo "FAIL: the run never paused" >&2; screen >&2; exit 1; }
    # the header counts waiting batches ("[3 Queue (1)]"): act on that, not on the run's status alone
    if screen | grep -qF "waiting for decisions" && screen | grep -qF "[3 Queue ("; then
      keys 3; wait_for "Proposal #"; keys n; wait_for "reason for rejecting"; keys Enter
      wait_for "nothing approved" 30; keys 2
    fi
    sleep 0.2
  done
}

# pause, then step exactly one sample: the run advances by one and pauses again
keys 2; keys p; settle
before=$(progress)
keys Space; settle "$before"
after=$(progress)
b=${before##* · }; a=${after##* · }
[ "$((${a%/} - ${b%/}))" = 1 ] || { echo "FAIL: one step moved the run from '$before' to '$after'" >&2; exit 1; }

# quit (a run is active: confirm)
keys q; wait_for "Quit anyway"
keys y; wait_for "WORKBENCH-EXITED" 30

# A headless run on the same database (as on a server) waits for approval; a workbench approves it,
# through the editor this time (e, then Ctrl-s approves the edited op).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ACE" mock-model --script assets/demo/script.json --port "$port" > "$dir/mock.log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do grep -q "not a real model" "$dir/mock.log" 2>/dev/null && break; sleep 0.1; done
ACE_DB="$db" ACE_BASE_URL="http://127.0.0.1:$port/v1" ACE_MODEL=scripted \
  "$ACE" train --playbook headless --dataset assets/sample/dataset.jsonl --env numeric --approve wait > "$dir/train.log" 2>&1 &
train=$!
session="ace-e2e-2" # a second session beside the first (whose shell is still in its sleep)
t new-session -d -s "$session" -x 110 -y 32 "ACE_DB='$db' '$ACE' workbench; echo WORKBENCH-EXITED; sleep 60"
wait_for "1 Playbook"
keys 3; wait_for "pending · 1 ops · run-2" 60
keys e; wait_for "Ctrl-s saves and approves"
keys C-s; wait_for "applied as revision" 30
keys q; wait_for "WORKBENCH-EXITED" 30
for _ in $(seq 200); do grep -q "queued batch .* applied as revision" "$dir/train.log" && break; sleep 0.1; done
grep -q "queued batch .* applied as revision" "$dir/train.log" || { echo "FAIL: the headless run did not see the approval" >&2; cat "$dir/train.log" >&2; exit 1; }
kill $train 2>/dev/null || true

# the database tells the same story
revisions=$("$ACE" --db "$db" revisions list --json)
echo "$revisions" | grep -q "\"reverts\": $applied" || { echo "FAIL: no revert of revision $applied: $revisions" >&2; exit 1; }
"$ACE" --db "$db" revisions show "$applied" | grep -q "behind it: queued batch" || { echo "FAIL: revision $applied has no provenance" >&2; exit 1; }
"$ACE" --db "$db" runs list | grep -q "run-1" || { echo "FAIL: the run is not recorded" >&2; exit 1; }
echo "1 passed, 0 failed: workbench driven through tmux"
