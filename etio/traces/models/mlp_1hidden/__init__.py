"""``mlp_1hidden``: flatten → Linear(in, w, bias=False) → ReLU → Linear(w, C, bias=False) (paper §5.1).

Many models at once are a batched matrix product over their stacked weights. Several widths share
one training job by zero-padding the hidden layer to the widest: the layers have no bias, so a
padded unit has zero pre-activation, zero ReLU gradient and zero weight gradient, and stays exactly
zero under weight decay and momentum — the model is exactly the narrower one.
"""

from etio.traces.models._registry import register_model

register_model("mlp_1hidden", mixed_widths=True)
