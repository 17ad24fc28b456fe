"""The model card (`README.md`) of a converted TVLT repo."""

from huggingface_hub import ModelCard, ModelCardData

from .. import __version__
from ..remote_code_tvlt import (
    ARCHITECTURES,
    CLASSIFIER_ARCHITECTURE,
    PIPELINE_TASK,
    PRETRAINING_ARCHITECTURE,
    custom_pipelines,
)
from .sources import KIND_ORIGINAL, LoadedCheckpoint


DEFAULT_LICENSE = "mit"  # the license of the TVLT code and released weights (zinengtang/TVLT)
LABELS_LISTED = 50  # a card lists a head's labels up to this many, then says how many more

_CITATION = """@inproceedings{tang2022tvlt,
  title     = {TVLT: Textless Vision-Language Transformer},
  author    = {Zineng Tang and Jaemin Cho and Yixin Nie and Mohit Bansal},
  booktitle = {NeurIPS},
  year      = {2022}
}"""


def render_model_card(checkpoint: LoadedCheckpoint, repo_id: str | None = None) -> str:
    """The card: metadata for the Hub, what the checkpoint is, and how to load it with remote code."""
    config = checkpoint.model.config
    architecture = type(checkpoint.model).__name__
    auto_class, classifier = ARCHITECTURES[architecture], architecture == CLASSIFIER_ARCHITECTURE
    metadata = ModelCardData(
        library_name="transformers",
        license=checkpoint.license or DEFAULT_LICENSE,
        pipeline_tag="video-classification" if classifier else "feature-extraction",
        tags=["tvlt", "custom_code", "audio-visual", "video", "audio"] + ([PIPELINE_TASK] if classifier else []),
        base_model=checkpoint.hub_repo,  # None (left out) for local sources: their Hub origin is unknown
    )
    repo = repo_id or "<owner>/<this-repo>"
    sections = [
        f"# TVLT: {checkpoint.description[0].upper()}{checkpoint.description[1:]}",
        (
            "[TVLT](https://arxiv.org/abs/2209.14156) (Textless Vision-Language Transformer, Tang et al., NeurIPS "
            "2022) is one transformer over video-frame patches and audio-spectrogram patches, pre-trained with "
            "masked autoencoding and vision-audio matching, without text or speech recognition.\n\n"
            f"This repo was converted from `{checkpoint.source}` by `tvlt convert`. It carries its own code "
            "(transformers dropped TVLT after 4.40.2), so it loads with transformers 5.x and `trust_remote_code=True`."
        ),
        "## Usage",
        _usage(repo, auto_class, architecture),
        _outputs(config, architecture),
        *(["## Labels", _labels(config)] if classifier else []),
        "## Preprocessing",
        _preprocessing(checkpoint),
        "## Model",
        _model_table(config, architecture),
        "## Provenance",
        _provenance(checkpoint),
        "## License",
        _license(checkpoint),
        "## Citation",
        f"```bibtex\n{_CITATION}\n```",
    ]
    text = "\n\n".join(section.strip("\n") for section in sections) + "\n"
    # ModelCardData writes the YAML (quoting a license such as "other: see LICENSE"); ModelCard parses it back
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{text}"))


def _usage(repo: str, auto_class: str, architecture: str) -> str:
    lines = [
        "```python",
        "import torch",
        f"from transformers import AutoProcessor, {auto_class}",
        "",
        f'repo = "{repo}"',
        '# remote code runs on your machine: review it and pin that commit (e.g. revision="<commit sha>")',
        'revision = "main"',
        "processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True, revision=revision)",
        f"model = {auto_class}.from_pretrained(repo, trust_remote_code=True, revision=revision).eval()",
        "",
        "# files (a video file's own audio track works too), or arrays: images=frames (T, H, W, 3) uint8,",
        "# audio=waveform with sampling_rate=...",
        'inputs = processor(videos="clip.mp4", audio="clip.wav", return_tensors="pt")',
        "with torch.no_grad():",
        "    outputs = model(**inputs)",
        "```",
    ]
    if architecture == CLASSIFIER_ARCHITECTURE and custom_pipelines():
        lines += [
            "",
            "Or with the pipeline that comes with the repo:",
            "",
            "```python",
            "from transformers import pipeline",
            "",
            f'classifier = pipeline("{PIPELINE_TASK}", model=repo, trust_remote_code=True, revision=revision)',
            'classifier("clip.mp4")',
            "```",
        ]
    return "\n".join(lines)


def _outputs(config, architecture: str) -> str:
    if architecture == CLASSIFIER_ARCHITECTURE:
        labels = [config.id2label[i] for i in range(config.num_labels)]
        if config.problem_type == "regression":
            reading = f"`outputs.logits[:, 0]` is the predicted {labels[0]} score (regression)."
        elif config.problem_type == "multi_label_classification":
            reading = "Labels are independent: `outputs.logits.sigmoid()` gives one probability per label."
        else:
            reading = "`outputs.logits.softmax(-1)` gives the class probabilities."
        return f"{reading} The labels are below (`model.config.id2label`)."
    if architecture == PRETRAINING_ARCHITECTURE:
        parts = []
        if config.task_matching:
            parts.append(
                "`outputs.matching_logits.sigmoid()` is the probability that the video and the audio belong together."
            )
        if config.task_mae:
            parts.append(
                "`model(**inputs, reconstruct=True)` also runs the masked autoencoder: `pixel_logits` and "
                "`audio_logits` reconstruct every patch, `pixel_label_masks` and `audio_label_masks` mark the hidden "
                "ones."
            )
        return " ".join(parts)
    return "`outputs.last_hidden_state` holds `[CLS, video patches, audio patches]` features."


