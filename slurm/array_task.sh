#!/usr/bin/env bash
# One array task of a `vendomini slurm submit` sweep: runs the shard on line SLURM_ARRAY_TASK_ID + 1 of the
# manifest. `vendomini slurm submit` writes the #SBATCH header, VENDOMINI_MANIFEST and VENDOMINI_PYTHON in
# front of this body.
#
# A node-served model (vllm/<id>, openai-api/vllm/<id>) gets its server started here, bound to 127.0.0.1 on
# a free port with a per-job key; the task waits for it to be healthy (failing early if it exits), points
# Inspect at it (VLLM_BASE_URL and VLLM_API_KEY serve both providers) and stops it on exit. hf/ models load
# in the shard process; API models run as they are. The shard runs with eval_set on its own log dir: a
# requeued or resubmitted task keeps every finished sample. Exits non-zero when the shard is incomplete.
#
# Environment: VENDOMINI_MANIFEST (the manifest), VENDOMINI_PYTHON (default python3), VENDOMINI_SERVE_COMMAND
# (default "vllm serve"; called as COMMAND MODEL --host H --port P --tensor-parallel-size N [--serve-args]),
# VENDOMINI_SERVER_TIMEOUT (seconds to wait for health, default 1800: a large model loads for minutes).
set -euo pipefail

: "${SLURM_ARRAY_TASK_ID:?not an array task: submit with vendomini slurm submit, or set SLURM_ARRAY_TASK_ID}"
: "${VENDOMINI_MANIFEST:?set VENDOMINI_MANIFEST to the sweep manifest}"
python=${VENDOMINI_PYTHON:-python3}
serve_command=${VENDOMINI_SERVE_COMMAND:-vllm serve}
server_timeout=${VENDOMINI_SERVER_TIMEOUT:-1800}

# Compute nodes: nothing downloads at run time (weights and tokenizers must already be in the HF cache), and
# the node-local server is reached directly, never through a proxy.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export NO_PROXY=127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY} no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy}

log() { echo "vendomini[$SLURM_ARRAY_TASK_ID]: $*" >&2; }

task=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$VENDOMINI_MANIFEST")
if [[ -z "$task" ]]; then
  log "no line $((SLURM_ARRAY_TASK_ID + 1)) in $VENDOMINI_MANIFEST"
  exit 2
fi
field() {
  printf '%s' "$task" | "$python" -c '
import json, shlex, sys
value = json.load(sys.stdin)[sys.argv[1]]
print(shlex.join(value) if isinstance(value, list) else json.dumps(value) if isinstance(value, dict) else value or "")
' "$1"
}
model=$(field model)
serve=$(field serve)
log "$model: $(field job | "$python" -c 'import json, sys; s = json.load(sys.stdin)["shard"]; print(s["log_dir"])')"

server_pid="" shard_pid=""
stop() {  # on every exit: the shard (when a signal cut it short), then the server with its workers
  if [[ -n "$shard_pid" ]] && kill -0 "$shard_pid" 2>/dev/null; then
    kill -TERM "$shard_pid" 2>/dev/null || true
    wait "$shard_pid" 2>/dev/null || true
  fi
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    log "stopping the model server (pid $server_pid)"
    kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 60); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 143' TERM  # scancel, the time limit, a requeue
trap 'exit 130' INT

if [[ -n "$serve" ]]; then
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # A key per job, in the environment only: other users of the node cannot use the server.
  VLLM_API_KEY=$("$python" -c 'import secrets; print(secrets.token_urlsafe(24))')
  export VLLM_API_KEY
  eval "extra_args=($(field serve_args))"
  # Its own session (process group), so that stopping it stops its workers too.
  # shellcheck disable=SC2086  # the serve command is a command line: split on purpose
  setsid $serve_command "$serve" --host 127.0.0.1 --port "$port" \
    --tensor-parallel-size "$(field tensor_parallel_size)" "${extra_args[@]}" &
  server_pid=$!
  log "model server pid $server_pid: $serve on 127.0.0.1:$port"
  waited=0
  until "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "http://127.0.0.1:$port/health" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" && status=0 || status=$?
      log "the model server exited (status $status) before it was healthy"
      exit 3
    fi
    if ((waited >= server_timeout)); then
      log "the model server was not healthy after ${server_timeout} s"
      exit 3
    fi
    sleep 1
    waited=$((waited + 1))
  done
  export VLLM_BASE_URL="http://127.0.0.1:$port/v1"
  log "model server healthy after ~${waited} s: $VLLM_BASE_URL"
fi

# In the background, so that a signal reaches the trap at once rather than when the shard ends.
field job | "$python" -m vendomini_eval.sweep.shard --spec - &
shard_pid=$!
log "shard pid $shard_pid"
wait "$shard_pid" && status=0 || status=$?
shard_pid=""
exit "$status"
