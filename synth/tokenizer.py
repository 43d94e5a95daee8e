"""The generating model's tokenizer, used before any engine is loaded: counting tokens for chunking and
minimum-length checks, and wrapping prompts in the model's chat template.

Why not ask the engine: prompts must be built (and looked up in the response cache) before deciding
whether an engine is needed at all, so a rerun whose responses are all cached never loads vLLM; and the
same prompts must come out whether the ``vllm`` or the ``http`` engine serves them, so the cache is shared.

Why not transformers first: importing it takes ~10 s on a small machine, more than the rest of a cached
rerun. A checkpoint with ``tokenizer.json`` (Ling's have one) is read with the ``tokenizers`` library and
its chat template rendered with Jinja the way transformers renders it (sandboxed, ``trim_blocks``,
``lstrip_blocks``, the special tokens as variables); transformers is the fallback for anything else.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

PromptFormat = Literal["auto", "chat", "raw"]
_SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


class PromptTokenizer:
    """``count`` token lengths and ``format`` a user message (chat template or raw text).

    Sources, in order: ``tokenizer.json`` (+ ``tokenizer_config.json``) in a local directory; transformers'
    ``AutoTokenizer`` (hub ids, other formats); else an approximate count (about 3 characters per token),
    with a warning: only when no tokenizer can be found locally (an HTTP server's model name, no ``tokenizer``).
    """

    def __init__(self, source: str | None, *, trust_remote_code: bool = False, prompt_format: PromptFormat = "auto"):
        self.source = source
        self.kind = "approximate"
        self._hf: Any = None
        self._fast: Any = None
        self._template: Any = None
        self._special: dict[str, str] = {}
        if source is not None:
            self._load(source, trust_remote_code)
        if self.kind == "approximate":
            log.warning("no local tokenizer for %r: token counts are approximate (set synth `tokenizer:`)", source)
        has_template = self._template is not None or bool(getattr(self._hf, "chat_template", None))
        if prompt_format == "chat" and not has_template:
            raise ValueError(f"prompt_format: chat, but the tokenizer {source!r} has no chat template")
        self.chat = has_template if prompt_format == "auto" else prompt_format == "chat"

    def _load(self, source: str, trust_remote_code: bool) -> None:
        path = Path(source)
        if path.is_dir() and (path / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            self._fast = Tokenizer.from_file(str(path / "tokenizer.json"))
            self.kind = "tokenizers"
            self._load_template(path)
            return
        if path.is_file() and path.name.endswith(".json"):
            from tokenizers import Tokenizer

            self._fast = Tokenizer.from_file(str(path))
            self.kind = "tokenizers"
            return
        try:
            from transformers import AutoTokenizer

            self._hf = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            self.kind = "transformers"
        except Exception as e:  # not installed, not a tokenizer, hub unreachable: count approximately
            log.info("transformers could not load tokenizer %r: %s", source, e)

    def _load_template(self, path: Path) -> None:
        cfg: dict[str, Any] = {}
        if (path / "tokenizer_config.json").is_file():
            cfg = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        template = cfg.get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default") or next(iter(named.values()), None)
        if template is None and (path / "chat_template.jinja").is_file():
            template = (path / "chat_template.jinja").read_text(encoding="utf-8")
        if not template:
            return
        for name in _SPECIAL:
            value = cfg.get(name)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                self._special[name] = value
        self._template = _compile_chat_template(template)

    def count(self, texts: Sequence[str]) -> list[int]:
        """Token counts, special tokens included as the engines add them."""
        if not texts:
            return []
        if self._fast is not None:
            return [len(e.ids) for e in self._fast.encode_batch(list(texts))]
        if self._hf is not None:
            return [len(ids) for ids in self._hf(list(texts), add_special_tokens=True)["input_ids"]]
        return [max(1, math.ceil(len(t) / 3)) if t else 0 for t in texts]

    def format(self, user: str, system: str | None = None) -> str:
        """The prompt text for one request: the chat template with a generation prompt, or ``user`` as is."""
        if not self.chat:
            return f"{system}\n\n{user}" if system else user
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        if self._template is not None:
            return str(self._template.render(messages=messages, add_generation_prompt=True, **self._special))
        return str(self._hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def _compile_chat_template(source: str) -> Any:
    """A chat template compiled like transformers does (sandbox, trim/lstrip blocks, loop controls)."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        from jinja2.exceptions import TemplateError

        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source)
