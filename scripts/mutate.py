#!/usr/bin/env python
"""`make mutate`: the mutation score of the files issue 25 lists, measured with mutmut 3, one file at a time.

For each source file (FILE_TESTS below, or the subset in MUTATE_FILES) this copies the working tree (tracked and
untracked-but-not-ignored files, plus the compiled _contours module) to $MUTATE_WORK/<file>/, writes pyproject.toml's
[tool.mutmut] there with only_mutate = that file and the file's own fast tests (-m "not slow"), and runs
`mutmut run --max-children $MUTATE_WORKERS` in the copy (the working tree is never mutated). mutmut traces which
test calls which function and runs only those tests on each mutant, in a forked child of one pytest process.
Afterwards every mutant is classified as killed / survived / timed out / no tests / not checked, or set apart:
"excluded" (provably equivalent: scripts/mutation_equivalent.json, each with its reason) and "message" (the
mutation only changes the text of a log call, a warning or a raised error's message). The score of a file is
(killed + timed out) / (all - excluded - message).

Environment: MUTATE_FILES (space- or comma-separated source paths; default all of FILE_TESTS), MUTATE_CAP_S (the
wall-time cap of the whole run, default 7200: 2 h on 2 cores with 1 worker), MUTATE_WORKERS (default 1),
MUTATE_WORK (default work_dirs/mutate), MUTATE_OUT (default benchmarks/results/mutation.json; a subset run
updates only its files' entries), MUTATE_FRESH=1 (start each file over; by default a file whose copy holds a
previous run's mutants/ resumes: mutmut keeps every result and re-tests only mutants not checked yet or in
functions whose source changed, so a capped run continues where it stopped), MUTATE_RETEST=1 (resuming, test
again only the mutants the previous run left alive: after adding tests). Writes the JSON and prints a table;
docs/mutation.md explains the result.
"""

from __future__ import annotations

import ast
import datetime as _dt
import difflib
import fnmatch
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "scripts" / "mutation_equivalent.json"

NORM = "tests/test_eval_normalization.py"  # --mean / --std through every evaluator (ood, robustness, wsol)
ROB = ["tests/test_robustness.py", "tests/test_robustness_paths.py", NORM]
OOD = ["tests/test_ood.py", "tests/test_ood_paths.py", NORM]
WSOL = ["tests/test_wsol_eval.py", "tests/test_wsol_scoremaps.py", "tests/test_wsol_openimages.py", NORM]
WSOL_METRICS = ["tests/test_wsol_metrics.py", "tests/test_wsol_metrics_state.py"]
REPORT = [
    t
    for t in (
        "tests/test_report.py",
        "tests/test_bootstrap.py",
        "tests/test_caption_intervals.py",
        "tests/test_significance.py",
    )
    if (ROOT / t).is_file()
]


def unit_tests(path: str, *names: str) -> list[str]:
    """Test ids `path::name` (every parametrisation of each): the unit tests of a file whose other tests run a tool
    on module-scoped fixtures, which mutmut's forked children rebuild for every mutant (~30 s each)."""
    return [f"{path}::{n}" for n in names]


