"""Checking a checkpoint's config against its weight files before anything big is allocated.

The model is built on the meta device (shapes, no memory) and compared with the tensors' shapes and dtypes read from
the files' headers (safetensors) or a `weights_only` load onto the meta device (PyTorch files, which never runs pickled
code). Every mismatch is one `CheckpointError` line naming the key or config field and what was expected. Used by
`tvlt convert` and by the `--model` of every other command, before `from_pretrained`.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CheckpointError, first_line
from .layout import WEIGHT_FILES


# the model's encoder inside a model with heads (`PreTrainedModel.base_model_prefix`)
_BASE_PREFIX = "tvlt."
# config fields that count the layers of a stack, and the keys of that stack's layers
_LAYER_STACKS = {
    "num_hidden_layers": re.compile(r"^(?:tvlt\.)?encoder\.layer\.(\d+)\."),
    "decoder_num_hidden_layers": re.compile(r"^decoder\.decoder_layers\.(\d+)\."),
}
# config fields that are sizes of the model (positive integers, or lists of them)
_SIZE_FIELDS = (
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "decoder_hidden_size",
    "decoder_num_attention_heads",
    "decoder_intermediate_size",
    "image_size",
    "image_patch_size",
    "audio_patch_size",
    "spectrogram_length",
    "frequency_length",
    "num_frames",
    "num_image_channels",
    "num_audio_channels",
    "num_labels",
)
# safetensors dtype names, as torch spells them
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64",
    "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool", "C64": "complex64",
}  # fmt: skip


@dataclass(frozen=True)
class TensorSpec:
    """What a checkpoint says about one tensor, without its data."""

    shape: tuple[int, ...]
    dtype: str
    floating: bool


# ---- reading tensor specs -------------------------------------------------------------------------------------------


def find_weight_files(folder: Path) -> list[Path]:
    """The weight files `from_pretrained` would read in a local checkpoint folder (shards of an index included)."""
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return [path]
        shards = shard_names(path)
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            raise CheckpointError(f"{path} names shards that are missing: {', '.join(missing[:3])}.")
        return [folder / shard for shard in shards]
    raise CheckpointError(f"{folder} has a config.json but no weights: expected one of {', '.join(WEIGHT_FILES)}.")


def shard_names(index: Path) -> list[str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"{index} is not a readable weight index (a `weight_map` of shard names): {first_line(error)}"
        ) from None
    if not shards or not all(isinstance(s, str) and "/" not in s and s not in ("", ".", "..") for s in shards):
        raise CheckpointError(f"{index} names no shards, or names that are not file names.")
    return shards


def tensor_specs(path: Path) -> dict[str, TensorSpec]:
    """Shapes and dtypes of a safetensors or PyTorch weight file, read without loading the tensors' data."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as weights:
                specs = {}
                for key in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                    tensor = weights.get_slice(key)
                    dtype = _SAFETENSORS_DTYPES.get(tensor.get_dtype(), tensor.get_dtype())
                    specs[key] = TensorSpec(tuple(tensor.get_shape()), dtype, dtype.startswith(("float", "bfloat")))
                return specs
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path} is not a readable safetensors file: {first_line(error)}") from None
    state_dict = load_weights_only(path, map_location="meta")
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors.")
    return specs_of(state_dict)


def specs_of(state_dict: dict) -> dict[str, TensorSpec]:
    return {
        key: TensorSpec(tuple(value.shape), str(value.dtype).removeprefix("torch."), value.is_floating_point())
        for key, value in state_dict.items()
    }


