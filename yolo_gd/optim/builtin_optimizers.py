"""The built-in optimizers: one :class:`~yolo_gd.optim.optim_info.OptimInfo` per name.

Data only: :mod:`yolo_gd.optim.registry` registers :data:`BUILTIN_OPTIMIZERS` when it is imported. See
:class:`~yolo_gd.optim.optim_info.OptimInfo` for what the capability flags mean and the registry's docstring for the
schedule-free notes.
"""

from __future__ import annotations

from yolo_gd.optim.optim_info import OptimInfo

__all__ = ["BUILTIN_OPTIMIZERS"]

_ADAM = (0.9, 0.999)

BUILTIN_OPTIMIZERS: tuple[OptimInfo, ...] = (
    # Ultralytics' SGD/MuSGD: optim.SGD(g, lr=lr0, momentum=momentum, nesterov=True) with lr0=0.01, momentum=0.937
    OptimInfo(
        name="sgd",
        factory="torch.optim:SGD",
        defaults={"lr": 0.01, "momentum": 0.937, "nesterov": True},
        has_momentum=True,
        fused_on_cuda=False,  # Ultralytics' SGD runs foreach on CUDA: keep its kernel so injected == native there too
        aliases=("sgd_nesterov",),
        summary="SGD with Nesterov momentum 0.937, exactly as Ultralytics builds it (optimizer=SGD)",
    ),
    OptimInfo(
        name="sgd_plain",
        factory="torch.optim:SGD",
        defaults={"lr": 0.01, "momentum": 0.937, "nesterov": False},
        has_momentum=True,
        fused_on_cuda=True,
        summary="SGD with heavy-ball momentum 0.937, no Nesterov (the ablation of 'sgd')",
    ),
    # Adam family: Ultralytics passes betas=(momentum, 0.999) and weight_decay=0.0 (groups set their own decay)
    OptimInfo(
        name="adam",
        factory="torch.optim:Adam",
        defaults={"lr": 1e-3, "betas": _ADAM, "weight_decay": 0.0},
        has_betas=True,
        adaptive=True,
        fused_on_cuda=True,
        summary="Adam with L2 weight decay added to the gradient",
    ),
    OptimInfo(
        name="adamw",
        factory="torch.optim:AdamW",
        defaults={"lr": 1e-3, "betas": _ADAM, "weight_decay": 0.0},
        has_betas=True,
        adaptive=True,
        fused_on_cuda=True,
        summary="AdamW, decoupled weight decay (Ultralytics' optimizer=auto choice for short runs)",
    ),
    OptimInfo(
        name="nadam",
        factory="torch.optim:NAdam",
        defaults={"lr": 2e-3, "betas": _ADAM, "weight_decay": 0.0},
        has_betas=True,
        adaptive=True,
        summary="Adam with Nesterov momentum (torch's default lr 2e-3)",
    ),
    OptimInfo(
        name="radam",
        factory="torch.optim:RAdam",
        defaults={"lr": 1e-3, "betas": _ADAM, "weight_decay": 0.0},
        has_betas=True,
        adaptive=True,
        summary="Rectified Adam: variance warmup built in",
    ),
    OptimInfo(
        name="adamax",
        factory="torch.optim:Adamax",
        defaults={"lr": 2e-3, "betas": _ADAM, "weight_decay": 0.0},
        has_betas=True,
        adaptive=True,
        summary="Adam with the infinity norm (torch's default lr 2e-3)",
    ),
    OptimInfo(
        name="rmsprop",
        factory="torch.optim:RMSprop",
        # Ultralytics passes its momentum (0.937) to RMSprop too; a caller mirroring it passes momentum explicitly
        defaults={"lr": 1e-3, "momentum": 0.9},
        has_momentum=True,
        adaptive=True,
        aliases=("rms_prop",),
        summary="RMSprop with momentum 0.9",
    ),
    OptimInfo(
        name="adagrad",
        factory="torch.optim:Adagrad",
        defaults={"lr": 1e-2},
        adaptive=True,
        # torch 2.14 accepts fused=True on CUDA, but older supported torch (>=2.4) fused Adagrad on CPU only
        fused_on_cuda=False,
        summary="Adagrad: per-element step sizes that only shrink",
    ),
    # Ultralytics' MuSGD: partial(MuSGD, muon=0.2, sgd=1.0)(g) with lr=0.01, momentum=0.9, nesterov=True per group
    OptimInfo(
        name="musgd",
        factory="ultralytics.optim:MuSGD",
        defaults={"lr": 0.01, "momentum": 0.9, "nesterov": True, "muon": 0.2, "sgd": 1.0},
        has_momentum=True,
        muon_groups=True,
        aliases=("muon",),
        summary="Ultralytics' MuSGD: Muon-orthogonalized updates (x0.2) plus SGD (x1.0) on conv/linear weights",
    ),
    OptimInfo(
        name="lion",
        factory="lion_pytorch:Lion",
        # Lion's decay is decoupled (p *= 1 - lr*wd, like AdamW); its step is lr*sign(.), so lr is ~10x below AdamW's
        defaults={"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0},
        has_betas=True,
        adaptive=True,
        extra="lion",
        package="lion-pytorch",
        summary="Lion (lion-pytorch): sign of interpolated momentum, decoupled weight decay",
    ),
    # Schedule-free (facebookresearch/schedulefree): warmup_steps=0 because yolo_gd warms up itself by setting
    # group['lr'] per step, which these optimizers read on every step (see "Schedule-free" in the module docstring).
    OptimInfo(
        name="sfadamw",
        factory="schedulefree:AdamWScheduleFree",
        defaults={"lr": 2.5e-3, "betas": _ADAM, "weight_decay": 0.0, "warmup_steps": 0},
        has_betas=True,
        has_train_eval_mode=True,
        adaptive=True,
        extra="schedulefree",
        package="schedulefree",
        aliases=("schedulefree_adamw", "schedule_free_adamw", "sf_adamw", "adamw_schedulefree"),
        summary="Schedule-free AdamW (package default lr 2.5e-3); needs optimizer.train()/eval()",
    ),
    OptimInfo(
        name="sfsgd",
        factory="schedulefree:SGDScheduleFree",
        # the package README: "for SGD, a learning rate 10x-50x larger than classical rates": 10x Ultralytics' 0.01
        defaults={"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "warmup_steps": 0},
        has_momentum=True,
        has_train_eval_mode=True,
        extra="schedulefree",
        package="schedulefree",
        aliases=("schedulefree_sgd", "schedule_free_sgd", "sf_sgd", "sgd_schedulefree"),
        summary="Schedule-free SGD (lr 0.1 = 10x classical, per the package README); needs optimizer.train()/eval()",
    ),
)
