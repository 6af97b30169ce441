"""Block kinds and their options — the single registry.

Every live block is a fenced code block whose first class names its kind::

    ```{.attention sentence="el gato se sentó en la alfombra" seed=3 caption="Pesos de atención"}
    ```

Options come, first match wins, from

1. the block's attributes (``key=value``; ``d_model`` and ``d-model`` are the same key);
2. the block's body: a YAML mapping, where Quarto-style ``#| key: value`` lines are read too
   (a kind with a *body key* also takes a plain-text body, e.g. the sentence of ``.attention``);
3. the document's metadata, under ``attnslides:``, either per kind (``attnslides: {attention: {seed: 2}}``)
   or for every kind that has the key (``attnslides: {precision: 3}``);
4. the default written below.

Each kind is one frozen dataclass; a field's metadata holds its help text and its parser, so the
list of keys, their types and their help cannot drift apart. Anything not in the registry is an
error that suggests the closest valid key. Nothing downstream of :func:`parse_block` reads raw
strings.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import yaml

from filters.errors import BlockError

# --------------------------------------------------------------------------------------------
# Value parsers: raw value (a string from an attribute, or a YAML value) -> typed value.
# Each raises ValueError with a message that says what was expected.
# --------------------------------------------------------------------------------------------

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def as_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, got {value!r}")
    return str(value).strip()


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def as_int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise ValueError(f"expected a whole number {_range(lo, hi)}, got {number}")
        return number

    parse.__doc__ = f"whole number {_range(lo, hi)}"
    return parse


def _range(lo: int | None, hi: int | None) -> str:
    return f"in [{lo}, {hi}]" if lo is not None and hi is not None else f">= {lo}" if lo is not None else f"<= {hi}"


def as_positive_float(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"expected a finite number > 0, got {value!r}")
    return number


def as_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if text not in choices:
            close = difflib.get_close_matches(text, choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}{hint}")
        return text

    parse.__doc__ = "one of " + ", ".join(choices)
    return parse


def _yaml_if_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"could not read {value!r} as a list: {exc}") from None
    return value


def int_list(lo: int = 0, hi: int | None = None) -> Callable[[Any], tuple[int, ...]]:
    """``[0, 1, 8]`` or ``0,1,8`` → ``(0, 1, 8)``, each number checked against ``[lo, hi]``."""
    one = as_int(lo, hi)

    def parse(value: Any) -> tuple[int, ...]:
        if isinstance(value, str) and not value.strip().startswith("["):
            value = [part for part in re.split(r"[,\s]+", value.strip()) if part]
        value = _yaml_if_text(value)
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"expected a list of whole numbers such as [0, 1, 8], got {value!r}")
        return tuple(one(v) for v in value)

    parse.__doc__ = f"list of whole numbers {_range(lo, hi)}"
    return parse


def as_matrix(value: Any) -> tuple[tuple[float, ...], ...]:
    """``[[1, 0], [0, 1]]`` (YAML or JSON text, or a YAML list) → rectangular tuple of float rows."""
    value = _yaml_if_text(value)
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(r, (list, tuple)) for r in value):
        raise ValueError(f"expected a matrix such as [[1, 0], [0, 1]], got {value!r}")
    widths = {len(row) for row in value}
    if len(widths) != 1 or 0 in widths:
        raise ValueError(f"every row of the matrix needs the same, non-zero length; got rows of lengths {[len(r) for r in value]}")
    try:
        rows = tuple(tuple(float(x) for x in row) for row in value)
    except (TypeError, ValueError):
        raise ValueError(f"every entry of the matrix must be a number, got {value!r}") from None
    if not all(math.isfinite(x) for row in rows for x in row):
        raise ValueError("every entry of the matrix must be finite")
    return rows


def as_size(value: Any) -> str:
    """A figure size on the slide: a percentage (``70%``) or a LaTeX length (``5cm``)."""
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(%|cm|mm|in|pt|em)", text)
    if not match:
        raise ValueError(f"expected a size such as 70% or 5cm, got {value!r}")
    if match[2] == "%" and not 0 < float(match[1]) <= 100:
        raise ValueError(f"a percentage of the frame's text height lies in (0, 100], got {text}")
    return text


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``auto``/``none``/empty → ``None``; anything else through ``parse``."""

    def parse_optional(value: Any) -> Any:
        if value is None or str(value).strip().lower() in {"", "auto", "none", "null"}:
            return None
        return parse(value)

    parse_optional.__doc__ = f"{parse.__doc__ or ''} or auto"
    return parse_optional


