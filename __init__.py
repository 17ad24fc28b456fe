"""TVLT (Textless Vision-Language Transformer) for transformers 5.x.

Importing this package registers TVLT with the transformers Auto classes, so legacy checkpoints
(`"model_type": "tvlt"` without `auto_map`, e.g. `ZinengTang/tvlt-base`) load with `AutoModel.from_pretrained(...)`
and no remote code.

The classes below are imported on first use (PEP 562), and the registration (which imports torch and transformers,
seconds of start-up) is deferred in one case only: when the interpreter was started to run the `tvlt` command line
(the `tvlt` console script, or `python -m tvlt`). The command line then registers right after it has parsed and
checked its arguments, so that `tvlt --help` and argument errors answer at once. Any use of a class of this package
(`tvlt.TvltModel`, `from tvlt import TvltModel`) registers too.
"""

import importlib
import sys


__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "TvltConfig": "configuration_tvlt",
    "TvltPreTrainedModel": "modeling_tvlt",
    "TvltModel": "modeling_tvlt",
    "TvltForPreTraining": "modeling_tvlt",
    "TvltForAudioVisualClassification": "modeling_tvlt",
    "TvltImageProcessor": "image_processing_tvlt",
    "TvltFeatureExtractor": "feature_extraction_tvlt",
    "TvltProcessor": "processing_tvlt",
    "TvltAudioVisualClassificationPipeline": "pipeline_tvlt",
    "TvltAudioVisualMatcher": "retrieval_tvlt",
    "TvltAudioVisualEmbedder": "embedding_tvlt",
    "TvltDataCollator": "inputs_tvlt",
}

_registered = False


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _register_with_auto_classes()
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def _register_with_auto_classes() -> None:
    """Register TVLT with the transformers Auto classes and the pipeline registry (once; `import tvlt` does it)."""
    global _registered
    if _registered:
        return
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForAudioClassification,
        AutoModelForPreTraining,
        AutoModelForVideoClassification,
        AutoProcessor,
    )

    # transformers 5.4-5.17 export, under this name, a placeholder that needs torchvision; the class itself does not
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    from .configuration_tvlt import TvltConfig
    from .feature_extraction_tvlt import TvltFeatureExtractor
    from .image_processing_tvlt import TvltImageProcessor
    from .modeling_tvlt import TvltForAudioVisualClassification, TvltForPreTraining, TvltModel
    from .processing_tvlt import TvltProcessor
    from .processing_utils_tvlt import size_auto_class_loads

    AutoConfig.register(TvltConfig.model_type, TvltConfig, exist_ok=True)
    AutoModel.register(TvltConfig, TvltModel, exist_ok=True)
    AutoModelForPreTraining.register(TvltConfig, TvltForPreTraining, exist_ok=True)
    # transformers has no audio-visual task: the classifier answers to both single-modality classification autos
    AutoModelForVideoClassification.register(TvltConfig, TvltForAudioVisualClassification, exist_ok=True)
    AutoModelForAudioClassification.register(TvltConfig, TvltForAudioVisualClassification, exist_ok=True)
    # `slow_image_processor_class=` is the keyword that 5.0 and later 5.x (which deprecates it quietly) both accept
    AutoImageProcessor.register(TvltConfig, slow_image_processor_class=TvltImageProcessor, exist_ok=True)
    AutoFeatureExtractor.register(TvltConfig, TvltFeatureExtractor, exist_ok=True)
    AutoProcessor.register(TvltConfig, TvltProcessor, exist_ok=True)
    # from 5.25 these two read the saved settings themselves and call `from_dict`, never the class's own
    # `from_pretrained`: this tells TVLT's `from_dict` where they load from, to size the processor to the model beside
    size_auto_class_loads(AutoImageProcessor)
    size_auto_class_loads(AutoFeatureExtractor)
    _register_pipeline(AutoModelForVideoClassification)
    _registered = True


def _register_pipeline(auto_model_class) -> None:
    # A repo whose config.json has `custom_pipelines` still needs trust_remote_code=True (or `pipeline_class=`):
    # transformers prefers the repo's entry over the registry. The registry serves legacy checkpoints without it.
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipeline_tvlt import TASK, TvltAudioVisualClassificationPipeline

    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not TvltAudioVisualClassificationPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            TASK,
            pipeline_class=TvltAudioVisualClassificationPipeline,
            pt_model=auto_model_class,
            type="multimodal",
        )


def _started_to_run_the_command_line() -> bool:
    """Whether this interpreter was started to run the `tvlt` command line, which registers once it has checked its
    arguments. Anything else (a library user's `import tvlt`) registers at import. A wrong "no" only costs time."""
    # `python -m tvlt`: while the module to run is being located (which imports this package), sys.argv[0] is "-m"
    # (documented for sys.argv); sys.orig_argv ends with the module name followed by sys.argv[1:]
    if sys.argv[:1] == ["-m"]:
        try:
            spec = sys.orig_argv[len(sys.orig_argv) - len(sys.argv)]
        except (AttributeError, IndexError):
            return False
        module = spec[spec.index("m") + 1 :] if spec.startswith("-") and "m" in spec else spec  # `-mtvlt`, `-Imtvlt`
        return module in ("tvlt", "tvlt.__main__")
    # the `tvlt` console script (pip writes `from tvlt.cli import main; sys.exit(main())`, on Windows too): the
    # statement importing this package is __main__'s `import tvlt.cli` / `from tvlt.cli import ...`
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_globals is globals() or frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        frame = frame.f_back
    if frame is None or frame.f_globals.get("__name__") != "__main__":
        return False
    import opcode

    code, offset = frame.f_code.co_code, frame.f_lasti  # the instruction being run: IMPORT_NAME <index in co_names>
    return (
        offset + 1 < len(code)
        and code[offset] == opcode.opmap["IMPORT_NAME"]
        and frame.f_code.co_names[code[offset + 1]] == "tvlt.cli"
    )


if not _started_to_run_the_command_line():
    _register_with_auto_classes()

__all__ = list(_EXPORTS)
