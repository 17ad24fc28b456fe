"""Loads TVLT repos through the transformers Auto classes and records what comes out.

`tests/test_remote_code.py` runs it twice on the same job: in the test process with the `tvlt` package (reference
outputs), and as a script in a clean interpreter where `tvlt` cannot be imported, so that only the repos' own code
(`trust_remote_code=True`) can serve:

    python -I -S remote_code_client.py SITE_PACKAGES JOB_JSON

(`-I -S`: no PYTHONPATH, no user site, no .pth files, hence no editable install; SITE_PACKAGES gives transformers and
torch back.) Only the standard library, torch, numpy and transformers are imported here. The job's `fetch` cases
(remote code only) load one TVLT class each, alone, and save it: see `fetch_and_save`.
"""

import importlib
import json
import sys
from pathlib import Path


def _tensors(output) -> dict:
    return {name: value for name, value in output.items() if hasattr(value, "shape")}


def _code_files_next_to(cls) -> list[str]:
    return sorted(path.name for path in Path(sys.modules[cls.__module__].__file__).parent.glob("*.py"))


def run_job(job: dict, trust_remote_code: bool) -> tuple[dict, dict]:
    """Run every case of `job`; return (tensors by name, report of classes, code folders and saved files)."""
    import numpy as np
    import torch
    import transformers

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same reduction order in both processes, for bit-identical outputs
    tensors, report = {}, {"classes": {}, "code_files": {}, "saved": {}}
    try:
        for case in job["cases"]:
            name, repo = case["name"], case["repo"] if trust_remote_code else case["package_repo"]
            inputs = torch.load(case["inputs"], weights_only=True)
            models = {}
            for auto_name in case["auto_classes"]:
                key = f"{name}/{auto_name}"
                model = getattr(transformers, auto_name).from_pretrained(repo, trust_remote_code=trust_remote_code)
                model.eval()
                models[auto_name] = model
                report["classes"][key] = f"{type(model).__module__}.{type(model).__name__}"
                report["code_files"][key] = _code_files_next_to(type(model))
                with torch.no_grad():
                    if auto_name == "AutoModelForPreTraining":
                        torch.manual_seed(123)  # the reference's MAE masks
                        output = model(**inputs, reconstruct=True)
                    else:
                        output = model(**inputs)
                tensors.update({f"{key}/{k}": v for k, v in _tensors(output).items()})

            processor = transformers.AutoProcessor.from_pretrained(repo, trust_remote_code=trust_remote_code)
            report["classes"][f"{name}/AutoProcessor"] = f"{type(processor).__module__}.{type(processor).__name__}"
            report["code_files"][f"{name}/AutoProcessor"] = _code_files_next_to(type(processor))
            raw = torch.load(case["raw_inputs"], weights_only=True)
            processed = processor(
                images=raw["video"].numpy(),
                audio=raw["audio"].numpy().astype(np.float32),
                sampling_rate=int(raw["sampling_rate"]),
                return_tensors="pt",
            )
            tensors.update({f"{name}/processor/{k}": v for k, v in _tensors(processed).items()})
            first_auto, first_model = next(iter(models.items()))
            with torch.no_grad():
                output = first_model(**processed)
            tensors.update({f"{name}/processed/{first_auto}/{k}": v for k, v in _tensors(output).items()})

            if case.get("resave_to"):
                # saving what remote code loaded must give a complete repo again, which loads again
                folder = Path(case["resave_to"])
                first_model.save_pretrained(folder)
                processor.save_pretrained(folder)
                report["saved"][name] = {
                    "files": sorted(path.name for path in folder.iterdir()),
                    "config": json.loads((folder / "config.json").read_text()),
                    "processor_config": json.loads((folder / "processor_config.json").read_text()),
                }
                again = getattr(transformers, first_auto).from_pretrained(folder, trust_remote_code=trust_remote_code)
                with torch.no_grad():
                    if first_auto == "AutoModelForPreTraining":
                        torch.manual_seed(123)
                        output = again.eval()(**inputs, reconstruct=True)
                    else:
                        output = again.eval()(**inputs)
                tensors.update({f"{name}/resaved/{first_auto}/{k}": v for k, v in _tensors(output).items()})
    finally:
        torch.set_num_threads(threads)
    return tensors, report