def opt(help: str, parse: Callable[[Any], Any], *, figure: bool = True) -> dict:
    """Field metadata of one option. ``figure=False``: it changes the slide, not the picture or data
    (caption, alt text, size on the slide), so it is left out of the cache key."""
    return {"help": help, "parse": parse, "figure": figure}


# Colormaps a projector shows well (perceptually uniform or sequential). Listed here, not looked up
# in matplotlib, so that parsing a deck never imports matplotlib.
COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "Blues", "Greens", "Greys", "Oranges", "Purples", "YlOrRd")


# --------------------------------------------------------------------------------------------
# The kinds. One dataclass each; ``kind`` is the class of the code block.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureSpec:
    """Options every figure kind shares; none of them changes the picture itself."""

    kind: ClassVar[str] = ""
    body_key: ClassVar[str | None] = None  # the option a plain-text body sets, if any
    caption: str = field(default="", metadata=opt("caption under the figure (Markdown, $math$ allowed)", as_str, figure=False))
    alt: str = field(default="", metadata=opt("alternative text for screen readers", as_str, figure=False))
    height: str = field(default="72%", metadata=opt("height on the slide: 70% of the text height, or 5cm", as_size, figure=False))

    def validate(self) -> None:
        """Checks across several options; raises :class:`BlockError` naming the key."""


@dataclass(frozen=True)
class AttentionSpec(FigureSpec):
    """``.attention``: self-attention weights of one sentence, as an annotated heatmap.

    tokens → embedding (+ sinusoidal positions) → one self-attention head with seeded W_Q, W_K, W_V.
    """

    kind: ClassVar[str] = "attention"
    body_key: ClassVar[str | None] = "sentence"
    sentence: str = field(default="el gato se sentó en la alfombra", metadata=opt("the sentence to tokenize (words and punctuation)", as_str))
    seed: int = field(default=0, metadata=opt("seed of the embedding and of W_Q, W_K, W_V", as_int(0)))
    d_model: int = field(default=16, metadata=opt("width of the token vectors", as_int(1, 4096)))
    d_k: int | None = field(default=None, metadata=opt("width of queries and keys (auto: d_model)", optional(as_int(1, 4096))))
    positional: bool = field(default=True, metadata=opt("add the sinusoidal positional encoding to the embeddings", as_bool))
    causal: bool = field(default=False, metadata=opt("causal mask: each token sees only itself and earlier tokens", as_bool))
    precision: int = field(default=2, metadata=opt("decimals of the weight printed in each cell", as_int(0, 4)))
    annotate: bool = field(default=True, metadata=opt("print the weight in each cell", as_bool))
    cmap: str = field(default="viridis", metadata=opt("colormap", as_choice(*COLORMAPS)))

    def validate(self) -> None:
        if not self.sentence:
            raise BlockError("the sentence is empty", key="sentence")
        if len(self.sentence.split()) > 16:
            raise BlockError(f"at most 16 words fit a heatmap on a slide, got {len(self.sentence.split())}", key="sentence")


