#!/usr/bin/env bash
# One array task of a `vendomini slurm submit` sweep: runs the shard on line SLURM_ARRAY_TASK_ID + 1 of the
# manifest. `vendomini slurm submit` writes the #SBATCH header, VENDOMINI_MANIFEST and VENDOMINI_PYTHON in
# front of this body.
#
# The work is done by `python -m vendomini_eval.sweep.array_task`: a node-served model (vllm/<id>,
# openai-api/vllm/<id> with vLLM; openai-api/llama-cpp/<name> with llama.cpp)
# gets its server started, bound to 127.0.0.1 on a free port with a per-job key; the task waits for it to answer
# (failing early if it exits), runs the shard in a child process that alone is given the server's URL and key,
# and stops the server on any exit or signal. hf/ models load in the shard process; API models run as they are.
# The shard runs with eval_set on its own log dir: a requeued or resubmitted task keeps every finished sample.
# Exits 0 when the shard is complete (or stopped by a spend ceiling), 1 when it is not, 2 when it could not run,
# 3 when the server did not come up, 4 when a ceiling stopped it with --fail-on-budget, 143 when stopped by SIGTERM.
#
# Environment: VENDOMINI_MANIFEST (the manifest), VENDOMINI_PYTHON (default python3), VENDOMINI_SERVE_COMMAND
# (vLLM's, default "vllm serve"; called as COMMAND MODEL --host H --port P --tensor-parallel-size N
# [--serve-args]), VENDOMINI_SERVER_TIMEOUT (seconds to wait for the server, default 1800: a large model loads
# for minutes).
set -euo pipefail

: "${SLURM_ARRAY_TASK_ID:?not an array task: submit with vendomini slurm submit, or set SLURM_ARRAY_TASK_ID}"
: "${VENDOMINI_MANIFEST:?set VENDOMINI_MANIFEST to the sweep manifest}"

# Compute nodes: nothing downloads at run time (weights and tokenizers must already be in the HF cache, GGUF
# files on a shared file system), and the node-local server is reached directly, never through a proxy.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export NO_PROXY=127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY} no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy}

# exec: SIGTERM (scancel, the time limit, a requeue) reaches the task itself, which stops shard and server.
exec "${VENDOMINI_PYTHON:-python3}" -m vendomini_eval.sweep.array_task