def load_weights_only(path: Path, map_location="cpu"):
    """`torch.load(weights_only=True)`: a file that pickles code (or anything but tensors and containers) is refused,
    in one line, without running it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} is refused: it pickles more than tensors and plain containers ({_pickle_reason(error)}), and "
            "unpickling it could run code. Only state dicts are read (torch.load(weights_only=True)). If you trust "
            "the file, save its state dict alone: torch.save(torch.load(path, weights_only=False)['state_dict'], "
            "'x.ckpt')."
        ) from None
    except Exception as error:  # noqa: BLE001 - the unpickler fails on foreign bytes with any error type
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint torch.load can read ({type(error).__name__}: {first_line(error)})"
        ) from None


def _pickle_reason(error: Exception) -> str:
    # torch's message is many lines; the line that names what was found is the useful one
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    found = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (found or lines or [type(error).__name__])[0]


# ---- comparing the config with the specs ----------------------------------------------------------------------------


def check_config_sizes(config, source: str) -> None:
    """Each size field of the config a positive integer (lists: of positive integers)."""
    for name in _SIZE_FIELDS:
        value = getattr(config, name, None)
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise CheckpointError(f"{source}: config.json field `{name}` is {value!r}; expected a positive integer.")
    for name in _LAYER_STACKS:
        value = getattr(config, name, None)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise CheckpointError(f"{source}: config.json field `{name}` is {value!r}; expected an integer >= 0.")


def check_layer_counts(config, specs: dict[str, TensorSpec], source: str, file_label: str) -> None:
    """A stack of layers the weights hold must have as many layers as the config says (before building it)."""
    for name, pattern in _LAYER_STACKS.items():
        indices = {int(match.group(1)) for key in specs if (match := pattern.match(key))}
        expected = getattr(config, name, None)
        if indices and expected is not None and expected != max(indices) + 1:
            raise CheckpointError(
                f"{source}: config.json field `{name}` is {expected}, but {file_label} holds {max(indices) + 1} such "
                "layers."
            )


def build_on_meta(model_class, config, source: str):
    """The model on the meta device (no memory); a config it cannot be built from is one line naming the field."""
    check_config_sizes(config, source)
    try:
        with torch.device("meta"):
            return model_class(config)
    except (RuntimeError, ValueError, OverflowError, TypeError, MemoryError) as error:
        message = first_line(error)
        # the largest size in torch's message that a field gives is the absurd one
        sizes = sorted({int(n) for n in re.findall(r"-?\d+", message) if len(n) < 40}, key=abs, reverse=True)
        fields = next((found for size in sizes if (found := _fields_in(config, [size]))), [])
        culprit = f"config.json {', '.join(fields)}" if fields else "its config.json"
        raise CheckpointError(
            f"{source}: cannot build {model_class.__name__} from {culprit}: {message}. Check the sizes in config.json."
        ) from None


def check_fit(model, specs: dict[str, TensorSpec], config, source: str, file_label: str) -> None:
    """
    Every tensor of the weights that has a place in `model` (a meta model) has that place's shape and a floating-point
    dtype. Keys are matched as transformers loads them: with or without the encoder's `tvlt.` prefix.
    """
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    mismatches = []  # (key, shape in the file, shape the model needs, config fields that give the differing sizes)
    for key, spec in specs.items():
        place = _place_of(key, expected)
        if place is None:
            continue
        if not spec.floating:
            raise CheckpointError(
                f"{source}: `{key}` is {spec.dtype} in {file_label}; expected a floating-point tensor (float32, "
                "float16 or bfloat16)."
            )
        needed = expected[place]
        if spec.shape != needed:
            mismatches.append((key, place, spec.shape, needed))
    if mismatches:
        # the first mismatch whose size comes straight from a config field names the likely culprit best
        named = ((m, _controlling_fields(model, config, m[1], m[2], m[3])) for m in mismatches)
        first = None
        for mismatch, fields in named:
            first = first or (mismatch, fields)
            if fields:
                first = (mismatch, fields)
                break
        (key, _, theirs, needed), fields = first
        implied = f"config.json ({', '.join(fields)}) implies" if fields else "the model needs"
        more = f" ({len(mismatches) - 1} more tensors differ)" if len(mismatches) > 1 else ""
        raise CheckpointError(
            f"{source}: `{key}` has shape {_shape(theirs)} in {file_label}, but {implied} {_shape(needed)}{more}."
        )


def check_checkpoint(model_class, config, weight_files: list[Path], source: str):
    """Config and weight files together, before `from_pretrained` allocates anything; returns the meta model."""
    specs, labels = {}, {}
    for path in weight_files:
        file_specs = tensor_specs(path)
        specs.update(file_specs)
        labels.update(dict.fromkeys(file_specs, Path(path).name))
    label = Path(weight_files[0]).name if len(weight_files) == 1 else "the weight shards"
    check_config_sizes(config, source)
    check_layer_counts(config, specs, source, label)
    model = build_on_meta(model_class, config, source)
    check_fit(model, specs, config, source, label)
    return model


def _place_of(key: str, expected: dict) -> str | None:
    if key in expected:
        return key
    if _BASE_PREFIX + key in expected:
        return _BASE_PREFIX + key
    if key.startswith(_BASE_PREFIX) and key[len(_BASE_PREFIX) :] in expected:
        return key[len(_BASE_PREFIX) :]
    return None


def _controlling_fields(model, config, place: str, theirs: tuple, needed: tuple) -> list[str]:
    """
    The config fields that set the differing sizes of `place`: each field whose value is such a size is halved (odd
    ones doubled) in a copy of the config, and kept if the tensor's shape changes with it (a meta build: no memory,
    only on errors).
    """
    if len(theirs) != len(needed):
        return []
    differing = {ours for mine, ours in zip(theirs, needed, strict=True) if mine != ours}
    fields = []
    for field in _fields_in(config, differing, names_only=True):
        value = getattr(config, field)

        def other(v):
            return v // 2 if v % 2 == 0 else 2 * v

        changed_value = [other(v) for v in value] if isinstance(value, (list, tuple)) else other(value)
        try:
            changed = type(config).from_dict({**config.to_dict(), field: changed_value})
            with torch.device("meta"):
                shape = tuple(type(model)(changed).state_dict()[place].shape)
        except Exception:  # noqa: BLE001 - a doubled size the config or the model refuses tells nothing
            continue
        if shape != needed:
            fields.append(f"`{field}`={value}")
    return fields


def _fields_in(config, numbers, names_only: bool = False) -> list[str]:
    """The size fields of `config` whose value is one of `numbers`: the candidate culprits of a size error."""
    wanted = {int(n) for n in numbers}
    found = []
    for name in (*_SIZE_FIELDS, *_LAYER_STACKS):
        value = getattr(config, name, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, int) and v in wanted and v not in (0, 1) for v in values):
            found.append(name if names_only else f"`{name}`={value}")
    return found


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


__all__ = [
    "WEIGHT_FILES",
    "TensorSpec",
    "build_on_meta",
    "check_checkpoint",
    "check_config_sizes",
    "check_fit",
    "check_layer_counts",
    "find_weight_files",
    "load_weights_only",
    "shard_names",
    "specs_of",
    "tensor_specs",
]