@dataclass(frozen=True)
class PosencSpec(FigureSpec):
    """``.posenc``: the sinusoidal positional encoding (Vaswani et al. 2017, §3.5) as a heatmap
    (positions × dimensions) beside curves of a few dimensions against position."""

    kind: ClassVar[str] = "posenc"
    num_positions: int = field(default=50, metadata=opt("number of positions (rows of the heatmap)", as_int(1, 10000)))
    d_model: int = field(default=64, metadata=opt("width of the encoding (columns of the heatmap)", as_int(1, 4096)))
    base: float = field(default=10000.0, metadata=opt("wavelength base (10000 in the paper)", as_positive_float))
    dims: tuple[int, ...] = field(default=(0, 1, 8, 9), metadata=opt("dimensions drawn as curves, e.g. [0, 1, 8, 9]", int_list(0)))
    cmap: str = field(default="magma", metadata=opt("colormap of the heatmap", as_choice(*COLORMAPS)))

    def validate(self) -> None:
        bad = [d for d in self.dims if d >= self.d_model]
        if bad:
            raise BlockError(f"dimension(s) {bad} do not exist when d_model = {self.d_model}", key="dims")
        if len(self.dims) > 6:
            raise BlockError("at most 6 curves stay readable", key="dims")


@dataclass(frozen=True)
class StepsSpec:
    """``.attention-steps``: a worked example, S = QKᵀ/√d_k, A = softmax(S), O = AV, as LaTeX
    matrices revealed one step per overlay. Q, K, V are given, or drawn as small integers from a seed."""

    kind: ClassVar[str] = "attention-steps"
    body_key: ClassVar[str | None] = None
    q: tuple | None = field(default=None, metadata=opt("queries, an L × d_k matrix such as [[1, 0], [0, 1]]", optional(as_matrix)))
    k: tuple | None = field(default=None, metadata=opt("keys, an S × d_k matrix", optional(as_matrix)))
    v: tuple | None = field(default=None, metadata=opt("values, an S × d_v matrix", optional(as_matrix)))
    seed: int = field(default=0, metadata=opt("seed drawing Q, K, V (integers -2..2) when they are not given", as_int(0)))
    length: int = field(default=3, metadata=opt("number of tokens L = S when Q, K, V are drawn", as_int(1, 6)))
    d_k: int = field(default=2, metadata=opt("width of drawn queries and keys", as_int(1, 6)))
    d_v: int = field(default=2, metadata=opt("width of drawn values", as_int(1, 6)))
    precision: int = field(default=2, metadata=opt("decimals shown in the matrices", as_int(0, 4)))
    overlays: bool = field(default=True, metadata=opt("reveal one step per Beamer overlay", as_bool))

    def validate(self) -> None:
        given = {name: getattr(self, name) for name in ("q", "k", "v")}
        if any(m is not None for m in given.values()) and None in given.values():
            missing = [name for name, m in given.items() if m is None]
            raise BlockError("give all of q, k and v, or none of them (then they are drawn from the seed)", key=missing[0])
        if self.q is None:
            return
        q, k, v = self.q, self.k, self.v
        if len(q[0]) != len(k[0]):
            raise BlockError(f"q has {len(q[0])} columns but k has {len(k[0])}: queries and keys share d_k", key="k")
        if len(k) != len(v):
            raise BlockError(f"k has {len(k)} rows but v has {len(v)}: one value per key", key="v")
        if max(len(q), len(k), len(q[0]), len(v[0])) > 6:
            raise BlockError("at most 6 × 6 matrices fit on a slide", key="q")


