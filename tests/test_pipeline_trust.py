"""The trust boundary: what a deck can make ``attnslides build`` do.

Decks crafted to run code, read a file outside their project or write one, through their metadata,
a pandoc defaults file they name (``attnslides: {pandoc-defaults: FILE}``), includes and pictures,
in every output format (the LaTeX ones up to their ``.tex``: the refusals come before LaTeX). Each
build must refuse, naming the key, and leave no marker, no secret in any output, no file outside;
``--allow-outside-files`` and the lecturer's own options after ``--`` are not confined.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from filters.pipeline.build import build
from filters.pipeline.errors import BuildError

ATTNSLIDES = str(Path(sys.executable).with_name("attnslides"))
SECRET = "SECRETO-7c1e-no-debe-salir"
# a 1×1 PNG, with the secret after its end (readers ignore it; pandoc copies the bytes)
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
FORMATS = ["beamer", "latex", "revealjs", "docx", "pptx"]
OUTPUTS = {"beamer": "d.tex", "latex": "d-handout.tex", "revealjs": "d-html/index.html", "docx": "d.docx", "pptx": "d.pptx"}


@pytest.fixture
def where(tmp_path, monkeypatch):
    """``proj/`` (the project, the current folder: no git repository above it) and ``outside/``
    beside it, which holds the secret; LaTeX is not run (the ``.tex`` is the output looked at)."""
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    proj.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    (outside / "secret.png").write_bytes(PNG + SECRET.encode())
    (outside / "refs.bib").write_text("@book{sec, title={" + SECRET + "}, author={A}, year={2020}}\n")
    monkeypatch.chdir(proj)
    monkeypatch.setattr("filters.pipeline.build.to_pdf", lambda tex, **_: tex)
    return proj, outside


def deck(proj: Path, body: str = "# Hola\n\nTexto.\n", *, defaults: dict | None = None, meta: str = "") -> Path:
    """``proj/d.md`` with ``body``, naming ``proj/defaults.yaml`` (written from ``defaults``)."""
    import yaml

    front = "---\ntitle: T\nlang: es\n" + meta
    if defaults is not None:
        (proj / "defaults.yaml").write_text(yaml.safe_dump(defaults))
        front += "attnslides:\n  pandoc-defaults: defaults.yaml\n"
    path = proj / "d.md"
    path.write_text(front + "---\n\n" + body)
    return path


def everything_written(*folders: Path) -> bytes:
    """The bytes of every file under ``folders``, Word's and PowerPoint's zip members unpacked."""
    out = b""
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            if path.suffix in (".docx", ".pptx"):
                with zipfile.ZipFile(path) as z:
                    out += b"".join(z.read(name) for name in z.namelist())
            else:
                out += path.read_bytes()
    return out


def refused(path: Path, fmt: str, capfd, *, execute: bool = True, options=()) -> str:
    """Build ``path`` expecting a refusal; return what the build said (the error and stderr)."""
    with pytest.raises(BuildError) as caught:
        build(path, Path("build"), to=fmt, execute=execute, pandoc_options=list(options))
    said = str(caught.value) + capfd.readouterr().err
    assert not (path.parent / "build" / OUTPUTS[fmt]).exists(), "nothing half-written"
    return said


# ---- code: a defaults file's filters ----

MARKER_LUA = "local f = io.open('{marker}', 'w'); f:write('ran'); f:close()\n"
MARKER_SH = "#!/bin/sh\necho ran > '{marker}'\ncat\n"


@pytest.mark.parametrize("form", ["lua string", "lua map", "json map", "list of one"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_no_exec_runs_no_filter_a_decks_defaults_file_names(where, capfd, form, fmt):
    proj, outside = where
    marker = outside / "marker"
    (proj / "f.lua").write_text(MARKER_LUA.format(marker=marker))
    (proj / "f.sh").write_text(MARKER_SH.format(marker=marker))
    os.chmod(proj / "f.sh", 0o755)
    filters = {"lua string": "f.lua", "lua map": {"type": "lua", "path": "f.lua"},
               "json map": {"type": "json", "path": "./f.sh"}, "list of one": ["f.lua"]}[form]
    path = deck(proj, defaults={"filters": filters if isinstance(filters, list) else [filters]})
    build(path, Path("build"), to=fmt, execute=False)
    assert not marker.exists(), "the deck's filter ran under --no-exec"
    assert "are not run" in capfd.readouterr().err, "the build says what it left out"


def test_without_no_exec_a_decks_own_filter_in_its_project_runs(where):
    proj, outside = where
    marker = outside / "marker"
    (proj / "f.lua").write_text(MARKER_LUA.format(marker=marker))
    build(deck(proj, defaults={"filters": ["f.lua"]}), Path("build"), to="docx")
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("form", ["list", "string", "map"])
def test_a_filter_outside_the_project_is_refused_even_when_code_runs(where, capfd, form):
    proj, outside = where
    (outside / "f.lua").write_text(MARKER_LUA.format(marker=outside / "marker"))
    name = str(outside / "f.lua")
    filters = {"list": [name], "string": name, "map": [{"type": "lua", "path": name}]}[form]
    said = refused(deck(proj, defaults={"filters": filters}), "docx", capfd)
    assert "filters" in said and "outside the project" in said
    assert not (outside / "marker").exists()


@pytest.mark.parametrize("defaults, key", [({"from": "reader.lua"}, "reader"), ({"data-dir": "datos"}, "data-dir")])
def test_no_exec_refuses_a_lua_reader_or_a_data_folder(where, capfd, defaults, key):
    proj, outside = where
    (proj / "reader.lua").write_text(f"os.execute('touch {outside / 'marker'}')\n")
    (proj / "datos").mkdir()
    said = refused(deck(proj, defaults=defaults), "docx", capfd, execute=False)
    assert key in said and "--no-exec" in said
    assert not (outside / "marker").exists()


# ---- reading outside: includes, templates, bibliographies … ----


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", ["include-before-body", "include-after-body", "include-in-header"])
def test_an_include_outside_the_project_is_refused(where, capfd, fmt, key):
    proj, outside = where
    said = refused(deck(proj, defaults={key: [str(outside / "secret.txt")]}), fmt, capfd)
    assert key in said and "secret.txt" in said and "outside the project" in said
    assert SECRET.encode() not in everything_written(proj)


@pytest.mark.parametrize("key, name", [
    ("template", "secret.txt"), ("csl", "secret.txt"), ("bibliography", "refs.bib"),
    ("citation-abbreviations", "secret.txt"), ("metadata-file", "secret.txt"), ("metadata-files", "secret.txt"),
    ("reference-doc", "secret.txt"), ("abbreviations", "secret.txt"), ("syntax-definitions", "secret.xml"),
    ("highlight-style", "secret.theme"), ("epub-cover-image", "secret.png"), ("css", "secret.txt"),
    ("resource-path", "."), ("data-dir", "."), ("input-files", "secret.txt")])
def test_every_file_a_decks_defaults_file_names_is_confined(where, capfd, key, name):
    proj, outside = where
    value = str(outside / name)
    listed = ("metadata-files", "input-files", "resource-path", "syntax-definitions")
    path = deck(proj, defaults={key: [value] if key in listed else value})
    said = refused(path, "docx", capfd)
    assert key in said and "outside the project" in said


@pytest.mark.parametrize("value", [True, 3, {"a": "b"}, ["img", 4]])
def test_a_resource_path_that_is_no_folder_is_an_error_naming_the_key(where, capfd, value):
    """Before: ``resource-path: true`` in a deck's defaults file crashed the build with a TypeError
    (found by make fuzz)."""
    proj, _ = where
    assert "resource-path" in refused(deck(proj, defaults={"resource-path": value}), "docx", capfd)


def test_a_relative_path_that_climbs_out_is_refused(where, capfd):
    proj, _ = where
    said = refused(deck(proj, defaults={"include-before-body": "../outside/secret.txt"}), "revealjs", capfd)
    assert "include-before-body" in said
    assert SECRET.encode() not in everything_written(proj)


def test_environment_variables_in_a_defaults_file_are_expanded_before_the_check(where, capfd, monkeypatch):
    proj, outside = where
    monkeypatch.setenv("ELSEWHERE", str(outside))
    said = refused(deck(proj, defaults={"include-before-body": "${ELSEWHERE}/secret.txt"}), "docx", capfd)
    assert "include-before-body" in said


def test_the_metadata_of_a_defaults_file_is_checked(where, capfd):
    proj, outside = where
    path = deck(proj, defaults={"citeproc": True, "metadata": {"bibliography": str(outside / "refs.bib")}})
    said = refused(path, "docx", capfd)
    assert "bibliography" in said
    assert SECRET.encode() not in everything_written(proj)


@pytest.mark.parametrize("block", ["front matter", "a later block"])
@pytest.mark.parametrize("fmt", ["beamer", "docx"])
def test_a_bibliography_outside_the_project_in_the_decks_metadata_is_refused(where, capfd, block, fmt):
    proj, outside = where
    bib = f"bibliography: {outside / 'refs.bib'}\n"
    body = "# Hola\n\nComo dice [@sec].\n"
    path = deck(proj, body + (f"\n---\n{bib}...\n" if block == "a later block" else ""),
                meta=bib if block == "front matter" else "")
    said = refused(path, fmt, capfd, options=["--citeproc"])
    assert "bibliography" in said and "refs.bib" in said
    assert SECRET.encode() not in everything_written(proj)


# ---- writing outside ----


@pytest.mark.parametrize("key", ["output-file", "log-file", "extract-media"])
@pytest.mark.parametrize("fmt", ["beamer", "docx"])
def test_a_decks_defaults_file_may_not_write_files(where, capfd, key, fmt):
    proj, outside = where
    target = outside / "written"
    said = refused(deck(proj, defaults={key: str(target)}), fmt, capfd)
    assert key in said
    assert not target.exists()


@pytest.mark.parametrize("key", ["embed-resources", "self-contained", "defaults"])
def test_keys_that_would_read_any_file_unchecked_are_refused(where, capfd, key):
    proj, outside = where
    (proj / "other.yaml").write_text(f"include-before-body: {outside / 'secret.txt'}\n")
    said = refused(deck(proj, defaults={key: "other.yaml" if key == "defaults" else True}), "revealjs", capfd)
    assert key in said
    assert SECRET.encode() not in everything_written(proj)


# ---- the defaults file itself ----


def test_a_defaults_file_outside_the_project_is_refused(where, capfd):
    proj, outside = where
    (outside / "d.yaml").write_text(f"include-before-body: {outside / 'secret.txt'}\n")
    path = proj / "d.md"
    path.write_text(f"---\ntitle: T\nattnslides:\n  pandoc-defaults: {outside / 'd.yaml'}\n---\n\n# Hola\n")
    said = refused(path, "docx", capfd)
    assert "pandoc-defaults" in said and "outside the project" in said


@pytest.mark.parametrize("kind", ["a pipe", "a folder"])
def test_a_defaults_file_that_is_no_regular_file_is_refused_at_once(where, kind):
    proj, _ = where
    if kind == "a pipe":
        os.mkfifo(proj / "d.yaml")
    else:
        (proj / "d.yaml").mkdir()
    (proj / "d.md").write_text("---\ntitle: T\nattnslides:\n  pandoc-defaults: d.yaml\n---\n\n# Hola\n")
    try:
        done = subprocess.run([ATTNSLIDES, "build", "d.md", "--to", "docx"], cwd=proj, capture_output=True,
                              text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the build waited on the pipe")
    assert done.returncode == 1 and "pandoc-defaults" in done.stderr and "not a regular file" in done.stderr


# ---- pictures ----


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("how", ["absolute", "relative", "file URL", "a link inside"])
def test_a_picture_outside_the_project_is_refused_naming_its_slide(where, capfd, fmt, how):
    proj, outside = where
    (proj / "enlace.png").symlink_to(outside / "secret.png")
    url = {"absolute": str(outside / "secret.png"), "relative": "../outside/secret.png",
           "file URL": f"file://{outside / 'secret.png'}", "a link inside": "enlace.png"}[how]
    said = refused(deck(proj, f"# La diapositiva\n\n![Foto]({url})\n"), fmt, capfd, execute=False)
    assert "La diapositiva" in said and url in said and "outside the project" in said
    assert SECRET.encode() not in everything_written(proj)


@pytest.mark.parametrize("fmt", ["docx", "pptx"])
def test_word_and_powerpoint_fetch_no_picture_from_the_network(where, capfd, fmt):
    proj, _ = where
    said = refused(deck(proj, "# Red\n\n![Foto](http://127.0.0.1:9/x.png)\n"), fmt, capfd)
    assert "Red" in said and "network" in said


@pytest.mark.parametrize("fmt", FORMATS)
def test_pictures_inside_the_project_still_build(where, fmt):
    proj, _ = where
    (proj / "img").mkdir()
    (proj / "img" / "a.png").write_bytes(PNG)
    build(deck(proj, "# Foto\n\n![Una](img/a.png)\n\n![Otra](./img/../img/a.png)\n"), Path("build"), to=fmt)


# ---- what the lecturer allows ----


@pytest.mark.parametrize("fmt", ["docx", "revealjs"])
def test_allow_outside_files_lets_the_deck_read_outside(where, fmt):
    proj, outside = where
    path = deck(proj, f"# Foto\n\n![Una]({outside / 'secret.png'})\n",
                defaults={"include-before-body": str(outside / "secret.txt")})
    build(path, Path("build"), to=fmt, confine=False)
    assert SECRET.encode() in everything_written(proj / "build")


def test_the_lecturers_own_options_are_not_confined(where):
    proj, outside = where
    build(deck(proj), Path("build"), to="docx", pandoc_options=["-B", str(outside / "secret.txt")])
    assert SECRET.encode() in everything_written(proj / "build")


def test_the_command_line_option_is_documented_and_passed_on(where):
    proj, outside = where
    deck(proj, f"# Foto\n\n![Una]({outside / 'secret.png'})\n")
    shown = subprocess.run([ATTNSLIDES, "build", "--help"], capture_output=True, text=True).stdout
    assert "--allow-outside-files" in shown
    done = subprocess.run([ATTNSLIDES, "build", "d.md", "--to", "docx"], cwd=proj, capture_output=True, text=True)
    assert done.returncode == 1 and "--allow-outside-files" in done.stderr and "«Foto»" in done.stderr
    done = subprocess.run([ATTNSLIDES, "build", "d.md", "--to", "docx", "--allow-outside-files"], cwd=proj,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ---- generated hostile decks ----

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# make test: a fixed few; make fuzz: ATTNSLIDES_FUZZ_EXAMPLES fresh ones (a fifth of them: each is a build)
EXAMPLES = max(20, int(os.environ.get("ATTNSLIDES_FUZZ_EXAMPLES", "200")) // 5)
RANDOM = os.environ.get("ATTNSLIDES_FUZZ_RANDOM", "") not in ("", "0")
KEYS = ["include-before-body", "include-after-body", "include-in-header", "template", "csl", "bibliography",
        "metadata-file", "resource-path", "data-dir", "reference-doc", "abbreviations", "syntax-definitions",
        "highlight-style", "css", "output-file", "log-file", "extract-media", "embed-resources", "defaults",
        "filters", "from", "metadata", "variables", "title-prefix", "citeproc", "slide-level"]
# {out}: the folder outside; names inside the project: inside.txt, f.lua (writes marker-in beside it),
# enlace.txt (a link to the secret), other.yaml (a defaults file naming the secret)
VALUES = ["{out}/secret.txt", "../outside/secret.txt", "${{ELSEWHERE}}/secret.txt", "file://{out}/secret.txt",
          "inside.txt", "f.lua", "{out}/f.lua", "{out}/written", "enlace.txt", "other.yaml", "{out}", ".", "tango",
          "{out}/secret.png", "markdown", "{out}/r.lua", "http://127.0.0.1:9/x"]
PICTURES = ["img.png", "{out}/secret.png", "../outside/secret.png", "..%2Foutside%2Fsecret.png",
            "file://{out}/secret.png", "enlace.png",
            "http://127.0.0.1:9/x.png", "./sub/../img.png"]


def _value(out: str):
    one = st.sampled_from(VALUES).map(lambda v: v.format(out=out))
    return st.one_of(one, st.lists(one, min_size=1, max_size=2), st.booleans(),
                     one.map(lambda v: {"type": "lua", "path": v}), one.map(lambda v: {"bibliography": v}))


@st.composite
def hostile(draw, out: str):
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True))
    defaults = {k: draw(_value(out)) for k in keys}
    pictures = draw(st.lists(st.sampled_from(PICTURES).map(lambda v: v.format(out=out)), max_size=2))
    bib = draw(st.sampled_from([None, f"{out}/refs.bib", "../outside/refs.bib", "refs-in.bib"]))
    return dict(defaults=defaults if keys or draw(st.booleans()) else None, pictures=pictures, bibliography=bib,
                later=draw(st.booleans()), fmt=draw(st.sampled_from(FORMATS)), execute=draw(st.booleans()),
                citeproc=draw(st.booleans()))


def _hostile_project(root: Path) -> tuple[Path, Path]:
    proj, outside = root / "proj", root / "outside"
    (proj / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    (outside / "secret.png").write_bytes(PNG + SECRET.encode())
    (outside / "refs.bib").write_text("@book{sec, title={" + SECRET + "}, author={A}, year={2020}}\n")
    (outside / "f.lua").write_text(MARKER_LUA.format(marker=outside / "marker-out"))
    (outside / "r.lua").write_text(MARKER_LUA.format(marker=outside / "marker-out"))
    (proj / "f.lua").write_text(MARKER_LUA.format(marker=proj / "marker-in"))
    (proj / "inside.txt").write_text("dentro\n")
    (proj / "img.png").write_bytes(PNG)
    (proj / "refs-in.bib").write_text("@book{sec, title={Dentro}, author={A}, year={2020}}\n")
    (proj / "enlace.txt").symlink_to(outside / "secret.txt")
    (proj / "enlace.png").symlink_to(outside / "secret.png")
    (proj / "other.yaml").write_text(f"include-before-body: {outside / 'secret.txt'}\n")
    return proj, outside


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM, print_blob=True)
@given(data=st.data())
def test_a_generated_hostile_deck_reads_writes_and_runs_nothing_outside(data, tmp_path_factory):
    """Whatever a deck names, however it names it: no secret in any output, nothing written or run
    outside the project, no marker under --no-exec; a refusal is a BuildError, never a crash."""
    proj, outside = _hostile_project(tmp_path_factory.mktemp("hostile"))
    case = data.draw(hostile(str(outside)))
    before = sorted(outside.rglob("*"))
    body = "# Hola\n\n" + "".join(f"![Foto]({p})\n\n" for p in case["pictures"]) + "Dice [@sec].\n"
    meta = f"bibliography: {case['bibliography']}\n" if case["bibliography"] else ""
    if case["later"]:
        body, meta = body + f"\n---\n{meta or 'x: 1'}\n...\n", ""
    path = deck(proj, body, defaults=case["defaults"], meta=meta)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("ELSEWHERE", str(outside))
        m.setattr("filters.pipeline.build.to_pdf", lambda tex, **_: tex)
        m.chdir(proj)
        try:
            build(path, Path("build"), to=case["fmt"], execute=case["execute"],
                  pandoc_options=["--citeproc"] if case["citeproc"] else [])
        except BuildError:
            pass
    written = everything_written(proj / "build") if (proj / "build").exists() else b""
    assert SECRET.encode() not in written, "a file outside the project reached the output"
    assert sorted(outside.rglob("*")) == before, "written outside the project"
    assert case["execute"] or not (proj / "marker-in").exists(), "a filter ran under --no-exec"


@pytest.mark.parametrize("url", ["..%2Foutside%2Fsecret.png", "%2E%2E/outside/secret.png"])
def test_a_picture_path_with_escapes_is_checked_as_pandoc_reads_it(where, capfd, url):
    """pandoc decodes %-escapes in a local picture's name (``..%2Fx`` is ``../x``)."""
    proj, _ = where
    said = refused(deck(proj, f"# Escapes\n\n![Foto]({url})\n"), "docx", capfd)
    assert "Escapes" in said and "outside the project" in said
    assert SECRET.encode() not in everything_written(proj)


