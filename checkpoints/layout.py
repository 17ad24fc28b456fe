"""The files of a transformers-format TVLT checkpoint folder (standard library only: the command line's checks
before torch use them too)."""

# transformers' weight files, in the order `from_pretrained` prefers them; an index names the shards
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# processor config files a TVLT processor may write (transformers 5.x writes the first; 4.40.2 wrote the second)
PROCESSOR_CONFIG_FILES = ("processor_config.json", "preprocessor_config.json")


__all__ = ["PROCESSOR_CONFIG_FILES", "WEIGHT_FILES"]