# the robustness primitives' own tests (FGSM, occlusion, in-between, curves, batching), without the tool's
ROB_UNIT = unit_tests(
    "tests/test_robustness.py",
    "test_fgsm_matches_per_image_autograd_with_clipping_and_accuracy",
    "test_fgsm_in_the_normalized_space_against_autograd_on_the_normalised_input",
    "test_fgsm_gradient_of_an_image_does_not_depend_on_its_batch",
    "test_gradient_sign_of_an_image_is_its_own_even_when_tiny",
    "test_eps_outside_range_is_refused",
    "test_eps_accepted",
    "test_eps_values_that_are_not_numbers_are_refused_and_keys_name_them",
    "test_fgsm_step_where_the_gradient_sign_is_zero_and_with_a_float32_std",
    "test_pixel_classifier_buffers_and_dtypes",
    "test_fgsm_predictions_without_eps_and_on_a_model_without_std",
    "test_occlusion_against_hand_built_arrays",
    "test_check_sides_and_occlusion_input_checks",
    "test_mean_fill_against_hand_built_arrays",
    "test_sides_scale_with_the_image_size",
    "test_inbetween_images_against_hand_built_arrays",
    "test_check_ratios_and_mixup_ends",
    "test_pairs_are_seeded_and_of_different_classes",
    "test_hit_rates_hand_counted",
    "test_pairs_are_numpys_draws_with_redraws_and_two_classes_suffice",
    "test_cutmix_images_need_square_images_and_mixup_beyond_the_ends",
    "test_curves_equal_a_per_image_loop",
    "test_curves_of_an_empty_grid_the_fill_and_one_column_accuracy",
    "test_batches_shard_whole_batches_and_subsets_are_seeded",
)
# the OOD metrics' and detectors' own tests
OOD_UNIT = unit_tests(
    "tests/test_ood.py",
    "test_metrics_hand_computed_tie_between_in_and_out",
    "test_metrics_all_tied_and_perfect",
    "test_tnr_uses_the_first_point_reaching_exactly_95",
    "test_metrics_against_brute_force_on_tie_heavy_scores",
    "test_mean_metrics_and_bad_input",
    "test_weighted_roc_metrics_equal_the_duplicated_scores_and_scikit_learn",
    "test_mean_over_sets_statistic_and_stratified_draws",
    "test_another_tpr_level_reaches_every_roc_metric_and_the_pooled_statistic",
    "test_msp_and_energy_against_numpy",
    "test_odin_against_one_image_reference_on_a_conv_net",
    "test_odin_against_the_analytic_gradient_of_a_linear_model",
    "test_detector_options_are_checked_and_a_new_detector_is_a_function",
    "test_odin_takes_the_input_std_it_is_given_and_records_every_parameter",
    "test_detector_checks_its_own_parameters_and_energy_defaults_to_t1",
    "test_odin_perturbs_at_the_images_precision",
    "test_odin_gradient_sign_of_an_image_is_its_own_even_when_tiny",
    "test_metrics_as_odin_lee_exact_against_reference_loops_with_ties",
    "test_metrics_as_odin_on_scores_at_the_grid_points_the_window_edges_and_above_the_grid",
    "test_metrics_as_with_every_in_distribution_score_at_one_in_float32",
    "test_score_dtype_of_the_detectors",
) + unit_tests("tests/test_ood_paths.py", "test_odin_moves_zero_gradient_pixels_by_minus_epsilon")
# source file -> (its fast tests, the functions whose mutants count: mutmut's mangled names, globs; None = all)
FILE_TESTS: dict[str, tuple[list[str], list[str] | None]] = {
    **{f"cutmix_transfer/robustness/{m}.py": (ROB_UNIT, None) for m in ("attacks", "curves", "inbetween", "occlusion")},
    **{f"cutmix_transfer/robustness/{m}.py": (ROB, None) for m in ("evaluate", "figures")},
    **{f"cutmix_transfer/ood/{m}.py": (OOD_UNIT, None) for m in ("detectors", "metrics")},
    **{f"cutmix_transfer/ood/{m}.py": (OOD, None) for m in ("data", "evaluate", "figure")},
    # the unit tests, which check every count by hand (the end-to-end evaluator tests take ~50 s a mutant)
    "cutmix_transfer/wsol/boxes.py": (["tests/test_wsol_boxes.py", *WSOL_METRICS], None),
    "cutmix_transfer/wsol/metrics.py": ([*WSOL_METRICS, "tests/test_wsol_boxes.py"], None),
    "cutmix_transfer/wsol/scoremaps.py": (["tests/test_wsol_scoremaps.py", "tests/test_wsol_openimages.py"], None),
    **{f"cutmix_transfer/wsol/{m}.py": (WSOL, None) for m in ("evaluate", "inputs", "outputs", "scoring")},
    "cutmix_transfer/wsol/model.py": (["tests/test_wsol_eval.py", "tests/test_cam.py", NORM], None),
    # the evaluators' one way to their classifier: its unit tests (form, head, labels, trust, normalisation), not
    # the evaluators' end-to-end tests that also call it (~30 s a mutant with them)
    "cutmix_transfer/evalmodel.py": (["tests/test_backbones.py"], None),
    "cutmix_transfer/wsol/vis_cam.py": (["tests/test_vis_cam.py"], None),
    "cutmix_transfer/wsol/visualize.py": (["tests/test_vis_cam.py", "tests/test_wsol_eval.py"], None),
    # the report and its bootstrap: a package (cutmix_transfer/report/) or, before it, single modules
    **{
        p.relative_to(ROOT).as_posix(): (REPORT, None)
        for p in sorted((ROOT / "cutmix_transfer" / "report").glob("*.py"))
        + [ROOT / "cutmix_transfer" / f"{m}.py" for m in ("report", "per_image", "paper", "bootstrap")]
        if p.is_file()
    },
    # the statistics' own tests (the report's tests add ~15 s of tool runs a mutant)
    "cutmix_transfer/report/bootstrap.py": (["tests/test_bootstrap.py", "tests/test_significance.py"], None),
    "cutmix_transfer/report/significance.py": (["tests/test_significance.py"], None),
    "cutmix_transfer/report/calibration.py": (["tests/test_report_calibration.py"], None),
    "cutmix_transfer/report/corruption.py": (["tests/test_report_corruption.py"], None),
    "cutmix_transfer/archs.py": (
        ["tests/test_archs.py", "tests/test_pyramidnet.py", "tests/test_backbones.py", "tests/test_checkpoints.py"],
        None,
    ),
    "cutmix_transfer/backbones.py": (["tests/test_backbones.py", "tests/test_checkpoints.py"], None),
    "cutmix_transfer/checkpoints.py": (["tests/test_checkpoints.py", "tests/test_backbones.py"], None),
    # only the resume seeding of runner.py (the rest is covered by the training tools' subprocess tests)
    "cutmix_transfer/runner.py": (
        ["tests/test_resume_seeding.py", "tests/test_resume.py"],
        [
            "x_derive_seed__mutmut_*",
            "xǁSeededIndexǁ*",
            "xǁSeededSamplerǁ*",
            "xǁSeededDatasetǁ*",
            "xǁReproducibleRandomnessHookǁbefore_train_iter__mutmut_*",
            "x_make_training_reproducible__mutmut_*",
        ],
    ),
}
# mutmut 3's exit codes (mutmut/__main__.py status_by_exit_code), folded into the columns of the result
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests", 34: "skipped", 36: "timeout"}
STATUS.update({-24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "crashed", -9: "crashed"})
COLUMNS = ("killed", "timeout", "survived", "no_tests", "not_checked", "crashed", "skipped", "suspicious")
# a statement whose only mutated part is its text: a log call, a warning, a print, or the message of a raise
MESSAGE_CALL = re.compile(r"^(logger|logging|log|warnings)\.\w+$|^print$")


