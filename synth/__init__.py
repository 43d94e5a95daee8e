"""Synthetic data generation: engines (``engine_vllm``, ``engine_http``) behind one contract
(``engines``), a response cache (``cache``) and the tiny test model builder (``tiny_model``).

Nothing here imports vLLM, torch or httpx at package import time.
"""
