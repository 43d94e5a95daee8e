"""Synthetic data generation, used by the ``synth`` stage (``stages/synth.py``).

* ``engines``: the contract (requests, sampling, per-row results); ``engine_vllm`` (offline ``vllm.LLM``) and
  ``engine_http`` (OpenAI-compatible servers) implement it.
* ``cache``: the SQLite response cache that makes reruns free and crashes resumable.
* ``recipes`` (+ ``recipes/*.yaml`` and templates): what each task selects, its budgets and sampling;
  ``filter_expr`` (safe selection expressions), ``chunking`` (token-budgeted chunks), ``postprocess``
  (clean-up steps), ``tokenizer`` (token counts and chat templates without loading a model).
* ``tiny_model``: the tiny random-weight Ling (BailingMoe) checkpoint for tests and the CPU demo.

Nothing here imports vLLM, torch, transformers or httpx at package import time.
"""
