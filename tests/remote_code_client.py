"""Loads TVLT repos through the transformers Auto classes and records what comes out.

`tests/test_remote_code.py` runs it twice on the same job: in the test process with the `tvlt` package (reference
outputs), and as a script in a clean interpreter where `tvlt` cannot be imported, so that only the repos' own code
(`trust_remote_code=True`) can serve:

    python -I -S remote_code_client.py SITE_PACKAGES JOB_JSON

(`-I -S`: no PYTHONPATH, no user site, no .pth files, hence no editable install; SITE_PACKAGES gives transformers and
torch back.) Only the standard library, torch, numpy and transformers are imported here.
"""

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
    report["sys_path"] = sys.path
    torch.save(tensors, job["output"])
    Path(job["report"]).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
