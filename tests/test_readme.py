"""The README and docs/ stay true to the code: the settings table, the error and RPC tables, the links.

The settings table is generated (``scripts/settings_table.py``); the other tables are written by hand and
checked here against the one source each mirrors, so a change to the code that leaves the README behind
fails with a message saying what to update.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from service.core import errors
from service.server.errors import ERROR_TABLE
from service.settings import Settings
from tests.scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 300
# Figures and pages other work writes; a link to them may land before the file does.
PENDING = {"docs/images/web_page.png", "docs/bench/fast_style_quality.md", "docs/training/ablation.md"}


def load_generator() -> ModuleType:
    return load_script("settings_table")


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_generator()


def readme() -> str:
    return README.read_text()


def test_readme_settings_table_is_the_generated_one(gen: ModuleType) -> None:
    assert gen.current_table(readme()) == gen.table(), (
        "README.md's settings table differs from service/settings.py; regenerate it with "
        "`python scripts/settings_table.py --write`"
    )


def test_settings_table_has_every_field_with_its_default(gen: ModuleType) -> None:
    rows = {var.strip("`"): (default, text) for var, default, text in gen.rows()}
    assert len(rows) == len(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        _default, text = rows[f"ATELIER_{name.upper()}"]
        assert field.description, f"Settings.{name} needs a description= (the README table shows it)"
        assert text.startswith(field.description.replace("|", "\\|"))
    assert rows["ATELIER_GRPC_PORT"][0] == "`50051`"
    assert rows["ATELIER_MAX_IMAGE_BYTES"][0] == "`33554432` (32 MiB)"
    assert rows["ATELIER_VGG16_WEIGHTS"][0] == "unset"
    assert rows["ATELIER_ORT_PROVIDERS"][0] == '`["CUDAExecutionProvider", "CPUExecutionProvider"]`'
    assert "`auto`, `cpu`, `cuda`" in rows["ATELIER_DEVICE"][1]


def test_replace_table_swaps_only_the_marked_part(gen: ModuleType) -> None:
    text = f"intro\n{gen.BEGIN}\n| old |\n{gen.END}\noutro\n"
    new = gen.replace_table(text, "| new |\n")
    assert new == f"intro\n{gen.BEGIN}\n| new |\n{gen.END}\noutro\n"
    assert gen.current_table(new) == "| new |\n"
    with pytest.raises(ValueError):
        gen.replace_table("no markers here", "| new |\n")


def test_readme_is_a_short_guide() -> None:
    lines = readme().count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to a page in docs/"
    )


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_readme_error_table_matches_the_server_table() -> None:
    rows = {row[0].strip("`"): row for row in table_rows(readme(), "| reason | gRPC | HTTP |")}
    assert set(rows) == {cls.reason for cls in ERROR_TABLE}, "one README row per error class"
    for cls, status in ERROR_TABLE.items():
        row = rows[cls.reason]
        assert row[1] == f"`{status.grpc.name}`", f"{cls.__name__}: README says {row[1]}"
        assert row[2] == str(status.http), f"{cls.__name__}: README says {row[2]}"
    assert set(ERROR_TABLE) == set(errors.ALL_ERRORS) | {errors.AtelierError}


def test_readme_rpc_table_lists_every_rpc() -> None:
    from google.protobuf import descriptor_pool

    from service.api.v1 import atelier_pb2  # noqa: F401  (registers the descriptors)

    service = descriptor_pool.Default().FindServiceByName("atelier.v1.Atelier")
    rows = table_rows(readme(), "| RPC | kind |")
    assert {row[0].strip("`") for row in rows} == {m.name for m in service.methods}
    for row in rows:
        method = service.methods_by_name[row[0].strip("`")]
        streaming = "server stream" if method.server_streaming else "unary"
        assert row[1] == streaming, row


def local_links(path: Path) -> list[tuple[str, str]]:
    """(file, anchor) of each relative link and image in a markdown file; URLs left out."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # code blocks hold no links
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    out = []
    for target in targets:
        if not re.match(r"[a-z]+:", target):
            file, _, anchor = target.partition("#")
            out.append((file or path.name, anchor))
    return out


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    found: set[str] = set()
    counts: dict[str, int] = {}
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


@pytest.mark.parametrize(
    "page",
    [
        "README.md",
        "models/README.md",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")),
    ],
)
def test_links_point_at_files_that_exist(page: str) -> None:
    path = ROOT / page
    missing = []
    for target, anchor in local_links(path):
        resolved = (path.parent / target).resolve()
        if not resolved.exists():
            if str(resolved.relative_to(ROOT)) not in PENDING:
                missing.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            missing.append(f"{target}#{anchor}")
    assert not missing, f"{page} links to missing files or headings: {missing}"


def test_models_folder_holds_only_what_is_served() -> None:
    """Loss curves and logs live in docs/training/; models/ is what the server loads, plus its README."""
    allowed = re.compile(r".+\.(onnx|json)$|README\.md$")
    strays = [p.name for p in (ROOT / "models").iterdir() if p.is_file() and not allowed.match(p.name)]
    assert not strays, f"move these out of models/ (loss curves go to docs/training/): {strays}"
    assert list((ROOT / "docs" / "training").glob("*.loss.png")), "the loss curves are in docs/training/"