def status_of(code: int | None) -> str:
    return "not_checked" if code is None else STATUS.get(code, "suspicious")


def copy_tree(dest: Path) -> None:
    """The working tree (git's tracked and untracked-not-ignored files) and the compiled C module, to `dest`."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    files = [f for f in listing.split("\0") if f and (ROOT / f).is_file()]
    files += [str(p.relative_to(ROOT)) for p in (ROOT / "cutmix_transfer" / "wsol").glob("_contours*.so")]
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)


def describe_tests(tests: list[str]) -> str:
    """'tests/a.py tests/b.py (3 of its tests)': each file once, with the number of test ids picked from it."""
    picked: dict[str, int] = {}
    for t in tests:
        path, _, name = t.partition("::")
        picked[path] = picked.get(path, 0) + (1 if name else 0)
    return " ".join(f"{p} ({n} of its tests)" if n else p for p, n in picked.items())


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_mutmut_config(tree: Path, source: str, tests: list[str]) -> None:
    """The copy's pyproject.toml: the repository's [tool.mutmut] with only_mutate and the test selection set."""
    text = (tree / "pyproject.toml").read_text()
    base = re.search(r"^\[tool\.mutmut\]\n(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    kept = [
        ln
        for ln in (base.group(1).splitlines() if base else [])
        if not ln.startswith(("only_mutate", "pytest_add_cli_args_test"))
    ]
    text = text[: base.start()] + text[base.end() :] if base else text
    section = [
        "[tool.mutmut]",
        *[ln for ln in kept if ln.strip()],
        f"only_mutate = {toml_list([source])}",
        f"pytest_add_cli_args_test_selection = {toml_list([t for t in tests if (tree / t.split('::')[0]).is_file()])}",
    ]
    (tree / "pyproject.toml").write_text(text.rstrip() + "\n\n" + "\n".join(section) + "\n")


def run_mutmut(tree: Path, names: list[str], workers: int, timeout_s: float, log: Path) -> tuple[int | None, float]:
    """`mutmut run` in `tree` (its own process group, killed at `timeout_s`) -> (exit code or None, seconds)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")  # the thread count is the CPU pin's (`make mutate`)
    cmd = [sys.executable, "-c", "from mutmut.__main__ import cli; cli()", "run", "--max-children", str(workers)]
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd + names, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=max(timeout_s, 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = None
    return rc, time.monotonic() - t0


def mutant_sources(tree: Path, source: str, names: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (original function code, mutant function code), read from mutants/<source> with mutmut 3.8's own
    reader (mutmut.mutation.diff_apply, what `mutmut show` uses)."""
    import libcst as cst
    from mutmut.mutation.diff_apply import read_mutant_function, read_mutants_module, read_original_function

    cwd = os.getcwd()
    os.chdir(tree)  # mutmut reads its config and mutants/ relative to the working directory
    try:
        module = read_mutants_module(source)
        out = {}
        for name in names:
            orig = cst.Module([read_original_function(module, name)]).code.strip()
            mutant = cst.Module([read_mutant_function(module, name)]).code.strip()
            out[name] = (orig, mutant)
        return out
    finally:
        os.chdir(cwd)


def changed_lines(orig: str, mutant: str) -> tuple[list[int], list[str], list[str]]:
    """(1-based original line numbers touched, removed lines, added lines) of a mutant against its original."""
    a, b = orig.splitlines(), mutant.splitlines()
    touched, removed, added = [], [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        touched += list(range(i1 + 1, max(i2, i1 + 1) + 1)) if i2 > i1 else [i1]
        removed += [s.strip() for s in a[i1:i2]]
        added += [s.strip() for s in b[j1:j2]]
    return touched, removed, added


def _call_name(node: ast.AST) -> str:
    return ast.unparse(node.func) if isinstance(node, ast.Call) else ""


def is_message_mutant(orig: str, touched: list[int]) -> bool:
    """True when every touched line lies inside the arguments of a log / warning / print call, or inside a raise
    statement's exception arguments (the same exception is raised, only its text differs)."""
    try:
        tree = ast.parse(orig)
    except SyntaxError:
        return False
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args + node.exc.keywords:
            first = min(a.lineno for a in [*node.exc.args, *node.exc.keywords])
            spans.append((first, node.exc.end_lineno))
        elif isinstance(node, ast.Expr) and MESSAGE_CALL.match(_call_name(node.value)):
            spans.append((node.lineno, node.end_lineno))
    if not touched or not spans:
        return False
    # a raise's message: the touched lines must not include the line naming the exception type when it is shared
    return all(any(lo <= ln <= hi for lo, hi in spans) for ln in touched) and _same_exception_types(orig, touched)


def _same_exception_types(orig: str, touched: list[int]) -> bool:
    """A touched line that names the raised exception type (`raise X(`) is not a message-only change."""
    lines = orig.splitlines()
    return not any(
        re.search(r"\braise\s+\w+\s*\(\s*$|\braise\s+\w+\(\)", lines[ln - 1]) for ln in touched if ln <= len(lines)
    )


def load_equivalent() -> list[dict]:
    return json.loads(EQUIVALENT.read_text()) if EQUIVALENT.is_file() else []


def equivalent_reason(source: str, name: str, removed: list[str], added: list[str], table: list[dict]) -> str | None:
    """The reason recorded for this mutant in scripts/mutation_equivalent.json (matched by file, function and the
    changed lines, so renumbered mutants still match), else None."""
    func = name.rsplit(".", 1)[-1].split("__mutmut_")[0]
    for e in table:
        if e["file"] == source and fnmatch.fnmatch(func, e["function"]):
            if [s.strip() for s in e["before"]] == removed and [s.strip() for s in e["after"]] == added:
                return e["reason"]
    return None


def not_killed_names(tree: Path, source: str, globs: list[str] | None) -> list[str]:
    """The mutants of `source` a previous run left alive (survived, no tests, suspicious), to test again."""
    meta_path = tree / "mutants" / (source + ".meta")
    if not meta_path.is_file():
        return []
    codes = json.loads(meta_path.read_text())["exit_code_by_key"]
    return sorted(
        k
        for k, v in codes.items()
        if v is not None
        and status_of(v) in ("survived", "no_tests", "suspicious")
        and (globs is None or any(fnmatch.fnmatch(k.rsplit(".", 1)[-1], g) for g in globs))
    )


def classify(tree: Path, source: str, globs: list[str] | None, table: list[dict]) -> dict:
    """The result of one file from mutants/<source>.meta and the mutants' code."""
    meta_path = tree / "mutants" / (source + ".meta")
    meta = (
        json.loads(meta_path.read_text()) if meta_path.is_file() else {"exit_code_by_key": {}, "durations_by_key": {}}
    )
    codes = {
        k: v
        for k, v in meta["exit_code_by_key"].items()
        if globs is None or any(fnmatch.fnmatch(k.rsplit(".", 1)[-1], g) for g in globs)
    }
    sources = mutant_sources(tree, source, sorted(codes)) if codes else {}
    res = {c: 0 for c in COLUMNS}
    excluded, messages, survivors = [], [], []
    for name in sorted(codes):
        status = status_of(codes[name])
        orig, mutant = sources[name]
        touched, removed, added = changed_lines(orig, mutant)
        diff = {"name": name, "status": status, "before": removed, "after": added}
        reason = equivalent_reason(source, name, removed, added, table)
        if reason is not None:
            excluded.append({**diff, "reason": reason})
        elif is_message_mutant(orig, touched):
            messages.append(diff)
        else:
            res[status] += 1
            if status in ("survived", "no_tests", "suspicious", "crashed", "skipped"):
                survivors.append(diff)
    counted = sum(res.values())
    checked = sum(codes[k] is not None for k in codes)
    rate = re.findall(r"([0-9.]+) mutations/second", (tree / "mutmut.log").read_text(errors="replace"))
    return {
        "mutants": len(codes),
        **res,
        "excluded": excluded,
        "message": {
            "count": len(messages),
            "killed": sum(m["status"] in ("killed", "timeout") for m in messages),
            "mutants": messages,
        },
        "score_pct": round(100.0 * (res["killed"] + res["timeout"]) / counted, 1) if counted else None,
        "mutants_run": checked,
        # mutmut's own rate over its mutation phase (it prints it at the end of a run that was not cut off)
        "seconds_per_mutant": round(1 / float(rate[-1]), 2) if rate and float(rate[-1]) > 0 else None,
        "not_killed": survivors,
    }


def main() -> int:
    try:
        import mutmut  # noqa: F401
    except ImportError:
        print("mutmut is not installed in this interpreter: run `make mutate` (it installs it into .venv)")
        return 2
    files = re.split(r"[\s,]+", os.environ.get("MUTATE_FILES", "").strip()) if os.environ.get("MUTATE_FILES") else []
    files = files or list(FILE_TESTS)
    unknown = [f for f in files if f not in FILE_TESTS]
    if unknown:
        print(f"MUTATE_FILES: {', '.join(unknown)} not mapped; choose from:\n  " + "\n  ".join(FILE_TESTS))
        return 2
    cap = float(os.environ.get("MUTATE_CAP_S", "7200"))
    workers = int(os.environ.get("MUTATE_WORKERS", "1"))
    work = Path(os.environ.get("MUTATE_WORK", ROOT / "work_dirs" / "mutate"))
    out_path = Path(os.environ.get("MUTATE_OUT", ROOT / "benchmarks" / "results" / "mutation.json"))
    table = load_equivalent()
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    result.update(
        tool=f"mutmut {importlib.metadata.version('mutmut')}",
        python=platform.python_version(),
        cpus=os.cpu_count(),
        workers=workers,
        cap_s=cap,
        score="(killed + timeout) / (mutants - excluded - message); no_tests and not_checked count as not killed",
    )
    result.setdefault("files", {})
    deadline = time.monotonic() + cap
    t_all = time.monotonic()
    for source in files:
        tests, globs = FILE_TESTS[source]
        left = deadline - time.monotonic()
        if left < 60:
            print(f"[mutate] cap of {cap:.0f} s reached: {source} not run")
            result["files"][source] = {"tests": tests, "not_run": "wall-time cap reached"}
            continue
        tree = work / source.replace("/", "__")
        resume = os.environ.get("MUTATE_FRESH") != "1" and (tree / "mutants").is_dir()
        if tree.exists() and not resume:
            shutil.rmtree(tree)
        tree.mkdir(parents=True, exist_ok=True)
        copy_tree(tree)  # over a previous run's copy: mutmut re-tests only what changed or was not checked
        write_mutmut_config(tree, source, tests)
        module = source[: -len(".py")].replace("/", ".")
        names = [f"{module}.{g}" for g in globs] if globs else []
        if resume and os.environ.get("MUTATE_RETEST") == "1":  # after adding tests: the survivors again
            names = not_killed_names(tree, source, globs) or names
        print(f"[mutate] {source}: tests {describe_tests(tests)} (log {tree / 'mutmut.log'})", flush=True)
        rc, wall = run_mutmut(tree, names, workers, left, tree / "mutmut.log")
        entry = {"tests": tests, "functions": globs or "all", "wall_s": round(wall, 1), "mutmut_exit": rc}
        before = result["files"].get(source, {}) if resume else {}
        entry["wall_s_total"] = round(before.get("wall_s_total", before.get("wall_s", 0.0)) + wall, 1)  # resumed runs
        if rc is None:
            entry["capped"] = True
        entry.update(classify(tree, source, globs, table))
        entry["date"] = _dt.date.today().isoformat()
        result["files"][source] = entry
        result["wall_s_last_run"] = round(time.monotonic() - t_all, 1)
        write_json(out_path, result)  # after every file: a cut-off run keeps what it measured
    write_json(out_path, result)
    print_table(result["files"], files)
    print(f"[mutate] {out_path}")
    return 0


def write_json(path: Path, result: dict) -> None:
    """Atomically: a temporary file beside `path`, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def print_table(entries: dict, files: list[str]) -> None:
    cols = ("mut", "kill", "t/o", "surv", "none", "n/c", "excl", "msg")
    head = f"{'file':<40} " + " ".join(f"{c:>4}" for c in cols) + f" {'score':>6} {'s/mut':>6}"
    print(head)
    for f in files:
        e = entries[f]
        if "mutants" not in e:
            print(f"{f:<40} {e.get('not_run', '')}")
            continue
        score = "n/a" if e["score_pct"] is None else f"{e['score_pct']:.1f}%"
        spm = "" if e["seconds_per_mutant"] is None else f"{e['seconds_per_mutant']:.1f}"
        print(
            f"{f.replace('cutmix_transfer/', ''):<40} {e['mutants']:>4} {e['killed']:>4} {e['timeout']:>4} "
            f"{e['survived']:>4} {e['no_tests']:>4} {e['not_checked']:>4} {len(e['excluded']):>4} "
            f"{e['message']['count']:>4} {score:>6} {spm:>6}"
        )


if __name__ == "__main__":
    sys.exit(main())
