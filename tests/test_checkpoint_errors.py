"""A broken checkpoint is one line naming the culprit, for `tvlt convert SRC` and the `--model` of `tvlt predict`,
`tvlt reconstruct` and `tvlt embed`: a code-running pickle (never run), a weight of the wrong shape or dtype, an
absurd config. The config is compared with the weight files' headers before anything big is allocated
(`tvlt.checkpoints.preflight`)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _av_toys import moving_square_frames, save_tiny_checkpoint, tone, write_clip
from conftest import offline_env
from safetensors.torch import load_file, save_file

from tvlt.checkpoints.errors import CheckpointError as ConversionError
from tvlt.checkpoints.preflight import check_checkpoint, find_weight_files
from tvlt.cli import main


TABLE = "tvlt.pixel_embeddings.temporal_embed"


class _RunsCodeWhenUnpickled:
    marker = None

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _edit_weights(folder: Path, edit) -> None:
    weights = load_file(folder / "model.safetensors")
    edit(weights)
    save_file(weights, folder / "model.safetensors")


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _pickle_bomb(folder: Path) -> None:
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    payload = _RunsCodeWhenUnpickled()
    payload.marker = str(folder.parent / "code-was-run")
    torch.save({**weights, "payload": payload}, folder / "pytorch_model.bin")


def _sharded(folder: Path, edit) -> None:
    """Two shards and an index, as `save_pretrained` writes big models; `edit` breaks the second shard."""
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    keys = sorted(weights)
    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in halves.items():
        shard = {key: weights[key] for key in part}
        if name.startswith("model-00002"):
            edit(shard)
        save_file(shard, folder / name)
    weight_map = {key: name for name, part in halves.items() for key in part}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _int_table(weights):
    weights[TABLE] = weights[TABLE].long()


def _long_table(weights):
    weights[TABLE] = torch.zeros(1, 7, weights[TABLE].shape[-1])


BREAKAGES = {
    "pickle": (_pickle_bomb, "pytorch_model.bin is refused: it pickles more than tensors"),
    "int-weight": (
        lambda f: _edit_weights(f, _int_table),
        f"`{TABLE}` is int64 in model.safetensors; expected a float",
    ),
    "wrong-shape": (
        lambda f: _edit_weights(f, _long_table),
        f"`{TABLE}` has shape (1, 7, 32) in model.safetensors, but config.json (`num_frames`=4) implies (1, 4, 32)",
    ),
    "sharded-wrong-shape": (
        lambda f: _sharded(
            f, lambda shard: shard.update({k: v[..., :-1].clone() for k, v in shard.items() if v.ndim > 1})
        ),
        "in the weight shards, but",
    ),
    "huge-hidden-size": (
        lambda f: _edit_config(f, hidden_size=2**30),
        "`hidden_size`=1073741824",  # a shape it implies, or torch's "Storage size calculation overflowed"
    ),
    "huge-intermediate-size": (
        lambda f: _edit_config(f, intermediate_size=2**62),
        "from config.json `intermediate_size`=4611686018427387904: Storage size calculation overflowed",
    ),
    "huge-num-frames": (
        lambda f: _edit_config(f, num_frames=10**12),
        "(`num_frames`=1000000000000) implies (1, 1000000000000, ",
    ),
    "negative-size": (
        lambda f: _edit_config(f, hidden_size=-32),
        "config.json field `hidden_size` is -32; expected a positive integer",
    ),
    "huge-layer-count": (
        lambda f: _edit_config(f, num_hidden_layers=10**6),
        "config.json field `num_hidden_layers` is 1000000, but model.safetensors holds 2 such layers",
    ),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    clip = write_clip(root / "clip.mp4", moving_square_frames(8), waveform=tone(440.0, 1.0))
    return {
        "classification": save_tiny_checkpoint(root / "classification", "classification"),
        "pretraining": save_tiny_checkpoint(root / "pretraining", "pretraining"),
        "clip": clip,
    }


def broken_copy(checkpoints, tmp_path, kind: str, breakage: str) -> Path:
    folder = tmp_path / f"{kind}-{breakage}"
    shutil.copytree(checkpoints[kind], folder)
    BREAKAGES[breakage][0](folder)
    return folder


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@pytest.mark.parametrize(
    "command, kind",
    [
        ("convert", "pretraining"),
        ("predict", "classification"),
        ("predict", "pretraining"),
        ("reconstruct", "pretraining"),
        ("embed", "pretraining"),
    ],
)
def test_a_broken_checkpoint_is_one_line_naming_the_culprit(checkpoints, tmp_path, capsys, command, kind, breakage):
    folder = broken_copy(checkpoints, tmp_path, kind, breakage)
    err = _one_line_error(command, folder, checkpoints["clip"], tmp_path, capsys)
    assert BREAKAGES[breakage][1] in err, err
    assert str(folder) in err or command == "convert" and "SRC" in err
    assert not (tmp_path / "code-was-run").exists()


@pytest.mark.parametrize("command", ["predict", "reconstruct", "embed"])
def test_a_model_folder_without_its_processor_says_how_to_add_it(checkpoints, tmp_path, capsys, command):
    """`model.save_pretrained(folder)` alone: say so, instead of transformers' "Can't load image processor"."""
    folder = tmp_path / "model-only"
    shutil.copytree(checkpoints["pretraining"], folder)
    for name in ("processor_config.json", "preprocessor_config.json"):
        (folder / name).unlink(missing_ok=True)
    err = _one_line_error(command, folder, checkpoints["clip"], tmp_path, capsys)
    assert f"--model {folder} has no processor settings (processor_config.json or preprocessor_config.json)" in err
    assert "processor.save_pretrained(folder)" in err and "tvlt convert" in err


