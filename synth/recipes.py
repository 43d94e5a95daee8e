"""Recipes as data: a YAML file (plus a Jinja template) says which documents a task takes, how to chunk
them, how to sample, and how to clean the output.

Why data and not code: the Nemotron-CC task set (``wiki_rephrase``, ``diverse_qa``, ``distill``,
``extract_knowledge``, ``knowledge_list``) ships in ``synth/recipes/``; users add their own files
(``recipes: [wiki_rephrase, ./my_recipe.yaml]``) or override a field in the pipeline config
(``{recipe: diverse_qa, select: "quality_score > 0.9"}``) without touching Python. Templates run in Jinja's
sandbox with strict undefined variables, and selections are safe filter expressions (``filter_expr``).

A recipe's fingerprint covers its resolved fields and template text, so editing a recipe file reruns the
stage; the response cache, keyed by the rendered prompt, still reuses every response whose prompt is
unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synth.filter_expr import FilterExpr, valid_expression
from synth.postprocess import parse_steps

BUILTIN_DIR = Path(__file__).resolve().parent / "recipes"
TEMPLATE_VARS = ("text", "lang", "source", "url", "chunk_index", "n_chunks")


class RecipeError(ValueError):
    """A recipe that cannot be found, parsed or validated (message names the recipe and the key)."""


class RecipeSpec(BaseModel):
    """The fields of a recipe file. Budgets follow REFERENCE.md's Nemotron-CC table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    # generate: the cleaned output is a new document; annotate: the output is parsed into a score for the
    # source document (the stage's annotations table), e.g. FineWeb-Edu's educational value
    kind: Literal["generate", "annotate"] = "generate"
    select: str | None = None  # filter expression over signal columns; None = every document
    prompt: str | None = None  # inline Jinja template of the user message
    template: str | None = None  # or a template file, relative to the recipe file
    system: str | None = None
    max_input_tokens: int = Field(default=512, ge=16)  # whole prompt: template + chunk
    min_input_tokens: int = Field(default=50, ge=0)  # chunks below this are not worth a request
    max_output_tokens: int = Field(default=512, ge=1)
    min_output_tokens: int = Field(default=50, ge=0)  # after clean-up
    temperature: float = Field(default=0.5, ge=0.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.0, gt=0.0)  # vLLM's; > 1 keeps small models from looping
    stop: list[str] = Field(default_factory=list)
    # the start of the answer, written into the prompt after the chat template's assistant turn and put back
    # in front of the output before clean-up: makes small models keep a layout ("Question:", "- ")
    response_prefix: str = ""
    regex: str | None = None  # structured output: the generated text must match (vLLM structured outputs)
    drop_truncated: bool = True  # an output that hit max_output_tokens is cut mid-sentence
    join_chunks: bool = False  # one document per source document: chunk outputs rejoined in order
    output: Literal["generated", "append_to_source"] = "generated"
    postprocess: list[Any] = Field(default_factory=list)
    domain: str | None = None  # default synth_<name>

    @field_validator("select")
    @classmethod
    def _select_parses(cls, value: str | None) -> str | None:
        return valid_expression(value)

    @field_validator("postprocess")
    @classmethod
    def _steps_known(cls, value: list[Any]) -> list[Any]:
        parse_steps(value)
        return value

    @model_validator(mode="after")
    def _one_template(self) -> RecipeSpec:
        if (self.prompt is None) == (self.template is None):
            raise ValueError("give exactly one of prompt (inline template) or template (file)")
        if self.kind == "annotate" and not any(name == "parse_score" for name, _ in parse_steps(self.postprocess)):
            raise ValueError("an annotate recipe needs a parse_score postprocess step (how its score is read)")
        return self


