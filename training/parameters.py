"""The training parameters a user may set, each declared once.

TrainConfig's fields carry their help, limits and choices (training.ml.config); the dataset
split's two parameters are declared here. The Training page's form (training.forms), the
API's serializer (api.serializers) and `manage.py train` are all built from
`training_parameters()`, so a limit changed in one place is the limit of all three.
"""

import dataclasses
from dataclasses import dataclass

from .ml.backbones import REGISTRY
from .ml.config import TrainConfig


@dataclass(frozen=True)
class Parameter:
    """One parameter as the front ends show and check it.

    kind: int, float or str. minimum/maximum: the range (None: no range); exclusive_*: that
    end is not allowed. zero: what 0 means when 0 is allowed below the range. choices: the
    values a str parameter takes (empty: free text of at most max_length characters).
    """

    name: str
    kind: type
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    zero: str = ""
    choices: tuple = ()
    max_length: int | None = None

    @property
    def lowest(self):
        """The smallest value a front end lets through (0 when 0 has a meaning)."""
        return 0 if self.zero else self.minimum

    def allowed(self):
        """The range in words ("between 1 and 1000"); empty for a parameter without one."""
        if self.minimum is None:
            return ""
        low, high = self.minimum, self.maximum
        if self.exclusive_minimum:
            allowed = f"greater than {low} and at most {high}"
        elif self.exclusive_maximum:
            allowed = f"at least {low} and below {high}"
        else:
            allowed = f"between {low} and {high}"
        return f"0 ({self.zero}) or {allowed}" if self.zero else allowed

    def range_error(self, value):
        """Why value is out of range, worded as TrainConfig words it; None when it is in."""
        if self.minimum is None or (self.zero and value == 0):
            return None
        low, high = self.minimum, self.maximum
        above_low = value > low if self.exclusive_minimum else value >= low
        below_high = value < high if self.exclusive_maximum else value <= high
        if above_low and below_high:
            return None
        return f"{self.name} must be {self.allowed()}, got {value}"


# The dataset split (training.dataset.plan_dataset, which checks val_fraction again).
SPLIT_PARAMETERS = (
    Parameter(
        "val_fraction",
        float,
        "The share of each person's photos kept for validation.",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    ),
    Parameter(
        "split_seed",
        int,
        "Seeds which photos are kept for validation.",
        minimum=0,
        maximum=2**32 - 1,
    ),
)

# What a user gives as `pretrained` is a word or a file in the models folder
# (training.services.pretrained_weights_file), not the path TrainConfig gets.
PRETRAINED_HELP = (
    "auto (the network's own weights: face or imagenet), none (random weights) or the name "
    "of a state-dict file in the models folder."
)


def training_parameters():
    """Every parameter a job may be started with, TrainConfig's in its order, then the
    split's. Read afresh on each call: forms, serializers and the command are built when
    used, from TrainConfig's metadata as it is then."""
    return tuple(_from_field(field) for field in dataclasses.fields(TrainConfig)) + (
        SPLIT_PARAMETERS
    )


def _from_field(field):
    facts = field.metadata
    kind = type(field.default)
    if field.name == "pretrained":
        return Parameter(field.name, str, PRETRAINED_HELP, max_length=500)
    if kind is str:
        return Parameter(field.name, str, facts["help"], choices=tuple(facts["choices"]))
    return Parameter(
        field.name,
        kind,
        facts["help"],
        minimum=facts["min"],
        maximum=facts["max"],
        exclusive_minimum=facts.get("min_exclusive", False),
        exclusive_maximum=facts.get("max_exclusive", False),
        zero=facts.get("zero", ""),
    )


def stages_by_network():
    """'network: its stages' for each registered backbone, for help texts."""
    return "; ".join(f"{name}: {', '.join(b.stages)}" for name, b in REGISTRY.items())
