"""Offline generation with an in-process ``vllm.LLM``.

Why these steps around ``LLM.generate``:

* vLLM batches best when it gets the whole selection at once, but it neither deduplicates nor reorders:
  identical requests are generated once and fanned out, and unique requests are sorted by their token
  ids so prompts sharing a prefix (recipe template, same source document) are scheduled together and hit
  the prefix cache (``enable_prefix_caching=True``).
* ``LLM.generate`` validates every prompt up front and raises for the *whole* batch if one is invalid
  (e.g. longer than ``max_model_len``). Prompts are therefore tokenized here with the engine's own
  tokenizer, invalid ones become failed rows, and the rest is passed as token ids (so vLLM does not
  tokenize twice). Anything that still raises is isolated by bisection, so one bad row never sinks the
  batch.
* ``LLM(data_parallel_size>1)`` is refused by vLLM in a single process, so data parallelism is done
  here: ``data_parallel_size`` independent replicas, each in its own spawned process with its own
  ``tensor_parallel_size`` devices, each taking a contiguous (prefix-sorted) slice of the batch.

vLLM spawns processes: create the engine from code under ``if __name__ == "__main__":`` (or from pytest,
whose main module is guarded), never at import time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from synth.engines import GenRequest, GenResult, Sampling, batch_stats, dedupe_requests

log = logging.getLogger(__name__)

_OK_FINISH = {"stop", "length"}
# vLLM V1 metric name -> key in last_stats["speculative"]
SPEC_COUNTERS = {
    "vllm:spec_decode_num_drafts": "drafts",
    "vllm:spec_decode_num_draft_tokens": "draft_tokens",
    "vllm:spec_decode_num_accepted_tokens": "accepted_tokens",
}
# vLLM V1 metric name -> key in last_stats["prefix_cache"] (prompt tokens looked up / found in the cache)
PREFIX_COUNTERS = {"vllm:prefix_cache_queries": "queried_tokens", "vllm:prefix_cache_hits": "hit_tokens"}
CPU_DEFAULT_KV_CACHE_GB = 2


class VLLMEngine:
    """Offline batch engine over ``vllm.LLM`` (see module docstring for the why).

    All knobs pass straight to ``vllm.LLM``; ``llm_kwargs`` carries any other ``EngineArgs`` field.
    ``kv_cache_gb`` sets the KV cache size explicitly (on CPU this replaces ``VLLM_CPU_KVCACHE_SPACE``).
    ``dtype="auto"`` and ``enforce_eager=None`` pick per platform: the checkpoint's dtype and CUDA graphs on
    GPUs, float32 and eager mode on vLLM's CPU build (see ``_cpu_workarounds``), so one config serves both.
    ``cpu_reserved_cores`` (CPU build): cores kept out of vLLM's compute threads; 0 gives the model every
    core, ``None`` keeps vLLM's own binding, which reserves one (see ``synth.cpu_binding``).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        tokenizer: str | None = None,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        speculative_config: dict[str, Any] | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
        enable_prefix_caching: bool = True,
        enforce_eager: bool | None = None,
        kv_cache_gb: float | None = None,
        cpu_reserved_cores: int | None = 0,
        model_id: str | None = None,
        llm_kwargs: dict[str, Any] | None = None,
        use_tqdm: bool = False,
    ) -> None:
        self.model_id = model_id or str(model)
        self.use_tqdm = use_tqdm
        self.last_stats: dict[str, Any] = {}
        self._llm: Any = None
        self._replicas: _ReplicaPool | None = None
        self.cpu_cores: list[int] | None = None  # the compute threads' cores when chosen here
        kwargs: dict[str, Any] = {
            "model": str(model),
            "tokenizer": tokenizer,
            "tensor_parallel_size": tensor_parallel_size,
            "dtype": dtype,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "speculative_config": speculative_config,
            "seed": seed,
            "trust_remote_code": trust_remote_code,
            "enable_prefix_caching": enable_prefix_caching,
            "enforce_eager": enforce_eager,
            "max_num_seqs": max_num_seqs,
            "max_num_batched_tokens": max_num_batched_tokens,
        }
        if kv_cache_gb is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_cache_gb * (1 << 30))
        # vLLM counts prefix-cache hits and drafted/accepted tokens only with stats on (LLM turns them off)
        kwargs["disable_log_stats"] = False
        kwargs.update(llm_kwargs or {})
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self.speculative = dict(speculative_config) if speculative_config else None
        _cpu_workarounds(kwargs)
        if data_parallel_size < 1:
            raise ValueError(f"data_parallel_size must be >= 1, got {data_parallel_size}")
        t0 = time.perf_counter()
        if data_parallel_size > 1:
            self._replicas = _ReplicaPool(kwargs, data_parallel_size, tensor_parallel_size)
            self.max_model_len = self._replicas.max_model_len
        else:
            from vllm import LLM

            from synth.cpu_binding import omp_binding

            reserved = cpu_reserved_cores if _on_cpu() else None
            with _own_resource_tracker(), omp_binding(reserved, tensor_parallel_size) as cores:
                self._llm = LLM(**kwargs)
            self.cpu_cores = cores
            self.max_model_len = int(self._llm.llm_engine.model_config.max_model_len)
            self._tokenizer = self._llm.get_tokenizer()
        self.load_seconds = time.perf_counter() - t0

    # -- public ---------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """One result per request, in order; invalid or failing rows come back ``failed`` with a reason."""
        t0 = time.perf_counter()
        unique, mapping = dedupe_requests(requests)
        spec: dict[str, int] | None = None
        prefix: dict[str, int] | None = None
        if self._replicas is not None:
            unique_results, spec, prefix = self._replicas.generate(unique)
        else:
            before, prefix_before = self.spec_counters(), self.prefix_counters()
            unique_results = self._generate_unique(unique)
            after, prefix_after = self.spec_counters(), self.prefix_counters()
            if before is not None and after is not None:
                spec = {k: after[k] - before[k] for k in after}
            if prefix_before is not None and prefix_after is not None:
                prefix = {k: prefix_after[k] - prefix_before[k] for k in prefix_after}
        results = [unique_results[j].with_id(r.id) for r, j in zip(requests, mapping, strict=True)]
        self.last_stats = batch_stats(requests, unique_results, time.perf_counter() - t0, speculative=spec,
                                      prefix_cache=prefix)
        return results

    def spec_counters(self) -> dict[str, int] | None:
        """vLLM's cumulative speculative-decoding counters (drafts, draft tokens, accepted tokens), or None
        when speculative decoding is off. Callers take differences around a call: the counters live in a
        process-wide registry that engines of the same model share."""
        if self.speculative is None:
            return None
        return self._counters(SPEC_COUNTERS) or dict.fromkeys(SPEC_COUNTERS.values(), 0)

    def prefix_counters(self) -> dict[str, int] | None:
        """vLLM's cumulative prefix-cache counters (prompt tokens looked up, tokens found in the cache), or
        None when vLLM reports none (stats off); callers take differences, as for :meth:`spec_counters`."""
        return self._counters(PREFIX_COUNTERS)

    def _counters(self, names: dict[str, str]) -> dict[str, int] | None:
        """Summed values of the named metrics, or None when the engine reports none of them."""
        if self._llm is None:
            return None
        totals = dict.fromkeys(names.values(), 0)
        found = False
        for metric in self._llm.get_metrics():
            key = names.get(metric.name)
            if key is not None:
                totals[key] += int(getattr(metric, "value", 0))
                found = True
        return totals if found else None

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids as vLLM would compute them for text prompts (special tokens per the tokenizer)."""
        if not texts:
            return []
        if self._replicas is not None:
            return self._replicas.tokenize(list(texts))
        enc = self._tokenizer(list(texts), add_special_tokens=True)
        return [list(ids) for ids in enc["input_ids"]]

    def close(self) -> None:
        """Stop vLLM's engine-core (and replica) processes; idempotent."""
        if self._replicas is not None:
            self._replicas.close()
            self._replicas = None
        if self._llm is not None:
            core = getattr(getattr(self._llm, "llm_engine", None), "engine_core", None)
            try:
                if core is not None and hasattr(core, "shutdown"):
                    core.shutdown()
            except Exception as e:  # shutting down twice or a dead core is not an error here
                log.debug("vLLM shutdown: %s", e)
            self._llm = None

    def __enter__(self) -> VLLMEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------
    def _generate_unique(self, unique: Sequence[GenRequest]) -> list[GenResult]:
        results: list[GenResult | None] = [None] * len(unique)
        token_ids = self.tokenize([r.prompt for r in unique])
        runnable: list[int] = []
        for i, (req, ids) in enumerate(zip(unique, token_ids, strict=True)):
            reason = self._precheck(len(ids))
            if reason:
                results[i] = GenResult.failure(req.id, reason, prompt_tokens=len(ids))
            else:
                runnable.append(i)
        # Shared prefixes next to each other: vLLM schedules in arrival order.
        runnable.sort(key=lambda i: token_ids[i])
        done = self._run_safe([(unique[i], token_ids[i]) for i in runnable])
        for i, res in zip(runnable, done, strict=True):
            results[i] = res
        return [r for r in results if r is not None]

    def _precheck(self, n_tokens: int) -> str | None:
        if n_tokens == 0:
            return "empty prompt"
        if n_tokens >= self.max_model_len:
            return (
                f"prompt too long: {n_tokens} tokens, max_model_len is {self.max_model_len} "
                "(prompt plus at least one output token must fit)"
            )
        return None

    def _run_safe(self, batch: list[tuple[GenRequest, list[int]]]) -> list[GenResult]:
        """``LLM.generate`` on the batch; on an exception, bisect so only the offending rows fail."""
        if not batch:
            return []
        try:
            return self._run(batch)
        except Exception as e:
            if _engine_dead(e):
                msg = f"vLLM engine died: {type(e).__name__}: {e}"
                return [GenResult.failure(r.id, msg, len(ids)) for r, ids in batch]
            if len(batch) == 1:
                req, ids = batch[0]
                return [GenResult.failure(req.id, f"{type(e).__name__}: {e}", len(ids))]
            log.warning("vLLM batch of %d raised %s; bisecting to isolate failing rows", len(batch), e)
            mid = len(batch) // 2
            return self._run_safe(batch[:mid]) + self._run_safe(batch[mid:])

    def _run(self, batch: list[tuple[GenRequest, list[int]]]) -> list[GenResult]:
        from vllm import SamplingParams, TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=ids) for _, ids in batch]
        params = [_to_vllm_params(SamplingParams, req.params) for req, _ in batch]
        outputs = self._llm.generate(prompts, params, use_tqdm=self.use_tqdm)
        results = []
        for (req, ids), out in zip(batch, outputs, strict=True):
            if not out.outputs:
                results.append(GenResult.failure(req.id, "vLLM returned no output", len(ids)))
                continue
            comp = out.outputs[0]
            finish = comp.finish_reason
            ok = finish in _OK_FINISH
            results.append(
                GenResult(
                    id=req.id,
                    status="ok" if ok else "failed",
                    text=comp.text,
                    prompt_tokens=len(out.prompt_token_ids or ids),
                    completion_tokens=len(comp.token_ids),
                    finish_reason=finish,
                    error=None if ok else f"finished with {finish!r}",
                )
            )
        return results


