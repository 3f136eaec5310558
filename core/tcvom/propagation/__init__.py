"""Keyframe trimap propagation: the shared keyframe scheduler and the propagators."""

from tcvom.errors import InputError
from tcvom.propagation.scheduler import KeyframeSchedule, Pass, Segment

__all__ = ["KeyframeSchedule", "Pass", "Segment", "check_finetune_backend"]


def check_finetune_backend(backend: str, finetune_steps: int) -> None:
    """Online fine-tuning needs the torch back-end: another runs fixed exported weights
    (checked by a job before it records its settings, and by the STM propagator)."""
    if backend != "torch" and finetune_steps > 0:
        raise InputError(
            f"online fine-tuning changes the weights, and the {backend} back-end runs fixed exported ones",
            hint="use --finetune-steps 0, or --backend torch to fine-tune",
        )
