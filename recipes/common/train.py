"""Run-wide settings shared by every recipe (``train``); recipes import and adjust them."""

train = dict(
    seed=0,
    output_root="runs",     # runs/<recipe>/<run name>/<stage>/
    run_name=None,          # null: "default", or a name made from the command-line overrides
    max_steps=None,         # cap on every stage's steps (smoke tests, quick looks); null = the stage's own
    device="auto",          # auto | cpu | cuda
    tf32=True,              # TF32 matmuls on Ampere+ GPUs
    compile=None,           # torch.compile: null/false = off, true = inductor, or a backend name
    compile_mode=None,      # torch.compile mode: null (default), max-autotune-no-cudagraphs, ...
    sdpa_backends=None,     # attention kernels allowed, e.g. [flash, efficient, math]; null = PyTorch's choice
    find_unused_parameters=False,  # DDP: true if some steps leave parameters unused
    log_every=10,           # steps between progress lines / tensorboard scalars
    ckpt_every=1000,        # steps between checkpoints (0: only at the end of a stage)
    keep_last=2,            # checkpoints kept besides milestones
    milestone_every=None,   # steps between checkpoints that are never pruned
    num_workers=0,          # DataLoader worker processes
)