# ---- writing through links a deck's repository ships ----


KEEP = "# the lecturer's own file: never written\n"


@pytest.mark.parametrize("name, fmt", [("d.reading-defaults.yaml", "docx"), ("d.writing-defaults.yaml", "docx"),
                                       (".d.lock", "docx"), (".d.deck", "docx"), ("d.docx", "docx"),
                                       (".d.docx.partial", "docx"), ("d.tex", "beamer"), ("d.log", "beamer"),
                                       ("d-html/index.html", "revealjs")])
def test_a_link_at_a_name_the_build_writes_is_replaced_never_written_through(where, name, fmt):
    proj, outside = where
    target = outside / "bashrc"
    target.write_text(KEEP)
    link = proj / "build" / name
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    path = deck(proj, defaults={"metadata": {"subtitle": "echo${IFS}PWNED>/tmp/x;true"}})
    build(path, Path("build"), to=fmt, execute=False)
    assert target.read_text() == KEEP, f"the build wrote through build/{name}"
    assert not link.is_symlink() or name == "d.log"  # LaTeX (not run here) would write d.log: the link is gone
    assert not (proj / "build" / "d.log").is_symlink()


@pytest.mark.parametrize("fmt", ["docx", "beamer", "revealjs"])
def test_an_output_folder_a_link_leads_out_of_is_refused(where, capfd, fmt):
    proj, outside = where
    (outside / "out").mkdir()
    (proj / "build").symlink_to(outside / "out")
    with pytest.raises(BuildError) as caught:
        build(deck(proj), Path("build"), to=fmt, execute=False)
    said = str(caught.value)
    assert "the output folder build" in said and "symbolic link" in said and str(outside / "out") in said
    assert list((outside / "out").iterdir()) == [], "nothing written outside"