@dataclass(frozen=True)
class PermutationSpec(FigureSpec):
    """``.permutation``: the same sentence with its tokens permuted, side by side. Without positional
    encoding the weights just permute with the tokens (attention is permutation-equivariant)."""

    kind: ClassVar[str] = "permutation"
    body_key: ClassVar[str | None] = "sentence"
    sentence: str = field(default="el gato se sentó en la alfombra", metadata=opt("the sentence to tokenize", as_str))
    order: tuple[int, ...] | None = field(default=None, metadata=opt("the new order of the tokens, e.g. [6, 5, 4, 3, 2, 1, 0] (auto: reversed)", optional(int_list(0))))
    seed: int = field(default=0, metadata=opt("seed of the embedding and of W_Q, W_K, W_V", as_int(0)))
    d_model: int = field(default=16, metadata=opt("width of the token vectors", as_int(1, 4096)))
    positional: bool = field(default=False, metadata=opt("add the sinusoidal positional encoding (then order matters)", as_bool))
    precision: int = field(default=2, metadata=opt("decimals of the weight printed in each cell", as_int(0, 4)))
    annotate: bool = field(default=True, metadata=opt("print the weight in each cell", as_bool))
    cmap: str = field(default="viridis", metadata=opt("colormap", as_choice(*COLORMAPS)))

    def validate(self) -> None:
        AttentionSpec.validate(self)
        if self.order is not None and sorted(self.order) != list(range(len(self.order))):
            raise BlockError(f"{list(self.order)} is not a permutation of 0..{len(self.order) - 1}", key="order")
        if len(self.sentence.split()) > 12:
            raise BlockError("at most 12 words fit two heatmaps on a slide", key="sentence")


@dataclass(frozen=True)
class ScalingSpec(FigureSpec):
    """``.scaling``: why scores are divided by √d_k — how peaked softmax gets as d_k grows, with and
    without the scale (Vaswani et al. 2017, §3.2.1, footnote 4), on random unit-variance q and k."""

    kind: ClassVar[str] = "scaling"
    d_k: tuple[int, ...] = field(default=(1, 4, 16, 64, 256, 1024), metadata=opt("the widths d_k to try, e.g. [1, 16, 256]", int_list(1, 65536)))
    keys: int = field(default=8, metadata=opt("number of keys S each query attends over", as_int(2, 1024)))
    samples: int = field(default=512, metadata=opt("random queries averaged per width", as_int(1, 100000)))
    seed: int = field(default=0, metadata=opt("seed of the random queries and keys", as_int(0)))

    def validate(self) -> None:
        if len(self.d_k) < 2:
            raise BlockError("give at least two widths", key="d_k")
        if max(self.d_k) * self.keys * self.samples > 2**27:
            raise BlockError(f"max(d_k) × keys × samples = {max(self.d_k) * self.keys * self.samples:,} numbers is too "
                             f"many to draw while building a slide (at most {2**27:,}); lower one of them",
                             key="d_k" if max(self.d_k) > 4096 else "samples")


@dataclass(frozen=True)
class TrainedSpec(FigureSpec):
    """``.trained-attention``: attention *learned* at build time. One attention layer is trained to
    reverse sequences of symbols (seeded, a second or so on one core); the heatmap shows where each
    output position learned to look: the anti-diagonal."""

    kind: ClassVar[str] = "trained-attention"
    seed: int = field(default=0, metadata=opt("seed of the data, the initial weights and the batch order", as_int(0)))
    seq_len: int = field(default=8, metadata=opt("length L of the sequences to reverse", as_int(2, 12)))
    vocab: str = field(default="ABCDEFGHIJ", metadata=opt("the symbols, one character each", as_str))
    steps: int = field(default=300, metadata=opt("training steps (Adam)", as_int(1, 20000)))
    d_model: int = field(default=32, metadata=opt("width of the model", as_int(2, 512)))
    heads: int = field(default=1, metadata=opt("attention heads (the figure shows their average)", as_int(1, 8)))
    precision: int = field(default=2, metadata=opt("decimals of the weight printed in each cell", as_int(0, 4)))
    annotate: bool = field(default=True, metadata=opt("print the weight in each cell", as_bool))
    cmap: str = field(default="viridis", metadata=opt("colormap", as_choice(*COLORMAPS)))

    def validate(self) -> None:
        if len(set(self.vocab)) != len(self.vocab) or len(self.vocab) < 2:
            raise BlockError("give at least two different symbols, each once", key="vocab")
        if len(self.vocab) ** self.seq_len < 2 * (4096 + 512):  # engine.toy.make_data's rule, checked before training
            raise BlockError(f"{len(self.vocab)}^{self.seq_len} sequences are too few to train and test on; "
                             "use more symbols or a longer seq_len", key="seq_len")
        if self.d_model % self.heads:
            raise BlockError(f"d_model = {self.d_model} must be divisible by heads = {self.heads}", key="heads")