@contextlib.contextmanager
def _own_resource_tracker() -> Iterator[None]:
    """Processes spawned meanwhile (vLLM's engine core and workers) get a resource tracker of their own.

    Why: vLLM's engine core leaves a shared-memory block registered at shutdown, and the tracker it shares
    with this process then warns about a "leaked shared_memory object" on the terminal when the program
    exits. A tracker started here inherits the current stderr (``engine.log`` inside ``engine_output``),
    so that warning lands in the engine's log; everything else in this process keeps the usual tracker.
    """
    from multiprocessing import resource_tracker as rt

    names = ("_resource_tracker", "ensure_running", "register", "unregister", "getfd")
    saved = {n: getattr(rt, n) for n in names}
    tracker = rt.ResourceTracker()
    tracker.ensure_running()
    for n in names[1:]:
        setattr(rt, n, getattr(tracker, n))
    rt._resource_tracker = tracker
    try:
        yield
    finally:
        for n, value in saved.items():
            setattr(rt, n, value)
        _TRACKERS.append(tracker)  # kept open until exit: the engine's processes report to it


_TRACKERS: list[Any] = []


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # pragma: no cover - platform detection failing means we are not on the CPU build
        return False


def _cpu_workarounds(kwargs: dict[str, Any]) -> None:
    """On vLLM's CPU build: float32 for ``dtype="auto"``, eager mode unless the caller decided, a small
    default KV cache, and chunked prefill off unless the caller decided.

    Why: when a seeded request's prefill is split over steps, the model runner rewinds the request's
    torch generator with ``set_offset``, which CPU generators do not support ("CPU Generator does not use
    offset"): the engine core dies and every request in flight is lost. Without chunked prefill a prompt
    is prefilled whole, which needs ``max_num_batched_tokens >= max_model_len``.
    """
    if not _on_cpu():
        return
    if kwargs.get("dtype", "auto") == "auto":
        kwargs["dtype"] = "float32"  # bf16 kernels are slow or missing on CPUs without AVX512-BF16
    kwargs.setdefault("enforce_eager", True)  # torch.compile takes minutes on a few cores, for little gain
    model_cfg = _local_model_config(kwargs["model"])
    if kwargs["enforce_eager"] and model_cfg.get("kv_lora_rank") is not None:  # an MLA model
        _native_rotary(kwargs)
    if "kv_cache_memory_bytes" not in kwargs and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        # vLLM would otherwise take gpu_memory_utilization (0.9) of the NUMA node's RAM.
        kwargs["kv_cache_memory_bytes"] = CPU_DEFAULT_KV_CACHE_GB << 30
    if "enable_chunked_prefill" in kwargs:
        return
    kwargs["enable_chunked_prefill"] = False
    max_len = kwargs.get("max_model_len") or model_cfg.get("max_position_embeddings") or model_cfg.get(
        "max_sequence_length")
    if max_len:
        kwargs["max_num_batched_tokens"] = max(int(kwargs.get("max_num_batched_tokens") or 0), int(max_len))