def test_an_output_folder_the_lecturer_names_is_theirs_even_a_link(where):
    proj, outside = where
    (outside / "out").mkdir()
    (proj / "salida").symlink_to(outside / "out")
    build(deck(proj), Path("salida"), to="docx", execute=False, out_given=True)
    assert (outside / "out" / "d.docx").is_file()


@pytest.mark.parametrize("key, folder", [("figures-dir", "build/figs"), ("cache-dir", "build/cache"),
                                         ("figures-dir", "build/figures")])
def test_a_figures_or_cache_folder_a_link_leads_out_of_is_refused(where, capfd, key, folder):
    proj, outside = where
    (outside / "figs").mkdir()
    (proj / "build").mkdir()
    (proj / folder).symlink_to(outside / "figs")
    meta = f"attnslides:\n  {key}: {folder}\n" if folder != "build/figures" else ""
    said = refused(deck(proj, "# Hola\n\n```{.attention}\nel gato\n```\n", meta=meta), "docx", capfd,
                   execute=False)
    assert key in said and "symbolic link" in said and str(outside / "figs") in said
    assert list((outside / "figs").iterdir()) == [], "nothing written outside"


def test_the_cli_keeps_the_default_output_folder_in_the_project(where):
    proj, outside = where
    (outside / "out").mkdir()
    (proj / "build").symlink_to(outside / "out")
    deck(proj)
    done = subprocess.run([ATTNSLIDES, "build", "d.md", "--to", "docx", "--no-exec"], cwd=proj, capture_output=True,
                          text=True)
    assert done.returncode == 1 and "symbolic link" in done.stderr and list((outside / "out").iterdir()) == []
    done = subprocess.run([ATTNSLIDES, "build", "d.md", "--to", "docx", "--no-exec", "--out", "build"], cwd=proj,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (outside / "out" / "d.docx").is_file()


# ---- readers that include files themselves ----


@pytest.mark.parametrize("key", ["from", "reader"])
@pytest.mark.parametrize("reader, include", [("org", '#+INCLUDE: "{secret}"'), ("rst", ".. include:: {secret}"),
                                             ("latex", "\\input{{{secret}}}"), ("org+smart", '#+INCLUDE: "{secret}"')])
def test_a_decks_defaults_file_may_choose_only_a_markdown_reader(where, capfd, key, reader, include):
    proj, outside = where
    (proj / "defaults.yaml").write_text(f"{key}: {reader}\n")
    path = proj / "d.md"  # the build finds the defaults file in the front matter, whatever the reader
    path.write_text("---\nattnslides:\n  pandoc-defaults: defaults.yaml\n---\n\n"
                    + include.format(secret=outside / "secret.txt") + "\n")
    said = refused(path, "docx", capfd, execute=False)
    assert f"{key}: {reader}" in said and "Markdown" in said and "--allow-outside-files" in said
    assert SECRET.encode() not in everything_written(proj)


@pytest.mark.parametrize("reader", ["markdown+smart", "markdown-smart+raw_tex", "commonmark_x", "gfm", "markdown_strict"])
def test_a_markdown_reader_with_extensions_is_allowed(where, reader):
    proj, _ = where
    build(deck(proj, defaults={"from": reader}), Path("build"), to="docx", execute=False)


@pytest.mark.parametrize("value", ["${NOPE_UNDEFINED_X}SECRET", "${NOPE UNDEFINED}SECRET", "\\x24{NOPE_X}SECRET"])
def test_an_unset_variable_in_a_defaults_file_is_expanded_to_nothing_as_pandoc_does(where, capfd, value):
    proj, outside = where
    (proj / "defaults.yaml").write_text(f'include-before-body: "{value.replace("SECRET", str(outside / "secret.txt"))}"\n')
    path = proj / "d.md"
    path.write_text("---\nattnslides:\n  pandoc-defaults: defaults.yaml\n---\n\n# Hola\n")
    said = refused(path, "docx", capfd, execute=False)
    assert "include-before-body" in said and "outside the project" in said
    assert SECRET.encode() not in everything_written(proj)


# ---- pictures that appear only once the filter has run: captions, a .run block's slide.text ----


@pytest.mark.parametrize("fmt", ["docx", "pptx"])
def test_a_picture_in_a_live_blocks_caption_is_refused(where, capfd, fmt):
    proj, outside = where
    body = f'# La leyenda\n\n```{{.attention caption="see ![x]({outside / "secret.png"})"}}\nel gato\n```\n'
    said = refused(deck(proj, body), fmt, capfd, execute=False)
    assert "La leyenda" in said and str(outside / "secret.png") in said and "outside the project" in said
    assert SECRET.encode() not in everything_written(proj)


def test_a_picture_in_a_cached_run_blocks_text_is_refused_under_no_exec(where, capfd):
    """A repository that ships build/cache: --no-exec shows the cached result, whose Markdown is
    checked like the deck's own."""
    proj, outside = where
    body = f'# El texto\n\n```{{.python .run}}\nslide.text("look ![x]({outside / "secret.png"})")\n```\n'
    path = deck(proj, body)
    build(path, Path("build"), to="docx", confine=False)  # the cache as the repository ships it
    assert SECRET.encode() in everything_written(proj / "build")
    (proj / "build" / "d.docx").unlink()
    said = refused(path, "docx", capfd, execute=False)
    assert "El texto" in said and str(outside / "secret.png") in said and "outside the project" in said
    assert SECRET.encode() not in everything_written(proj / "build" / "figures")
    assert not (proj / "build" / "d.docx").exists()


@pytest.mark.parametrize("fmt", ["beamer", "docx", "pptx"])
def test_the_builds_own_figures_outside_the_project_pass_the_final_check(where, monkeypatch, fmt):
    """Before: built from a folder outside the deck's project (as the project's own tests build the
    lectures from a temporary folder), the check of the final document took the build's own
    figures, under that folder's build/, for pictures the deck named outside its project, and
    refused every deck with a live block."""
    proj, outside = where
    path = deck(proj, "# Atención\n\n```{.attention #fig-a caption=\"Una cabeza.\"}\nel gato duerme\n```\n")
    monkeypatch.chdir(outside)
    build(path, Path("build"), to=fmt)
    assert list((outside / "build" / "figures" / "d").glob("fig-a.*"))


@pytest.mark.e2e
def test_a_deck_built_from_a_folder_outside_its_project_into_another_finds_its_figures(tmp_path, monkeypatch):
    """Regression: the figures went under the folder the build ran from, which LaTeX does not read
    when it lies outside the deck's project: "File `build/figures/…' not found", blamed on slide 1."""
    (tmp_path / "decks").mkdir()
    (tmp_path / "here").mkdir()
    deck = tmp_path / "decks" / "fresh.md"
    deck.write_text("---\ntitle: F\nlang: en\n---\n\n# A\n\n```{.attention height=40%}\nthe cat sat\n```\n")
    monkeypatch.chdir(tmp_path / "here")
    pdf = build(deck, tmp_path / "out", out_given=True)
    assert (tmp_path / "out" / "figures").is_dir() and pdf.name == "fresh.pdf"