def _one_line_error(command: str, folder: Path, clip: Path, tmp_path: Path, capsys) -> str:
    """Run `command` on the checkpoint `folder`; its one-line error (exit 2), once checked that nothing was written."""
    arguments = {
        "convert": [str(folder), str(tmp_path / "converted")],
        "predict": [str(clip), "--model", str(folder)],
        "reconstruct": [str(clip), "--model", str(folder), "--out", str(tmp_path / "recon.png")],
        "embed": [str(clip), "--model", str(folder), "--out", str(tmp_path / "e.parquet"), "--num-workers", "0"],
    }[command]
    capsys.readouterr()
    assert main([command, *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"tvlt {command}: error: "), err
    for output in ("converted", "recon.png", "e.parquet"):
        assert not (tmp_path / output).exists(), output
    return err


def test_a_sound_checkpoint_passes_the_check(checkpoints, tmp_path):
    from tvlt import TvltConfig, TvltForPreTraining

    folder = checkpoints["pretraining"]
    config = TvltConfig.from_pretrained(folder)
    model = check_checkpoint(TvltForPreTraining, config, find_weight_files(folder), "x")
    assert next(model.parameters()).is_meta  # nothing allocated
    sharded = tmp_path / "sharded"
    shutil.copytree(folder, sharded)
    _sharded(sharded, lambda shard: None)
    check_checkpoint(TvltForPreTraining, config, find_weight_files(sharded), "x")


def test_an_encoder_only_checkpoint_still_loads_into_a_model_with_heads(checkpoints, tmp_path):
    """transformers fills missing heads (e.g. a classifier fine-tuned from an encoder): the check lets that through."""
    from tvlt import TvltConfig, TvltForAudioVisualClassification

    folder = tmp_path / "encoder"
    shutil.copytree(checkpoints["pretraining"], folder)
    _edit_weights(folder, lambda w: [w.pop(k) for k in list(w) if not k.startswith("tvlt.")])
    config = TvltConfig.from_pretrained(folder)
    check_checkpoint(TvltForAudioVisualClassification, config, find_weight_files(folder), "x")


def test_missing_weights_and_bad_indexes_are_named(tmp_path, checkpoints):
    folder = tmp_path / "no-weights"
    shutil.copytree(checkpoints["pretraining"], folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ConversionError, match="has a config.json but no weights"):
        find_weight_files(folder)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../escape.safetensors"}}))
    with pytest.raises(ConversionError, match="not file names"):
        find_weight_files(folder)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "gone.safetensors"}}))
    with pytest.raises(ConversionError, match="names shards that are missing: gone.safetensors"):
        find_weight_files(folder)


