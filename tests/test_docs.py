"""The README and docs/ cannot drift from the code: every code block runs (`tests/docs_runner.py`, on stand-ins for
the files it names) or says why it cannot run offline, outputs shown are the outputs printed, and links resolve."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ORIGINAL_FIXTURES, REPO_ROOT, offline_env, requires_path
from docs_runner import OUTPUT_MARK, PAGES, RUNNABLE, read_blocks, run_page


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One child process runs every page's blocks (a few minutes of tiny models at most)."""
    sandbox = tmp_path_factory.mktemp("docs")
    results_file = sandbox / "results.json"
    env = offline_env(sandbox, TVLT_ORIGINAL_FIXTURES=str(ORIGINAL_FIXTURES), OMP_NUM_THREADS="2")
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "docs_runner.py"), str(sandbox), str(results_file), *PAGES],
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return json.loads(results_file.read_text())


@requires_path(ORIGINAL_FIXTURES, "the original-format checkpoints the docs' stand-ins are made from")
@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_of_the_page_runs_or_says_why_not(results, page):
    failed = [f"{r['where']}:\n{r['error']}" for r in results[page] if r["status"] == "failed"]
    assert not failed, "\n\n".join(failed)
    blocks = read_blocks(page)
    assert [r["where"] for r in results[page]] == [block.where for block in blocks], "the runner skipped blocks"


@pytest.mark.parametrize("page", PAGES)
def test_every_block_is_code_that_runs_text_with_a_language_or_an_output(page):
    for block in read_blocks(page):
        assert block.language or block.is_output, f"{block.where}: a block needs a language (```text for plain text)"
        if block.not_run is not None:
            assert block.language in RUNNABLE, f"{block.where}: only code blocks can be marked as not run"


@pytest.mark.parametrize("page", PAGES)
def test_links_between_pages_resolve(page):
    text = (REPO_ROOT / page).read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (REPO_ROOT / page).parent / file if file else REPO_ROOT / page
        assert path.exists(), f"{page}: the link {target} names a missing file"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"{page}: the link {target} names a missing heading"


def _anchors(path: Path) -> set[str]:
    # GitHub's rule: lower case, punctuation other than - and _ dropped, spaces to dashes
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in HEADING.findall(path.read_text())}


def test_the_readme_is_a_front_door():
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    first_screen = "\n".join(text.splitlines()[:20])
    # install, test, the quickstart and each main job, one click from the first screen
    jobs = ["install-and-test", "quickstart-offline-nothing-to-download", "two-ways-in", "classify-clips-the-pipeline"]
    jobs += ["clip-embeddings", "a-batch-job-over-many-clips", "fine-tuning", "convert-and-publish", "documentation"]
    for anchor in jobs:
        assert f"](#{anchor})" in first_screen, f"the README's first screen does not link to #{anchor}"
        assert anchor in _anchors(REPO_ROOT / "README.md"), f"the README has no section #{anchor}"
    linked = {target.partition("#")[0] for target in LINK.findall(text)}
    missing = {f"docs/{path.name}" for path in (REPO_ROOT / "docs").glob("*.md")} - linked
    assert not missing, f"docs pages the README does not link: {sorted(missing)}"


def test_the_readme_install_and_test_commands_are_what_ci_runs():
    install = next(block for block in read_blocks("README.md") if "pip install" in block.code)
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    torch_pin = re.search(r"torch==[\d.]+", install.code).group(0)
    assert f'TORCH_PIN="{torch_pin}"' in ci
    assert '-e ".[video,test]"' in install.code and '"$root[video,test]"' in ci
    assert "python -m pytest tests" in install.code and "-m pytest tests" in ci


def test_the_runner_reports_a_failing_block_and_a_wrong_output(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint('one')\n```\n\n"
        f"{OUTPUT_MARK}\n```\ntwo\n```\n\n"
        "```python\nraise ValueError('broken example')\n```\n\n"
        "<!-- not run: needs a GPU -->\n```python\nraise SystemExit\n```\n"
    )
    statuses = [(r["status"], r.get("error", r.get("reason", ""))) for r in run_page(str(page), tmp_path)]
    assert [status for status, _ in statuses] == ["ok", "failed", "failed", "not run"]
    assert "the page says:\ntwo" in statuses[1][1] and "broken example" in statuses[2][1]
    assert statuses[3][1] == "needs a GPU"
