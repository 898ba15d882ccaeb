"""The jobs wing: runs queued in the DB, claimed by workers, each run in a child process.

- `runs.py`: start, watch, cancel, resume and describe runs; the Training page's form and the task checks.
- `worker.py`: claims jobs and supervises their child processes; heartbeats; interrupted runs.
- `child.py`: the child process that runs one job (imports go child -> tuning -> training, never back).
- `cluster.py`: where a worker runs its jobs: here, or as Ray tasks on a cluster (`MODELDECK_EXECUTOR=ray`).
- `training.py`: the body of a training job (split, fit under the device strategy, export, evaluate).
- `tuning.py`: a hyperparameter search, every trial a run of its own.
- `diagnostics.py`: plain-words findings about a finished run's curves.
- `evaluation.py`: metrics of a trained model on labelled rows the user brings.
- `gallery.py`: the test rows behind a mistake; relabel or drop them and train the same spec again.
- `decisions.py`: a binary classifier's threshold, chosen on business costs, stored and applied to its export.
- `deploy.py`: a run's export as a zip and as TFLite (float, int8), each checked; a folder and config for TF Serving.
- `explanations.py`: why a model said what it said: permutation importance, and one prediction by occlusion.
- `report.py`: a finished run written up to hand over, as one self-contained HTML page and a PDF of it.
- `svg.py`: charts drawn as inline SVG, for pages that must hold everything they show (the report).
- `usecases.py`: use cases in business words over a model, served by its production version.
- `segments.py`: every test metric per segment of a column, with bootstrap intervals; a regression's tolerance band.

The task registry (`models.tasks`) is handed on from here too, for the dashboard.
Other wings and the faces import from here only. Nothing here imports TensorFlow at import time.
"""

from backend.jobs.cluster import serve_forever
from backend.jobs.decisions import cost_check as decision_cost_check
from backend.jobs.decisions import cost_matrix as decision_cost_matrix
from backend.jobs.decisions import costs as decision_costs
from backend.jobs.decisions import current as current_decision
from backend.jobs.decisions import curve as decision_curve
from backend.jobs.decisions import decide, decide_costs
from backend.jobs.decisions import describe as describe_decision
from backend.jobs.deletion import KINDS as DELETABLE
from backend.jobs.deletion import Plan as DeletionPlan
from backend.jobs.deletion import delete
from backend.jobs.deletion import plan as deletion_plan
from backend.jobs.deploy import (
    FormatCheck,
    ServingFolder,
    check_formats,
    format_file,
    saved_formats,
    savedmodel_zip,
    serving_folder,
    serving_plan,
)
from backend.jobs.evaluation import SCORABLE, score_labelled
from backend.jobs.explanations import (
    ImageExplanation,
    Importances,
    Predict,
    RowExplanation,
    TextExplanation,
    example_explanation,
    explain_image,
    explain_row,
    explain_text,
    feature_importance,
    local_predict,
    reference_row,
    saved_example,
    saved_importance,
)
from backend.jobs.gallery import GALLERY_TASKS, fix_and_retrain
from backend.jobs.gallery import compared as compare_metrics
from backend.jobs.gallery import test_rows as gallery_rows
from backend.jobs.names import class_name, column_name, humanise
from backend.jobs.names import given as names_given
from backend.jobs.names import rename as rename_run
from backend.jobs.report import pdf_printer, print_pdf, report_html, report_pdf
from backend.jobs.runs import (
    FINISHED,
    cancel,
    curves,
    default_space,
    describe,
    exported_model,
    get_run,
    in_plain_words,
    latest_run,
    preset_values,
    resume,
    run_again,
    search_trials,
    spec_form,
    start_search,
    start_training,
    summarize,
    tasks_for,
    tensorboard_command,
    wait,
    worker_if_needed,
)
from backend.jobs.segments import by_column as segment_metrics
from backend.jobs.segments import columns as segment_columns
from backend.jobs.segments import parse_tolerance, tolerance_band
from backend.jobs.usecases import Card as UseCaseCard
from backend.jobs.usecases import cards as use_case_cards
from backend.jobs.usecases import create as create_use_case
from backend.jobs.usecases import quality as use_case_quality
from backend.jobs.usecases import serving_run as use_case_run
from backend.jobs.usecases import update as update_use_case
from backend.jobs.worker import has_live_worker, reap_dead_workers
from db import Run, RunSummary  # the records the wing returns, for callers' type hints
from models.tasks import TASKS, TaskInfo, reads_text, task_info

__all__ = [
    "FormatCheck",
    "ServingFolder",
    "check_formats",
    "format_file",
    "saved_formats",
    "savedmodel_zip",
    "serving_folder",
    "serving_plan",
    "Run",
    "RunSummary",
    "FINISHED",
    "SCORABLE",
    "GALLERY_TASKS",
    "TASKS",
    "TaskInfo",
    "cancel",
    "compare_metrics",
    "fix_and_retrain",
    "gallery_rows",
    "current_decision",
    "curves",
    "decide",
    "decision_cost_check",
    "decision_cost_matrix",
    "decision_costs",
    "decide_costs",
    "decision_curve",
    "default_space",
    "describe_decision",
    "describe",
    "exported_model",
    "get_run",
    "has_live_worker",
    "latest_run",
    "preset_values",
    "reap_dead_workers",
    "resume",
    "run_again",
    "score_labelled",
    "search_trials",
    "serve_forever",
    "spec_form",
    "in_plain_words",
    "start_search",
    "start_training",
    "summarize",
    "reads_text",
    "task_info",
    "tasks_for",
    "tensorboard_command",
    "wait",
    "worker_if_needed",
    "ImageExplanation",
    "Importances",
    "Predict",
    "RowExplanation",
    "TextExplanation",
    "explain_image",
    "explain_row",
    "example_explanation",
    "explain_text",
    "feature_importance",
    "local_predict",
    "reference_row",
    "saved_example",
    "saved_importance",
    "pdf_printer",
    "print_pdf",
    "report_html",
    "report_pdf",
    "segment_columns",
    "segment_metrics",
    "parse_tolerance",
    "tolerance_band",
    "UseCaseCard",
    "create_use_case",
    "update_use_case",
    "use_case_cards",
    "use_case_quality",
    "use_case_run",
    "class_name",
    "column_name",
    "humanise",
    "names_given",
    "rename_run",
    "DELETABLE",
    "DeletionPlan",
    "delete",
    "deletion_plan",
]
