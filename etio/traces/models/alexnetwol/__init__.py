"""``alexnetwol``: AlexNet "without linear" layers (paper §5.1); ``w`` = filters of the first convolution."""

from etio.traces.models._registry import register_model

register_model("alexnetwol")
