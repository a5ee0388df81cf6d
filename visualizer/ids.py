"""Every component id of the app, in one place (kebab-case)."""

PAGE = "page"  # the page root; its class carries presentation mode (see visualizer.classroom)
URL = "url"  # read at page load
URL_WRITE = "url-write"  # written on every change (no history event, so URL never re-fires)
PARAMS = "params-store"
MESSAGES = "url-messages"
BANNER = "explosion-banner"
INFO = "run-info"

# controls: one per field of visualizer.urlstate.Params (see CONTROL_IDS)
ARCH = "arch-checklist"
SEQ_LEN = "seq-len-slider"
HIDDEN = "hidden-slider"
LAYERS = "layers-slider"
BATCH = "batch-slider"
TASK = "task-dropdown"
LOSS_ON = "loss-on-radio"
INIT = "init-dropdown"
SCALE = "scale-slider"
SCALE_FIELD = "scale-field"
SCALE_HINT = "scale-hint-store"  # constants of the browser-side scale hint (assets/controls.js)
FORGET_BIAS = "forget-bias-input"
TRUNCATE = "truncate-input"
CLIP = "clip-input"
OPTIMIZER = "optimizer-dropdown"
LR = "lr-input"
SEED = "seed-input"
MATCH = "match-params-checklist"
STEPS = "train-steps-input"  # in the training card (visualizer.training_ui)
VIEW = "view-tabs"

GRAD_GRAPH = "grad-norm-graph"
VIEW_GRAPH = "view-graph"
VIEW_CAPTION = "view-caption"
LOADING_MAIN = "loading-main"
LOADING_VIEW = "loading-view"

# the "BPTT step by step" view's toolbar (assets/stepview.js steps the figure's frames in the browser)
STEP_TOOLBAR = "step-toolbar"
STEP_PLOT = "step-plot"  # a plain div plotly.js draws the stepped figure into (a dcc.Graph would redraw it on zoom)
STEP_BACK = "step-back-button"
STEP_NEXT = "step-next-button"
STEP_PLAY = "step-play-button"
STEP_PAUSE = "step-pause-button"
STEP_CONSTANTS = "step-constants-store"
STEP_FRAME = "step-frame-store"  # the frame the buttons last showed
STEP_KEYS = "step-keys-store"  # output of the callback that installs the arrow-key handler

# the collapsed maths panels (visualizer.explain): view 1's and the tabbed view's
GRAD_MATHS = "grad-maths"
GRAD_MATHS_SUMMARY = "grad-maths-summary"
GRAD_MATHS_BODY = "grad-maths-body"
VIEW_MATHS = "view-maths"
VIEW_MATHS_SUMMARY = "view-maths-summary"
VIEW_MATHS_BODY = "view-maths-body"

# Params field -> control id, in the order of the callback's inputs and outputs
CONTROL_IDS = {
    "arch": ARCH, "seq_len": SEQ_LEN, "hidden": HIDDEN, "layers": LAYERS, "batch": BATCH,
    "task": TASK, "loss_on": LOSS_ON, "init": INIT, "scale": SCALE, "forget_bias": FORGET_BIAS,
    "truncate": TRUNCATE, "clip": CLIP, "optimizer": OPTIMIZER, "lr": LR, "seed": SEED,
    "match_params": MATCH, "steps": STEPS, "view": VIEW,
}

# classroom aids (visualizer.classroom): presets, export, your own weights, presentation mode
PRESET_DROPDOWN = "preset-dropdown"
PRESET_EXPLANATION = "preset-explanation"
EXPORT_CSV = "export-csv-button"
EXPORT_JSON = "export-json-button"
EXPORT_HTML = "export-html-button"
EXPORT_DOWNLOAD = "export-download"
EXPORT_MESSAGE = "export-message"
UPLOAD = "weights-upload"
UPLOAD_STATUS = "weights-upload-status"
UPLOAD_CLEAR = "weights-clear-button"
UPLOAD_PENDING = "weights-pending-store"  # an upload the browser let through, before the server's check
UPLOAD_LIMITS = "weights-limits-store"  # constants of the browser-side size check (assets/classroom.js)
WEIGHTS_STORE = "weights-store"  # the checked upload's summary
PRESENT_TOGGLE = "present-toggle"
PRESENT_EXIT = "present-exit"

# the browser's random id (visualizer.limits) and the rule it follows, for assets/identity.js
USER_STORE = "user-id-store"
USER_RULES = "user-id-rules"

# the live-training card (visualizer.training_ui; its browser code is assets/training.js)
TRAIN_PANEL = "train-panel"
TRAIN_PLAY = "train-play"
TRAIN_PAUSE = "train-pause"
TRAIN_STEP = "train-step"
TRAIN_RESET = "train-reset"
TRAIN_BAR = "train-progress-bar"
TRAIN_STATUS_LINE = "train-status-line"
TRAIN_MESSAGE = "train-message"
TRAIN_PROGRESS_GRAPH = "train-progress-graph"
TRAIN_FLOW_GRAPH = "train-flow-graph"
TRAIN_EVOLUTION_GRAPH = "train-evolution-graph"
TRAIN_SLIDER = "train-snapshot-slider"
TRAIN_PROGRESS = "train-progress-store"
TRAIN_RESULT = "train-result-store"
TRAIN_RECORD = "train-record-store"
TRAIN_STATUS = "train-status-store"
TRAIN_CHECKPOINT = "train-checkpoint-store"
TRAIN_VIEW_TOKEN = "train-view-token"
TRAIN_CONSTANTS = "train-constants"  # numbers assets/training.js needs (redraw interval, step range)
PRESENT_STORE = "present-store"  # true in presentation mode: the figures scale with it
