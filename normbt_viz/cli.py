"""Command line: `normbt-viz` (or `python -m normbt_viz`) `train | compare | runs | report | rewardbench | audit | data | app | export | worker`.

Every command's options are generated from a declaration (`RunSpec`, `AuditConfig`, `ReportConfig`). Two flags
mean the same in every command: `--runs` is a runs folder (where runs are made or read), `--out` is the one
thing the command itself writes (a comparison folder, a report folder, a scores file, an audit folder).
Bad input (unknown backbone, missing file, invalid value) exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sys
import time
from pathlib import Path

from normbt_viz.errors import NormBTError, SpecError
from normbt_viz.params import check_fields, expected_text, field_kind, flag_fields, flag_name, flag_value_text, is_list
from normbt_viz.runs.rundir import RunDir, default_runs_root, runs_table
from normbt_viz.spec import ARMS, RunSpec

class OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; a user needs the one line that matters
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON ({exc.msg} at column {exc.colno}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}: {text!r}")
    return value


def add_param_flags(parser: argparse.ArgumentParser, options_class, exclude: tuple[str, ...] = ()) -> None:
    """One flag per declared field of `options_class` (RunSpec, AuditConfig, ReportConfig), generated from the
    field's type, choices, range and help text. Every flag defaults to None, so only the flags given override."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for declared in flag_fields(options_class):
        if declared.name in exclude:
            continue
        kind, _ = field_kind(declared)
        meta = declared.metadata
        default = declared.default if declared.default is not dataclasses.MISSING else None
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        expected = "" if kind in (str, bool) and not meta.get("choices") and not is_list(declared) else f"{expected_text(declared)}; "
        shown = (flag_value_text(default) or "none") if is_list(declared) else repr(default)
        help_text = f"{meta['help']} ({expected}default {shown})".replace("%", "%%")
        flag = flag_name(declared)
        if kind is bool:
            group.add_argument(flag, dest=declared.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif is_list(declared):  # items are checked by validate(), which names the bad one
            group.add_argument(flag, dest=declared.name, default=None, help=help_text, type=_csv_list(kind),
                               metavar=declared.name.upper())
        else:
            group.add_argument(flag, dest=declared.name, default=None, help=help_text,
                               type=_json_object if kind is dict else kind, choices=meta.get("choices"),
                               metavar=None if meta.get("choices") else declared.name.upper())


def add_spec_flags(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """--spec and one flag per RunSpec field."""
    parser.add_argument("--spec", type=Path, help="a run spec JSON file (flags given as well override it)")
    add_param_flags(parser, RunSpec, exclude)


def options_from_args(args, base):
    """`base` with every flag of its class that was given applied."""
    overrides = {f.name: getattr(args, f.name) for f in flag_fields(type(base)) if getattr(args, f.name, None) is not None}
    return dataclasses.replace(base, **overrides)


def spec_from_args(args, base: RunSpec | None = None) -> RunSpec:
    """`base` (default RunSpec()), or the --spec file, with the arm's preset and every flag given applied."""
    spec = RunSpec.load(args.spec) if args.spec else (base or RunSpec())
    if getattr(args, "arm", None):
        spec = spec.with_arm(args.arm)
    return options_from_args(argparse.Namespace(**{**vars(args), "arm": None}), spec)


def add_runs_flag(parser: argparse.ArgumentParser, help_text: str = "the runs folder (default ./runs or $NORMBT_VIZ_RUNS)") -> None:
    parser.add_argument("--runs", type=Path, default=None, help=help_text)


def _csv_list(kind):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind.__name__}, got {text!r}") from None

    return parse


def _known_arms(arms, flag: str) -> list[str]:
    """The arms as given, or one line naming the first that is not an arm."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SpecError(f"{flag}: unknown arm {unknown[0]!r} (expected some of {', '.join(ARMS)})")
    return list(arms)


def _progress_bar():
    """A tqdm bar per phase on a terminal; elsewhere (a log file, CI) plain lines, one per tenth of a phase."""
    if sys.stderr.isatty():
        return _tqdm_progress()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its weight-loading bar would write carriage-return redraws into the log
    started: dict[str, float] = {}
    reported: dict[str, int] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase == "setup" or total <= 0:
            return
        now = time.time()
        started.setdefault(phase, now)
        tenth = min(10, done * 10 // total)
        if tenth <= reported.get(phase, -1) and done < total:
            return
        reported[phase] = tenth
        unit = PROGRESS_UNITS.get(phase, "seq")
        elapsed = now - started[phase]
        rate = f", {done / elapsed:.1f} {unit}/s" if elapsed > 0.5 and done else ""
        print(f"{phase}: {done}/{total} {unit}s ({100 * done // total}%){rate}", file=sys.stderr, flush=True)

    return update


# What a phase's counts count (the audit's phases count pairs or fits; a run's setup counts sequences).
PROGRESS_UNITS = {"train": "step", "features": "pair", "judge": "pair", "loading the backbone": "pair",
                  "out-of-fold fits": "fit", "refit without misranked pairs": "fit"}


def _tqdm_progress():
    from tqdm import tqdm

    bars = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase == "setup":
            return
        bar = bars.get(phase) or bars.setdefault(phase, tqdm(total=total, desc=phase, unit=PROGRESS_UNITS.get(phase, "seq"), leave=True))
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _distributed() -> bool:
    """Started by torchrun or accelerate launch with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _main_process_decides(decide):
    """Run `decide()` on the main process only and hand its result (or its one-line error) to every process,
    so under torchrun / accelerate launch one run directory is made and bad input stops all of them alike."""
    if not _distributed():
        return decide()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from normbt_viz.model.backbones import accelerate_on_cpu

    state = PartialState(cpu=accelerate_on_cpu())
    box = [None]
    if state.is_main_process:
        try:
            box[0] = ("ok", decide())
        except NormBTError as exc:
            box[0] = ("error", str(exc))
    broadcast_object_list(box, from_process=0)
    kind, value = box[0]
    if kind == "error":
        raise SpecError(value)
    return value


def _train_one(spec: RunSpec, runs_root: Path, resume_from: RunDir | None = None, into: RunDir | None = None) -> RunDir:
    from normbt_viz.runs.launcher import new_run_dir
    from normbt_viz.train.loop import run_training
    from normbt_viz.train.preflight import preflight

    def make_run_dir() -> str:
        if resume_from is not None or into is not None:
            return str((resume_from or into).path)
        preflight(spec)
        # This process's pid from the start: a process killed during setup (before mark_running) then reads as
        # interrupted, not as queued forever.
        return str(new_run_dir(runs_root, spec, pid=os.getpid(), host=socket.gethostname()).path)

    run = RunDir(_main_process_decides(make_run_dir))
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run directory: {run.path}", file=sys.stderr)
    progress = _progress_bar() if int(os.environ.get("RANK", "0")) == 0 else None
    status = run_training(spec, run, progress, resume=resume_from is not None)
    if status["state"] != "done":
        raise SpecError(f"run {run.name} ended {status['state']}: {status.get('error')}")
    return run


def _resumable(path: Path) -> tuple[RunSpec, RunDir]:
    run = RunDir(path)
    if not run.spec_path.is_file():
        raise SpecError(f"--resume {path}: not a run directory (no spec.json)")
    state = run.status().get("state")
    if state == "done":
        raise SpecError(f"--resume {path}: the run is already done")
    if state in ("running", "queued"):
        raise SpecError(f"--resume {path}: the run is still {state} (pid {run.status().get('pid')})")
    if not run.checkpoint_steps():
        if run.spec().save_every:
            raise SpecError(f"--resume {path}: no checkpoint to resume from (the run stopped before its first, at step "
                            f"{run.spec().save_every}); start it again")
        raise SpecError(f"--resume {path}: no checkpoint to resume from (the run was started without --save-every)")
    return run.spec(), run


def cmd_train(args) -> int:
    runs_root = args.runs or default_runs_root()
    started = time.time()
    length_note = None
    if args.resume:
        spec, previous = _resumable(args.resume)
        run = _train_one(spec, runs_root, resume_from=previous)
    elif args.run_dir:
        queued = RunDir(args.run_dir)
        spec = queued.spec()
        run = _train_one(spec, runs_root, into=queued)
    else:
        spec, length_note = _max_length_from_data(spec_from_args(args), args)
        spec = spec.resolve()
        run = _train_one(spec, runs_root)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    last = run.metrics().dropna(subset=["eval_accuracy"]).iloc[-1]
    status = run.status()
    if length_note:
        print(length_note, file=sys.stderr)
    _print_load_report(run.load_report())
    if status.get("n_identical_input"):
        print(f"note: {status['n_identical_input']} pair(s) with identical inputs for this backbone (evaluated, not trained on)",
              file=sys.stderr)
    print(f"done in {time.time() - started:.1f} s: eval_accuracy={last['eval_accuracy']:.3f} eval_loss={last['eval_loss']:.4f} -> {run.path}")
    return 0


def _max_length_from_data(spec: RunSpec, args) -> tuple[RunSpec, str | None]:
    """A user's dataset with no --max-length (and no --spec) gets the max length that covers 95% of its pairs,
    capped by the backbone's limit (tokenizer only, no weights); the demo keeps the spec's default. Returns the
    spec and the line that says so (printed with the load's story once the command is done)."""
    if args.spec or getattr(args, "max_length", None) is not None or spec.dataset == "demo":
        return spec, None
    import pandas as pd

    from normbt_viz.data.run_data import load_run_data
    from normbt_viz.model.lengths import survey_lengths

    data = load_run_data(spec)
    survey = survey_lengths(pd.concat([data.train_pairs, data.eval_pairs], ignore_index=True), spec.backbone, spec.trust_remote_code)
    note = (f"max length: {survey.suggested} tokens, chosen to cover 95% of the pairs ({survey.truncated_at(survey.suggested)} "
            "still truncated; --max-length overrides)")
    return dataclasses.replace(spec, max_length=survey.suggested), note


def _print_load_report(report: dict | None) -> None:
    """The data load's story (layout, mapping, assumptions, skipped rows, ties, truncation) as plain lines."""
    from normbt_viz.data.load_report import LoadReport

    if report:
        print("\n".join(LoadReport.from_dict(report).lines()), file=sys.stderr)


def cmd_data(args) -> int:
    """Load a dataset alone (no model weights): print the load's story and optionally write the pairs in TRL's
    explicit-prompt layout, so users can check and convert their data in seconds."""
    from normbt_viz.data.run_data import sample_table
    from normbt_viz.data.source import DataSource
    from normbt_viz.data.sources import load_pairs, write_trl_pairs

    source = options_from_args(args, DataSource())
    check_fields(source)
    if args.max_length is not None and not args.backbone:  # truncation is counted in a backbone's tokens
        raise SpecError("--max-length needs --backbone: truncation is counted with the backbone's tokenizer")
    table = load_pairs(source.dataset, **source.load_options())
    table = dataclasses.replace(table, pairs=sample_table(table, source.limit, seed=0))  # the audit's sample
    report = table.report
    survey = None
    if args.backbone:
        from normbt_viz.model.lengths import survey_lengths

        survey = survey_lengths(table.pairs, args.backbone)
        report.max_length = args.max_length if args.max_length is not None else survey.suggested
        report.truncated = survey.truncated_at(report.max_length)
    print("\n".join(report.lines()))
    if survey is not None:
        print(survey.line())
    for line in table.skipped_summary():
        print(f"  {line}")
    if args.out:
        path = write_trl_pairs(table, args.out)
        print(f"wrote {len(table.pairs)} pair(s) to {path} (prompt, chosen, rejected, pair_id, category, margin)")
    return 0


def cmd_compare(args) -> int:
    from normbt_viz.analysis.comparison import compare_runs, comparison_markdown
    from normbt_viz.experiments.compare import write_comparison

    runs_root = args.runs or default_runs_root()
    arms = _known_arms(args.arms or args.losses, "--losses/--arms")
    base, length_note = _max_length_from_data(spec_from_args(args), args)
    runs = []
    for seed in args.seeds:
        for arm in arms:
            runs.append(_train_one(dataclasses.replace(base.with_arm(arm), seed=seed, name=""), runs_root))
    if length_note:
        print(length_note, file=sys.stderr)
    _print_load_report(runs[0].load_report())
    comparison = compare_runs(runs)
    folder = args.out or Path(runs_root) / "_comparisons" / time.strftime("%Y%m%d-%H%M%S")
    write_comparison(comparison, folder)
    print(comparison_markdown(comparison))
    print(f"comparison written to {folder}")
    return 0


def cmd_runs(args) -> int:
    root = Path(args.runs or default_runs_root())
    existing = next((p for p in (root, *root.parents) if p.exists()), root)
    if existing.exists() and not existing.is_dir():  # the root or a folder above it is a file
        raise SpecError(f"runs folder {root} is not a folder ({existing} is a file)")
    table = runs_table(root)
    if table.empty:
        print("no runs yet")
        return 0
    columns = ["run", "arm", "seed", "scope", "state", "step", "total_steps", "elapsed_s", "eval_accuracy"]
    print(table[[c for c in columns if c in table]].to_string(index=False))
    return 0


def cmd_report(args) -> int:
    from normbt_viz.experiments.report import ReportConfig, write_report
    from normbt_viz.train.preflight import preflight

    config = ReportConfig.named("quick" if args.quick else args.config)
    config = options_from_args(args, dataclasses.replace(config, base=spec_from_args(args, config.base))).validate()
    # A missing dataset or backbone is one line before the first run directory, not a failed run an hour in.
    checked = preflight(config.base.with_arm(config.arms[0]))  # with_arm returns a copy: preflight's resolve() leaves the config alone
    _print_load_report(checked.report.to_dict())
    runs_root = args.runs or default_runs_root() / f"report-{config.name}"
    folder = write_report(config, args.out or Path("report"), runs_root=runs_root)
    print(f"report written to {folder / 'summary.md'}")
    return 0


def cmd_rewardbench(args) -> int:
    """Score a trained reward model on RewardBench v1, RewardBench 2 or RM-Bench (hub id or a local file shaped
    like it); writes <run>/scores/<benchmark>.json and the per-example table beside it."""
    from normbt_viz.evals.scoring import OVERALL, resolve_benchmark, score_model_folder, summary_lines, score_examples_path

    benchmark = resolve_benchmark(args.benchmark, args.version)
    result, out = score_model_folder(args.model, benchmark, args.data, args.split, args.limit, args.batch_size, args.device,
                                     args.missing_sections, args.out, args.domain)
    examples_path = score_examples_path(out)
    print("\n".join(summary_lines(result)))
    print(f"{benchmark}: {OVERALL[benchmark]} -> {out} (per-example: {examples_path.name})")
    return 0


def cmd_audit(args) -> int:
    """Audit every pair of a dataset: out-of-fold margins, label-issue scores, flags, a cleaned copy."""
    from normbt_viz.audit.auditdir import AuditDir
    from normbt_viz.audit.run import run_audit
    from normbt_viz.audit.spec import FLAGS, AuditConfig

    config = options_from_args(args, AuditConfig()).validate()
    folder = AuditDir(args.out)
    print(f"auditing {config.dataset} into {folder.path}", file=sys.stderr)
    meta = run_audit(config, folder.path, progress=_progress_bar())
    _print_load_report(meta["load_report"])
    if meta["n_skipped_rows"]:
        print(f"note: the skipped rows are listed in {folder.skipped_path}", file=sys.stderr)
    counts = ", ".join(f"{name} {meta['flag_counts'][name]}" for name in FLAGS)
    print(f"audited {meta['n_pairs']} pairs in {meta['wall_s']:.1f} s (peak memory {meta['peak_rss_mb']:.0f} MB): {counts}")
    if meta.get("detection"):
        d = meta["detection"]
        print(f"known flips: AUROC {d['auroc']:.3f}, precision@{d['n_flipped']} {d['precision_at_k']:.3f}")
    if meta.get("cleaned"):
        print(f"cleaned copy: {folder.path / meta['cleaned']['file']} ({meta['cleaned']['description']})")
    print(f"-> {folder.frame_path}, {folder.summary_path}")
    return 0


def cmd_app(args) -> int:
    """Serve the app (the same as `make run`, from any folder); runs are read from --runs, else ./runs or $NORMBT_VIZ_RUNS."""
    from normbt_viz.ui.launch import AppOptions, app_command

    options = options_from_args(args, AppOptions()).validate()
    extra = args.streamlit_args[1:] if args.streamlit_args[:1] == ["--"] else args.streamlit_args
    command = app_command(options.port, extra)
    env = {**os.environ, "NORMBT_VIZ_RUNS": str(args.runs.resolve())} if args.runs else dict(os.environ)
    # This process becomes the server (exec, not a child): stopping `normbt-viz app` stops the server, where a
    # child would be left serving the port after its parent got SIGTERM.
    os.execve(command[0], command, env)


def cmd_export(args) -> int:
    """Refresh the model card of a run's export with its scores; with --push-to-hub, upload the export."""
    from normbt_viz.runs.publish import ExportOptions, push_to_hub, refresh_model_card

    options = options_from_args(args, ExportOptions()).validate()
    run = RunDir(args.run)
    if options.push_to_hub:
        print(f"pushed {run.name} to {push_to_hub(run, options.push_to_hub, options.private)}")
    else:
        print(f"model card: {refresh_model_card(run)}")
    return 0


def cmd_worker(args) -> int:
    from normbt_viz.runs.launcher import work

    return work(args.run_dirs, args.processes)


def build_parser() -> argparse.ArgumentParser:
    from normbt_viz.audit.spec import AuditConfig
    from normbt_viz.data.formats.mapping import mapping_help
    from normbt_viz.data.source import DataSource
    from normbt_viz.evals.scoring import BENCHMARKS
    from normbt_viz.experiments.report import CONFIGS, ReportConfig
    from normbt_viz.runs.publish import ExportOptions
    from normbt_viz.ui.launch import AppOptions

    parser = OneLineParser(prog="normbt-viz", description="Train and compare BT / NormBT reward models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    train = sub.add_parser("train", help="train one reward model (also under torchrun / accelerate launch)")
    add_runs_flag(train, "the runs folder the run directory is made in (default ./runs or $NORMBT_VIZ_RUNS)")
    train.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue an interrupted or cancelled run from its last checkpoint, in the same directory")
    train.add_argument("--run-dir", type=Path, default=None, help=argparse.SUPPRESS)  # a queued run the launcher made
    add_spec_flags(train)
    compare = sub.add_parser("compare", help="one run per (arm, seed) and a comparison summary")
    add_runs_flag(compare, "the runs folder the runs are made in (default ./runs or $NORMBT_VIZ_RUNS)")
    compare.add_argument("--out", type=Path, default=None, help="the comparison folder: summary.md and CSVs (default <runs>/_comparisons/<time>)")
    compare.add_argument("--losses", type=_csv_list(str), default="bt,normbt", help=f"comma-separated arms: {', '.join(ARMS)} (default bt,normbt)")
    compare.add_argument("--arms", type=_csv_list(str), default=None, help="alias of --losses")
    compare.add_argument("--seeds", type=_csv_list(int), default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    add_spec_flags(compare)
    runs = sub.add_parser("runs", help="list runs with their state and headline metrics")
    add_runs_flag(runs, "the runs folder to list (default ./runs or $NORMBT_VIZ_RUNS)")
    report = sub.add_parser("report", help="the reproducible comparison report (every arm x seeds, label noise, figures)")
    report.add_argument("--config", choices=CONFIGS, default="cpu",
                        help="cpu: a head on frozen MiniLM (2 min); decoder: SmolLM2's top block training (under an hour on 2 CPU "
                             "cores); quick: a test. Every flag below overrides the config (default cpu)")
    report.add_argument("--quick", action="store_true", help="same as --config quick")
    report.add_argument("--out", type=Path, default=None, help="the report folder: summary.md, figures, CSVs (default ./report)")
    add_runs_flag(report, "the runs folder of the report's runs (default <runs root>/report-<config>); finished runs of the same "
                          "spec are reused, so an interrupted report continues where it stopped")
    add_param_flags(report, ReportConfig)
    report.add_argument("--spec", type=Path, help="a run spec JSON file every run starts from (flags given as well override it)")
    add_param_flags(report, RunSpec, exclude=("arm",))
    bench = sub.add_parser("rewardbench", help="score a trained reward model on RewardBench v1 / 2 or RM-Bench")
    bench.add_argument("--model", required=True, help="a run's model folder (<run>/model)")
    bench.add_argument("--benchmark", choices=BENCHMARKS, default=None, help="which benchmark (default rewardbench, i.e. v1)")
    bench.add_argument("--version", type=int, choices=(1, 2), default=None, help="RewardBench 1 or 2 (same as --benchmark rewardbench / rewardbench-2)")
    bench.add_argument("--data", default=None, help="hub id or a local .jsonl/.json/.parquet shaped like it (default: the benchmark's hub id)")
    bench.add_argument("--split", default=None, help="hub split (default filtered / test / train for v1 / v2 / RM-Bench)")
    bench.add_argument("--limit", type=int, default=None, help="at most N rows per subset (per domain for RM-Bench): a quick look (default: all)")
    bench.add_argument("--missing-sections", choices=("zero", "omit"), default="zero",
                       help="a section with no data scores 0 in the overall mean, as upstream does (default), or is left out")
    bench.add_argument("--domain", default=None, help="RM-Bench: the domain of a per-domain file (chat, math, code, safety-refuse, "
                       "safety-response; default: read from the file name, e.g. chat_filtered.json)")
    bench.add_argument("--batch-size", type=int, default=16, help="sequences per forward (default 16)")
    bench.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (default auto)")
    bench.add_argument("--out", default=None, help="the scores file (default <run>/scores/<benchmark>.json; the per-example table goes beside it)")
    audit = sub.add_parser("audit", help="score every pair of a dataset for label issues and outliers")
    audit.add_argument("--out", required=True, type=Path, help="the audit folder: audit.parquet, summary.md, the cleaned copy "
                                                               "(an interrupted audit continues from its cached features)")
    add_param_flags(audit, AuditConfig)
    data = sub.add_parser("data", help="load a dataset alone: print what was read and assumed, optionally write the pairs",
                          epilog=f"column mapping roles: {mapping_help()}")
    data.add_argument("--backbone", default=None,
                      help="survey token lengths with this backbone's tokenizer (no weights) and suggest a max length "
                           "(default none: no survey)")
    data.add_argument("--out", type=Path, default=None,
                      help="the pairs file: JSON lines in TRL's explicit-prompt layout (prompt, chosen, rejected, pair_id, "
                           "category, margin; default: nothing written)")
    add_param_flags(data, DataSource)
    app = sub.add_parser("app", help="serve the app on localhost; streamlit flags go after --, e.g. normbt-viz app -- --server.headless false")
    add_runs_flag(app, "the runs folder the app reads (default ./runs or $NORMBT_VIZ_RUNS)")
    add_param_flags(app, AppOptions)
    app.add_argument("streamlit_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    export = sub.add_parser("export", help="refresh a run's model card (model/sequence_classification/README.md); --push-to-hub uploads the export")
    export.add_argument("run", type=Path, help="the run directory (its export's card is rewritten in place)")
    add_param_flags(export, ExportOptions)
    worker = sub.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("run_dirs", nargs="+")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "compare": cmd_compare, "runs": cmd_runs, "report": cmd_report, "rewardbench": cmd_rewardbench, "audit": cmd_audit, "data": cmd_data, "app": cmd_app, "export": cmd_export, "worker": cmd_worker}[args.command]
    try:
        return handler(args)
    except NormBTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