def fetch_and_save(case: dict) -> dict:
    """Load one TVLT class as users do (`loader`: an Auto class, "pipeline", "matcher" or "embedder") from a repo no
    class was loaded from before in this process, save it to `save_to`, and report the code files next to the loaded
    class and the files saved."""
    import transformers
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    loader, repo, folder = case["loader"], case["repo"], Path(case["save_to"])
    if loader == "pipeline":
        loaded = transformers.pipeline(case["task"], model=repo, trust_remote_code=True, device="cpu")
        loaded.save_pretrained(folder)
    elif loader in ("matcher", "embedder"):
        name = {
            "matcher": "retrieval_tvlt.TvltAudioVisualMatcher",
            "embedder": "embedding_tvlt.TvltAudioVisualEmbedder",
        }
        loaded = get_class_from_dynamic_module(name[loader], repo).from_pretrained(repo)
        loaded.model.save_pretrained(folder)
        loaded.processor.save_pretrained(folder)
    else:
        # transformers 5.4-5.17 export a placeholder that needs torchvision as AutoImageProcessor; the class does not
        image_auto = importlib.import_module("transformers.models.auto.image_processing_auto")
        auto_class = getattr(image_auto if loader == "AutoImageProcessor" else transformers, loader)
        loaded = auto_class.from_pretrained(repo, trust_remote_code=True)
        loaded.save_pretrained(folder)
    cls = type(loaded)
    return {
        "class": f"{cls.__module__}.{cls.__name__}",
        "fetched": _code_files_next_to(cls),
        "saved": sorted(path.name for path in folder.iterdir()),
    }


def load_processor_settings(case: dict) -> dict:
    """Load a processor (`loader`: AutoProcessor, or the two single-component Auto classes together) with remote
    code only; report both halves' settings (their `to_dict`) and what they make of the case's raw inputs."""
    import numpy as np
    import transformers

    # transformers 5.4-5.17 export a placeholder that needs torchvision as AutoImageProcessor; the class does not
    image_auto = importlib.import_module("transformers.models.auto.image_processing_auto")
    repo = case["repo"]
    if case["loader"] == "AutoProcessor":
        processor = transformers.AutoProcessor.from_pretrained(repo, trust_remote_code=True)
        image, audio = processor.image_processor, processor.feature_extractor
    else:
        image = image_auto.AutoImageProcessor.from_pretrained(repo, trust_remote_code=True)
        audio = transformers.AutoFeatureExtractor.from_pretrained(repo, trust_remote_code=True)
    raw = np.load(case["raw_inputs"])
    pixels = image([list(raw["video"])], return_tensors="np")
    sound = audio(raw["audio"], sampling_rate=44100, return_tensors="np")
    np.savez(case["output"], **{k: v for k, v in {**pixels, **sound}.items() if hasattr(v, "shape")})
    return {"image_processor": image.to_json_string(), "feature_extractor": audio.to_json_string()}


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
    import torch

    tensors, report = run_job(job, trust_remote_code=True)
    report["fetch"] = {}
    for case in job.get("fetch", []):
        try:
            report["fetch"][case["name"]] = fetch_and_save(case)
        except Exception as error:  # noqa: BLE001 - reported per case, so that one failure hides no other
            report["fetch"][case["name"]] = {"error": f"{type(error).__name__}: {error}"}
    report["settings"] = {case["name"]: load_processor_settings(case) for case in job.get("settings", [])}
    report["sys_path"] = sys.path
    torch.save(tensors, job["output"])
    Path(job["report"]).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