KINDS: dict[str, type] = {spec.kind: spec for spec in (AttentionSpec, PosencSpec, StepsSpec, PermutationSpec,
                                                       ScalingSpec, TrainedSpec)}


@dataclass(frozen=True)
class Settings:
    """Document-wide settings: ``attnslides:`` metadata keys that belong to no block kind."""

    figures_dir: str = field(default="build/figures", metadata=opt("where figures and their JSON data are written", as_str))
    cache_dir: str = field(default="build/cache", metadata=opt("the content-addressed cache of figures", as_str))
    device: str = field(default="cpu", metadata=opt("where the engine runs: cpu, cuda, mps or auto", as_choice("auto", "cpu", "cuda", "mps")))
    lang: str | None = field(default=None, metadata=opt("language of figure labels: es or en (auto: the deck's lang)", optional(as_choice("es", "en"))))
    jobs: int = field(default=0, metadata=opt("worker processes for figures that miss the cache (0: one per core)", as_int(0, 64)))


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def keys_of(cls: type) -> dict[str, dataclasses.Field]:
    """The options of a spec class, by name."""
    return {f.name: f for f in dataclasses.fields(cls)}


def normalise_key(key: str) -> str:
    return str(key).strip().replace("-", "_")


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"


def _convert(cls: type, raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Check every key of ``raw`` against ``cls`` and parse its value."""
    fields = keys_of(cls)
    values = {}
    for key, value in raw.items():
        name = normalise_key(key)
        if name not in fields:
            raise BlockError(f"unknown option in {source}{_suggest(name, fields)}", key=str(key))
        try:
            values[name] = fields[name].metadata["parse"](value)
        except ValueError as exc:
            raise BlockError(f"bad value in {source}: {exc}", key=name) from None
    return values


def read_body(text: str, cls: type) -> dict[str, Any]:
    """The options written in a block's body.

    ``#| key: value`` lines (Quarto's style) are options wherever they stand. The rest of the body
    is a YAML mapping of options or, for a kind with a body key (``.attention``'s sentence), text.

    Raises:
        BlockError: if the body is neither of these; a YAML error says where it is.
    """
    lines = text.splitlines()
    marked = [re.sub(r"^\s*#\|\s?", "", line) for line in lines if re.match(r"^\s*#\|", line)]
    rest = "\n".join(line for line in lines if not re.match(r"^\s*#\|", line)).strip()
    options = _yaml_mapping("\n".join(marked), "the block's #| lines") if marked else {}
    if not rest:
        return options
    try:
        body = yaml.safe_load(rest)
    except yaml.YAMLError as exc:
        if cls.body_key:
            body = rest
        else:
            raise BlockError(f"the block's body must be YAML options (key: value): {_yaml_problem(exc)}") from None
    if isinstance(body, dict):
        twice = sorted(set(map(normalise_key, body)) & set(map(normalise_key, options)))
        if twice:
            raise BlockError("given both in a #| line and in the block's body; keep one", key=twice[0])
        return {**options, **body}
    if cls.body_key and isinstance(body, (str, int, float)):
        return {**options, cls.body_key: rest}
    raise BlockError(
        "the block's body must be YAML options (key: value)"
        + (f" or the {cls.body_key}" if cls.body_key else "")
    )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}"


def _yaml_mapping(text: str, source: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BlockError(f"could not read {source} as YAML: {_yaml_problem(exc)}") from None
    if not isinstance(value, dict):
        raise BlockError(f"{source} must be 'key: value' options")
    return value


def read_metadata(meta: dict[str, Any] | None) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """Split ``attnslides:`` metadata into :class:`Settings` and per-kind raw defaults.

    Raises:
        BlockError: for a key that is no setting, no kind and no option of any kind.
    """
    if meta is None or meta == "":
        meta = {}
    if not isinstance(meta, dict):
        raise BlockError(f"'attnslides:' must hold 'key: value' settings and options, got {meta!r}")
    settings_keys = keys_of(Settings)
    kind_defaults: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    flat: dict[str, Any] = {}
    settings_raw: dict[str, Any] = {}
    for key, value in meta.items():
        name = normalise_key(key)
        if key in KINDS:
            if not isinstance(value, dict):
                raise BlockError(f"'attnslides: {key}:' must hold options of .{key} blocks", key=key)
            _convert(KINDS[key], value, f"metadata 'attnslides: {key}:'")  # checked now, parsed per block
            kind_defaults[key] = {normalise_key(k): v for k, v in value.items()}
        elif name in settings_keys:
            settings_raw[name] = value
        elif any(name in keys_of(cls) for cls in KINDS.values()):
            flat[name] = value
        else:
            valid = set(settings_keys) | set(KINDS) | {k for cls in KINDS.values() for k in keys_of(cls)}
            raise BlockError(f"unknown key in the 'attnslides:' metadata{_suggest(name, valid)}", key=str(key))
    settings = Settings(**_convert(Settings, settings_raw, "metadata 'attnslides:'"))
    for kind, cls in KINDS.items():
        own = keys_of(cls)
        kind_defaults[kind] = {**{k: v for k, v in flat.items() if k in own}, **kind_defaults[kind]}
    return settings, kind_defaults


def parse_block(kind: str, attributes: dict[str, str], body: str, defaults: dict[str, Any] | None = None):
    """Parse one block into its spec dataclass.

    Args:
        kind: the block's class, a key of :data:`KINDS`.
        attributes: the block's ``key=value`` attributes (strings).
        body: the block's text.
        defaults: raw per-kind defaults from :func:`read_metadata`.

    Returns:
        An instance of ``KINDS[kind]``, validated.

    Raises:
        BlockError: for an unknown key (with the closest valid one), a bad value, a key given
            both as attribute and in the body, or a failed cross-option check.
    """
    cls = KINDS[kind]
    from_attributes = _convert(cls, attributes, "the block's attributes")
    from_body = _convert(cls, read_body(body, cls), "the block's body")
    twice = sorted(set(from_attributes) & set(from_body))
    if twice:
        raise BlockError("given both as an attribute and in the block's body; keep one", key=twice[0])
    from_meta = _convert(cls, defaults or {}, "metadata 'attnslides:'")
    spec = cls(**{**from_meta, **from_body, **from_attributes})
    spec.validate()
    return spec


def figure_options(spec) -> dict[str, Any]:
    """The options of ``spec`` that change its picture or data (caption, alt, size excluded)."""
    return {
        f.name: getattr(spec, f.name)
        for f in dataclasses.fields(spec)
        if f.metadata.get("figure", True)
    }


def describe(kind: str | None = None) -> str:
    """Help text of every option (of one kind, or of all), for ``attnslides options``."""
    lines = []
    for name, cls in KINDS.items():
        if kind and name != kind:
            continue
        summary = (cls.__doc__ or "").strip().splitlines()[0].split(":", 1)[-1].strip()
        lines.append(f".{name}: {summary}")
        for f in dataclasses.fields(cls):
            default = f.default
            default = "auto" if default is None else list(default) if isinstance(default, tuple) else default
            lines.append(f"    {f.name:<14} {f.metadata['help']} (default: {default})")
    if not kind:
        lines.append("document settings (metadata 'attnslides:'):")
        for f in dataclasses.fields(Settings):
            lines.append(f"    {f.name.replace('_', '-'):<14} {f.metadata['help']} (default: {f.default})")
    return "\n".join(lines)
