"""TVLT (Textless Vision-Language Transformer) for transformers 5.x.

Importing this package registers TVLT with the transformers Auto classes, so legacy checkpoints
(`"model_type": "tvlt"` without `auto_map`, e.g. `ZinengTang/tvlt-base`) load with `AutoModel.from_pretrained(...)`
and no remote code.
"""

from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining
from transformers import AutoFeatureExtractor, AutoModelForVideoClassification, AutoProcessor

# transformers 5.8-5.13 export, under this name, a placeholder that needs torchvision; the class itself does not
from transformers.models.auto.image_processing_auto import AutoImageProcessor

from .configuration_tvlt import TvltConfig
from .embedding_tvlt import TvltAudioVisualEmbedder
from .feature_extraction_tvlt import TvltFeatureExtractor
from .image_processing_tvlt import TvltImageProcessor
from .inputs_tvlt import TvltDataCollator
from .modeling_tvlt import TvltForAudioVisualClassification, TvltForPreTraining, TvltModel, TvltPreTrainedModel
from .pipeline_tvlt import TvltAudioVisualClassificationPipeline
from .processing_tvlt import TvltProcessor
from .retrieval_tvlt import TvltAudioVisualMatcher


__version__ = "0.1.0"


def _register_with_auto_classes() -> None:
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
    _register_pipeline()


def _register_pipeline() -> None:
    # A repo whose config.json has `custom_pipelines` still needs trust_remote_code=True (or `pipeline_class=`):
    # transformers prefers the repo's entry over the registry. The registry serves legacy checkpoints without it.
    from transformers.pipelines import PIPELINE_REGISTRY

    task = "audio-visual-classification"
    if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is not TvltAudioVisualClassificationPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            task,
            pipeline_class=TvltAudioVisualClassificationPipeline,
            pt_model=AutoModelForVideoClassification,
            type="multimodal",
        )


_register_with_auto_classes()

__all__ = [
    "TvltConfig",
    "TvltPreTrainedModel",
    "TvltModel",
    "TvltForPreTraining",
    "TvltForAudioVisualClassification",
    "TvltImageProcessor",
    "TvltFeatureExtractor",
    "TvltProcessor",
    "TvltAudioVisualClassificationPipeline",
    "TvltAudioVisualMatcher",
    "TvltAudioVisualEmbedder",
    "TvltDataCollator",
]