@dataclass
class Recipe:
    """A loaded recipe: spec, template source, compiled selection and post-processing steps."""

    spec: RecipeSpec
    template_text: str
    origin: str
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    select: FilterExpr | None = None
    _template: Any = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def domain(self) -> str:
        return self.spec.domain or f"synth_{self.spec.name}"

    def render(self, **variables: Any) -> str:
        """The user message for one chunk (``text`` plus document fields, see TEMPLATE_VARS)."""
        if self._template is None:
            from jinja2 import StrictUndefined
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False,
                                                autoescape=False)  # fmt: skip
            self._template = env.from_string(self.template_text)
        return str(self._template.render({**{k: None for k in TEMPLATE_VARS}, **variables})).strip()

    def prompt(self, tok: Any, **variables: Any) -> str:
        """The whole prompt of one request: the rendered message in the model's format, then the prefix."""
        return tok.format(self.render(**variables), self.spec.system) + self.spec.response_prefix

    def output(self, generated: str) -> str:
        """The answer as the model meant it: the response prefix it continued, then what it generated."""
        return self.spec.response_prefix + generated

    def fingerprint(self) -> str:
        blob = json.dumps({"spec": self.spec.model_dump(mode="json"), "template": self.template_text},
                          sort_keys=True, ensure_ascii=False)  # fmt: skip
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RecipeError(f"recipe {str(path)!r}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {str(path)!r}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {str(path)!r}: expected a mapping of recipe fields")
    return data


def is_recipe_path(ref: str) -> bool:
    """A recipe reference that names a YAML file (not a built-in recipe name)."""
    return ref.endswith((".yaml", ".yml")) or "/" in ref or ref.startswith(".")


def load_recipe(ref: str | dict[str, Any], base_dir: str | Path = ".") -> Recipe:
    """A built-in name (``wiki_rephrase``), a path to a YAML file, or a mapping: ``{recipe: <name or
    path>, <field>: <override>, ...}`` overrides fields of that recipe; a mapping without ``recipe`` is a
    whole recipe written inline (needs ``name`` and ``prompt``)."""
    overrides: dict[str, Any] = {}
    if isinstance(ref, dict):
        overrides = dict(ref)
        base_ref = overrides.pop("recipe", None)
        if base_ref is None:
            return _build(overrides, Path(base_dir), "inline")
        if not isinstance(base_ref, str):
            raise RecipeError(f"recipe: expected a name or path, got {base_ref!r}")
        ref = base_ref
    if is_recipe_path(ref):
        path = Path(base_dir) / ref if not Path(ref).is_absolute() else Path(ref)
        origin = str(ref)
    else:
        path = BUILTIN_DIR / f"{ref}.yaml"
        origin = ref
        if not path.is_file():
            raise RecipeError(f"unknown recipe {ref!r} (built-in: {', '.join(builtin_names())}; "
                              "or give a path to a .yaml file)")  # fmt: skip
    data = _read_yaml(path)
    if "prompt" in overrides or "template" in overrides:  # replacing the template, however it was given
        data.pop("prompt", None)
        data.pop("template", None)
    data.update(overrides)
    return _build(data, path.parent, origin)


def _build(data: dict[str, Any], base_dir: Path, origin: str) -> Recipe:
    label = data.get("name", origin)
    try:
        spec = RecipeSpec(**data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'recipe'}: "
                             f"{'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}"
                             for err in e.errors())  # fmt: skip
        raise RecipeError(f"recipe {label!r}: {problems}") from None
    except ValueError as e:
        raise RecipeError(f"recipe {label!r}: {e}") from None
    if spec.template is not None:
        tpath = base_dir / spec.template
        try:
            text = tpath.read_text(encoding="utf-8")
        except OSError as e:
            raise RecipeError(f"recipe {spec.name!r}: template {str(tpath)!r}: {e.strerror or e}") from None
    else:
        text = spec.prompt or ""
    if spec.min_input_tokens >= spec.max_input_tokens:
        raise RecipeError(f"recipe {spec.name!r}: min_input_tokens must be below max_input_tokens")
    recipe = Recipe(spec=spec, template_text=text, origin=origin, steps=parse_steps(spec.postprocess),
                    select=FilterExpr(spec.select) if spec.select else None)  # fmt: skip
    try:
        recipe.render(text="probe")
    except ImportError as e:
        raise RecipeError(f"recipe {spec.name!r}: templates need jinja2 ({e}); install ling-curate[synth]") from None
    except Exception as e:  # a template error shows here, at config time, not mid-run
        raise RecipeError(f"recipe {spec.name!r}: template does not render: {type(e).__name__}: {e}") from None
    return recipe


def load_recipes(refs: list[str | dict[str, Any]], base_dir: str | Path = ".") -> list[Recipe]:
    recipes = [load_recipe(r, base_dir) for r in refs]
    seen: set[str] = set()
    for r in recipes:
        if r.name in seen:
            raise RecipeError(f"recipe name {r.name!r} is used twice; give one of them another name")
        seen.add(r.name)
    return recipes