def _native_rotary(kwargs: dict[str, Any]) -> None:
    """Rotary embedding in plain torch instead of vLLM's CPU kernel, for MLA models in eager mode.

    Why: the CPU kernel (``torch.ops._C.rotary_embedding``) rotates the strided views vLLM's MLA layer gives
    it (``q[..., nope:]``, and ``k_pe`` split off the latent projection) at the wrong offsets, so keys leak
    between tokens: prompt logprobs change when tokens are appended (measured on vLLM 0.32.0's CPU build)
    and greedy outputs with speculative decoding differ from those without. The torch version is exact.
    """
    cc = kwargs.setdefault("compilation_config", {})
    if not isinstance(cc, dict):
        return  # a CompilationConfig object: the caller decided
    ops = list(cc.get("custom_ops") or ["all"])  # eager mode's default is "all" (every custom kernel on)
    if "all" in ops and "+rotary_embedding" not in ops and "-rotary_embedding" not in ops:
        ops.append("-rotary_embedding")
    cc["custom_ops"] = ops


def _local_model_config(model: str) -> dict[str, Any]:
    """A local checkpoint's config.json ({} for a hub id or an unreadable file)."""
    try:
        cfg = json.loads((Path(model) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _to_vllm_params(cls: Any, p: Sampling) -> Any:
    structured = None
    if p.regex is not None:
        from vllm.sampling_params import StructuredOutputsParams

        structured = StructuredOutputsParams(regex=p.regex)
    return cls(
        structured_outputs=structured,
        temperature=p.temperature,
        top_p=p.top_p,
        max_tokens=p.max_tokens,
        seed=p.seed,
        stop=list(p.stop) or None,
        repetition_penalty=p.repetition_penalty,
    )


def _engine_dead(e: BaseException) -> bool:
    try:
        from vllm.v1.engine.exceptions import EngineDeadError
    except ImportError:  # pragma: no cover - other vLLM layouts
        return False
    return isinstance(e, EngineDeadError)


# -- data parallel: independent replicas in spawned processes ---------------------------------------------


def _replica_main(conn: Any, kwargs: dict[str, Any], env: dict[str, str]) -> None:
    """Replica process: one single-replica VLLMEngine serving (op, payload) messages over a pipe."""
    os.environ.update(env)
    try:
        eng = VLLMEngine(**_engine_kwargs_from_llm_kwargs(kwargs))
        conn.send(("ready", eng.max_model_len))
    except Exception as e:
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    try:
        while True:
            op, payload = conn.recv()
            if op == "close":
                break
            try:
                if op == "generate":
                    reqs = [GenRequest(r["id"], r["prompt"], Sampling(**r["params"])) for r in payload]
                    results = [r.to_dict() for r in eng.generate(reqs)]
                    last = eng.last_stats
                    conn.send(("ok", (results, last.get("speculative"), last.get("prefix_cache"))))
                elif op == "tokenize":
                    conn.send(("ok", eng.tokenize(payload)))
            except Exception as e:  # keep serving; the parent turns this into failed rows
                conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        eng.close()


def _engine_kwargs_from_llm_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    known = {
        "tokenizer", "tensor_parallel_size", "dtype", "gpu_memory_utilization", "max_model_len",
        "speculative_config", "seed", "trust_remote_code", "enable_prefix_caching", "enforce_eager",
        "max_num_seqs", "max_num_batched_tokens",
    }  # fmt: skip
    out: dict[str, Any] = {k: v for k, v in kw.items() if k in known}
    out["model"] = kw["model"]
    extra = {k: v for k, v in kw.items() if k not in known and k != "model"}
    if extra:
        out["llm_kwargs"] = extra
    return out


class _ReplicaPool:
    """``n`` engine replicas, each pinned to its own devices (GPUs) or cores (CPU)."""

    def __init__(self, llm_kwargs: dict[str, Any], n: int, tp: int) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conns = []
        self._procs = []
        for env in _replica_envs(n, tp):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_replica_main, args=(child, llm_kwargs, env), daemon=False)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
        lens = []
        for i, conn in enumerate(self._conns):
            status, payload = conn.recv()
            if status != "ready":
                self.close()
                raise RuntimeError(f"vLLM replica {i} failed to start: {payload}")
            lens.append(payload)
        self.max_model_len = min(lens)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        self._conns[0].send(("tokenize", texts))
        status, payload = self._conns[0].recv()
        if status != "ok":
            raise RuntimeError(payload)
        return payload

    def generate(
        self, unique: Sequence[GenRequest]
    ) -> tuple[list[GenResult], dict[str, int] | None, dict[str, int] | None]:
        """Results in order, and the replicas' speculative-decoding and prefix-cache counts summed (None
        when off)."""
        # Contiguous slices of the prompt-sorted list keep shared prefixes on one replica.
        order = sorted(range(len(unique)), key=lambda i: unique[i].prompt)
        n = len(self._conns)
        bounds = [len(order) * k // n for k in range(n + 1)]
        slices = [order[bounds[k] : bounds[k + 1]] for k in range(n)]
        for conn, idx in zip(self._conns, slices, strict=True):
            payload = [{"id": unique[i].id, "prompt": unique[i].prompt, "params": unique[i].params.to_dict()}
                       for i in idx]  # fmt: skip
            conn.send(("generate", payload))
        results: list[GenResult | None] = [None] * len(unique)
        spec: dict[str, int] | None = None
        prefix: dict[str, int] | None = None
        for conn, idx in zip(self._conns, slices, strict=True):
            try:
                status, payload = conn.recv()
            except (EOFError, OSError) as e:
                status, payload = "error", f"replica died: {e}"
            if status == "ok":
                payload, replica_spec, replica_prefix = payload
                if replica_spec is not None:
                    spec = {k: (spec or {}).get(k, 0) + n for k, n in replica_spec.items()}
                if replica_prefix is not None:
                    prefix = {k: (prefix or {}).get(k, 0) + n for k, n in replica_prefix.items()}
            for pos, i in enumerate(idx):
                if status == "ok":
                    results[i] = GenResult.from_dict(payload[pos])
                else:
                    results[i] = GenResult.failure(unique[i].id, str(payload))
        return [r for r in results if r is not None], spec, prefix

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()
        self._conns, self._procs = [], []


def _replica_envs(n: int, tp: int) -> list[dict[str, str]]:
    """Per-replica environment: a disjoint slice of GPUs, or of CPU cores on the CPU build."""
    import torch

    if torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
        if len(devices) < n * tp:
            raise ValueError(f"data_parallel_size={n} x tensor_parallel_size={tp} needs {n * tp} GPUs, "
                             f"{len(devices)} visible")  # fmt: skip
        return [{"CUDA_VISIBLE_DEVICES": ",".join(devices[r * tp : (r + 1) * tp])} for r in range(n)]
    cores = sorted(os.sched_getaffinity(0))
    per = len(cores) // n
    if per < 1:
        return [{} for _ in range(n)]
    slices = [cores[r * per : (r + 1) * per] for r in range(n)]
    return [{"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, sl))} for sl in slices]
