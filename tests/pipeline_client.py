"""Runs the `audio-visual-classification` pipeline, the matcher and the embedder of TVLT repos with remote code only.

`tests/test_pipeline.py` starts it in a clean interpreter where `tvlt` cannot be imported:

    python -I -S pipeline_client.py SITE_PACKAGES JOB_JSON

(`-I -S`: no PYTHONPATH, no user site, no .pth files, hence no editable install; SITE_PACKAGES gives transformers and
torch back.) It writes what it got to the job's `output` JSON. Only the standard library, numpy, torch and
transformers are imported here.
"""

import json
import sys
from pathlib import Path


def run_job(job: dict) -> dict:
    import torch
    from transformers import pipeline
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    torch.set_num_threads(1)  # the same reduction order as the reference run
    results = {"classify": {}, "match": {}, "embed": {}, "classes": {}}
    for name, case in job.get("classify", {}).items():
        classifier = pipeline("audio-visual-classification", model=case["repo"], trust_remote_code=True, device="cpu")
        results["classes"][name] = f"{type(classifier).__module__}.{type(classifier).__name__}"
        results["classify"][name] = classifier(case["inputs"], **case.get("kwargs", {}))
    for name, case in job.get("match", {}).items():
        matcher_class = get_class_from_dynamic_module("retrieval_tvlt.TvltAudioVisualMatcher", case["repo"])
        matcher = matcher_class.from_pretrained(case["repo"])
        results["classes"][name] = f"{matcher_class.__module__}.{matcher_class.__name__}"
        results["match"][name] = matcher.score_matrix(case["videos"], case["audios"]).tolist()
    for name, case in job.get("embed", {}).items():
        embedder_class = get_class_from_dynamic_module("embedding_tvlt.TvltAudioVisualEmbedder", case["repo"])
        embedder = embedder_class.from_pretrained(case["repo"])
        results["classes"][name] = f"{embedder_class.__module__}.{embedder_class.__name__}"
        results["embed"][name] = embedder(case["inputs"], **case.get("kwargs", {})).tolist()
    results["tvlt_modules"] = sorted(name for name in sys.modules if name == "tvlt" or name.startswith("tvlt."))
    return results


def main(site_packages: str, job_file: str) -> int:
    sys.path.append(site_packages)
    try:
        import tvlt  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        print(f"tvlt is importable from {tvlt.__file__}: this process is not isolated", file=sys.stderr)
        return 3
    job = json.loads(Path(job_file).read_text())
    Path(job["output"]).write_text(json.dumps(run_job(job), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
