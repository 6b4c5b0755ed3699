"""The record's columns, named once: the runner writes them under these names, the estimator's
calibration (``estimate/calibrated.py``) and the analysis (``analysis/summary.py``,
``analysis/quality.py``) read them by these names. docs/records.md says what each one is."""

from __future__ import annotations

# identity and what was measured
CELL_ID = "cell_id"
SPLIT = "split"
SEED = "seed"
MODEL = "model"
MODEL_DISPLAY = "model_display"
MODEL_FAMILY = "model_family"
MODEL_WEIGHTS = "model_weights"
DATASET = "dataset"
N_TRAIN = "n_train"
N_TEST = "n_test"
N_CLASSES = "n_classes"
TEXT_CHARS_MEAN = "text_chars_mean"
TIME_KEY = "time_key"  # what sets the time besides sizes (estimate.calibrated.time_key)
DECODING = "decoding"
BATCHING = "batching"
FEW_SHOT = "few_shot"  # an LLM's demonstrations per prompt (0: zero-shot, the paper's)
THINKING_TOKENS = "thinking_tokens"  # a reasoning model's thinking budget (null: max_tokens, the paper's)
QUANTIZATION = "quantization"  # an LLM's weights as served: none, fp8, awq, gptq, bitsandbytes
# where
CLUSTER = "cluster"
GPU_TYPE = "gpu_type"
GPUS = "gpus"
GPUS_IDLE = "gpus_idle"
NODES = "nodes"
# quality of the answers
ACCURACY = "accuracy"
MACRO_F1 = "macro_f1"
INVALID_RATE = "invalid_rate"
# an LLM's tokens per text (generated: 0 for decoding=score) and score's best-vs-runner-up margin
OUTPUT_TOKENS = "output_tokens_mean"
PROMPT_TOKENS = "prompt_tokens_mean"
SCORE_MARGIN = "score_margin_mean"
# cost, per pass over the test set
ENERGY_WH = "energy_wh"
DURATION_S = "duration_s"
AVG_POWER_W = "avg_power_w"
ENERGY_PER_SAMPLE_WH = "energy_per_sample_wh"
CPU_WH, GPU_WH, RAM_WH = "cpu_wh", "gpu_wh", "ram_wh"
EMISSIONS_KG = "emissions_kg"
CARBON_INTENSITY = "carbon_intensity_g_per_kwh"
# the measured window and the fit's
PASSES = "passes"
WINDOW_S = "window_s"
WINDOW_ENERGY_WH = "window_energy_wh"
SAMPLES = "samples"
IDLE_POWER_W = "idle_power_w"
FIT_ENERGY_WH = "fit_energy_wh"
FIT_DURATION_S = "fit_duration_s"
ENGINE_LOAD_S = "engine_load_s"
STARTED_AT = "started_at"
ENDED_AT = "ended_at"

# what makes two records one configuration in the tables (seed and repetitions do not)
CELL_KEYS = [MODEL, MODEL_DISPLAY, MODEL_FAMILY, DATASET, CLUSTER, GPU_TYPE, GPUS, NODES,
             DECODING, BATCHING, FEW_SHOT, THINKING_TOKENS, QUANTIZATION]
METRICS = [ACCURACY, ENERGY_WH, DURATION_S, AVG_POWER_W, ENERGY_PER_SAMPLE_WH]