# -- a Hub id when the Hub cannot be reached ------------------------------------------------------------------------


@pytest.fixture()
def no_hub(monkeypatch, tmp_path):
    """An empty Hub cache and a Hub that refuses connections (a closed local port), not in offline mode."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    return constants


@pytest.mark.parametrize("offline", [True, False], ids=["offline-mode", "no-network"])
@pytest.mark.parametrize("command", ["convert", "predict", "reconstruct"])
def test_an_unreachable_hub_and_an_uncached_id_say_so_at_once(
    no_hub, monkeypatch, checkpoints, tmp_path, capsys, command, offline
):
    monkeypatch.setattr(no_hub, "HF_HUB_OFFLINE", offline)
    clip = str(checkpoints["clip"])
    arguments = {
        "convert": ["someone/tvlt-tiny", str(tmp_path / "out")],
        "predict": [clip, "--model", "someone/tvlt-tiny"],
        "reconstruct": [clip, "--model", "someone/tvlt-tiny", "--out", str(tmp_path / "x.png")],
    }[command]
    capsys.readouterr()
    assert main([command, *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Retrying" not in err, err
    reason = "offline mode: HF_HUB_OFFLINE is set" if offline else "no connection: "
    assert "the Hugging Face Hub cannot be reached (" + reason in err, err
    assert "and someone/tvlt-tiny is not in the local cache" in err, err


def test_a_cached_hub_id_converts_without_network(no_hub, checkpoints, tmp_path, caplog):
    from test_convert import _fake_hub_cache

    _fake_hub_cache(Path(no_hub.HF_HUB_CACHE), "someone/tvlt-tiny", checkpoints["pretraining"])
    with caplog.at_level("WARNING", logger="tvlt.conversion"):
        assert main(["convert", "someone/tvlt-tiny", str(tmp_path / "out")]) == 0
    assert "The Hub cannot be reached (no connection: " in caplog.text and "using the cached copy" in caplog.text
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.fixture()
def counting_hub():
    """A Hub whose every connection is accepted, counted and dropped at once (a network that cannot reach it):
    the count is how many times the processes of a command asked."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    connections = []

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed at teardown
                return
            connections.append(1)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connections
    server.close()


@pytest.mark.parametrize(
    "kind, command",
    [
        ("classification", ["predict", "CLIP"]),
        ("pretraining", ["predict", "CLIP"]),
        ("pretraining", ["reconstruct", "CLIP", "--out", "OUT/r.png"]),
        ("pretraining", ["embed", "CLIP", "--out", "OUT/e.jsonl", "--num-workers", "2"]),
        ("classification", ["predict", "CLIP", "--out", "OUT/p.jsonl", "--num-workers", "2"]),
    ],
)
def test_a_cached_hub_id_is_asked_for_once_when_the_hub_cannot_be_reached(
    counting_hub, checkpoints, tmp_path, kind, command
):
    """Not in offline mode, the Hub unreachable, the repo cached: the first load decides with one request to use
    the cache; the weights, the model, the processor, the pipeline and the decoding workers then read it without
    asking again (each would otherwise wait out its own timeouts and retries on a network that is down)."""
    from test_convert import _fake_hub_cache

    endpoint, connections = counting_hub
    _fake_hub_cache(tmp_path / "hf-home" / "hub", "someone/tvlt-tiny", checkpoints[kind])
    env = offline_env(tmp_path, HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1")
    del env["HF_HUB_OFFLINE"]  # the network is down, but nobody said so
    arguments = [
        str(checkpoints["clip"]) if word == "CLIP" else word.replace("OUT", str(tmp_path)) for word in command
    ]
    done = subprocess.run(
        [sys.executable, "-m", "tvlt", *arguments, "--model", "someone/tvlt-tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "The Hub cannot be reached (no connection: " in done.stderr
    assert len(connections) == 1, done.stderr[-3000:]
