"""Students distilled from the 12-layer offline model: an offline size family.

* :mod:`~langmix.distillation.arguments`: the recipe (:class:`DistillArguments`).
* :mod:`~langmix.distillation.texts`: the distillation text, and the proof that it holds no
  evaluation text.
* :mod:`~langmix.distillation.student`: the student's initialisation from the teacher.
* :mod:`~langmix.distillation.distill`: the loop (``langmix distill``) and the cached
  students behind ``offline:multilingual-e5-small-distilled@L{k}``.
"""

from __future__ import annotations

from langmix.distillation.arguments import DistillArguments
from langmix.distillation.distill import distill, distilled_model_dir
from langmix.distillation.student import layer_map, make_student

__all__ = ["DistillArguments", "distill", "distilled_model_dir", "layer_map", "make_student"]