def _labels(config) -> str:
    rows = [f"| {index} | `{config.id2label[index]}` |" for index in range(min(config.num_labels, LABELS_LISTED))]
    more = config.num_labels - len(rows)
    head = {
        "regression": "Each output is a predicted value:",
        "multi_label_classification": "Independent labels (multi-label):",
    }.get(config.problem_type, "Classes (one per clip):")
    table = "\n".join([head, "", "| index | label |", "| --- | --- |", *rows])
    return table + (f"\n\n... and {more} more: `model.config.id2label` has all {config.num_labels}." if more else "")


def _provenance(checkpoint: LoadedCheckpoint) -> str:
    import torch
    import transformers

    if checkpoint.kind == KIND_ORIGINAL:
        source = (
            f"`{checkpoint.source}`, an original research checkpoint of [zinengtang/TVLT]"
            "(https://github.com/zinengtang/TVLT); its keys were renamed, the fused `qkv` projections split into "
            "query/key/value and the position tables cut to the config's lengths. With the same inputs the model "
            "gives the original code's outputs"
        )
    elif checkpoint.hub_repo:
        source = (
            f"the Hub repo [`{checkpoint.hub_repo}`](https://huggingface.co/{checkpoint.hub_repo}) at commit "
            f"`{checkpoint.hub_commit}`, a transformers-format TVLT checkpoint; its weights are copied unchanged. "
            "With the same inputs the model gives transformers 4.40.2's outputs"
        )
    else:
        source = (
            f"`{checkpoint.source}`, a transformers-format TVLT checkpoint (a 4.40.2 `save_pretrained` folder or "
            "one of ours); its weights are copied unchanged. With the same inputs the model gives transformers "
            "4.40.2's outputs"
        )
    return (
        f"Converted from {source} (within 1e-5; the tvlt test suite checks this on tiny checkpoints). Written by "
        f"`tvlt convert` (tvlt {__version__}, transformers {transformers.__version__}, torch "
        f"{torch.__version__.split('+')[0]})."
    )


def _license(checkpoint: LoadedCheckpoint) -> str:
    if checkpoint.license:
        weights = f"The weights' license, `{checkpoint.license}`, is the one the source's model card states."
    else:
        weights = (
            f"The weights' license, `{DEFAULT_LICENSE}`, is that of the TVLT code and released weights "
            "([zinengtang/TVLT](https://github.com/zinengtang/TVLT)); change the card's `license` if yours differ."
        )
    return f"{weights} The code files of this repo are Apache-2.0 (the transformers TVLT port they continue)."


def _preprocessing(checkpoint: LoadedCheckpoint) -> str:
    if checkpoint.kind == KIND_ORIGINAL:
        return (
            "The processor reproduces the original research pipeline these weights were trained with "
            '(`preprocessing_mode="original"`): 8 frames spread over the clip, black borders cropped, bicubic '
            "resize to the frame size, values in [-1, 1]; audio resampled to 44.1 kHz with torchaudio's windowed-sinc "
            "resampler, DC removed, 128-bin log-mel spectrogram that always gets 1 to 16 frames of -1 (to the next "
            "multiple of 16) before it is cut at 1024 frames; patches whose mean is -1 are masked. As in the original "
            "model, the CLS token takes the padding flag of the first audio patch "
            "(`cls_mask_from_first_audio_patch`): a clip that starts with silence hides CLS from the other tokens."
        )
    if not checkpoint.processor_saved:
        # the source had no processor settings: build_processor gave it TVLT-base preprocessing at the model's sizes
        return (
            "The source checkpoint had no processor settings: the processor is TVLT-base's preprocessing "
            "(transformers 4.40.2's), sized to this model (frame size, frames, spectrogram length, mel bins, patches)."
        )
    return "The processor is the one saved with the source checkpoint (transformers 4.40.2's TVLT preprocessing)."


def _model_table(config, architecture: str) -> str:
    rows = [
        ("architecture", architecture),
        (
            "hidden size / layers / heads",
            f"{config.hidden_size} / {config.num_hidden_layers} / {config.num_attention_heads}",
        ),
        (
            "frames (max) / frame size / patch",
            f"{config.num_frames} / {'x'.join(map(str, config.frame_size))} / {config.image_patch_size}",
        ),
        (
            "spectrogram (max frames x mel bins) / patch",
            f"{config.spectrogram_length} x {config.frequency_length} / {config.audio_patch_size}",
        ),
    ]
    if architecture == PRETRAINING_ARCHITECTURE and config.task_mae:
        rows.append(
            (
                "MAE decoder hidden size / layers / heads",
                f"{config.decoder_hidden_size} / {config.decoder_num_hidden_layers} / "
                f"{config.decoder_num_attention_heads}",
            )
        )
    return "\n".join(["| | |", "| --- | --- |", *(f"| {name} | {value} |" for name, value in rows)])


__all__ = ["DEFAULT_LICENSE", "render_model_card"]
