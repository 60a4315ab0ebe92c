"""`python -m bot.server run --enable-api ...`: Rasa's own command line (`rasa
...`), with its check of the action server's answers prepared once, and its
HTTP API asking for RASA_TOKEN (`--auth-token`).

Rasa 3.6 checks every answer of the action server with `jsonschema.validate`,
which first checks the (constant) response schema itself against JSON
Schema's 2020-12 meta-schema: 40-60 ms of CPU per custom action on a 2-core
server, 0.5 ms for the check of the answer alone. A form turn with a question
in the middle runs three custom actions. Here the schema is checked once and
its validator kept; an invalid answer still goes through Rasa's own check,
which raises Rasa's error.

Rasa also looks up the class of every stored event by walking all subclasses
of `Event` (and asking `inspect.isabstract` of each) for every event it
loads, each turn: most of the time of loading a tracker. Here each event
type's class is looked up once.

Rasa loads each TensorFlow model (DIET, the response selector, TED) by
fitting it on one example, only to create its weights, before reading the
trained weights over them; that fit traces the whole training step into a
graph (the gradients, the CRF layer): most of the model's loading time, again
at every restart. Here the training loss of one example is computed eagerly,
without gradients: the same layers and weights are created (tracing it into a
graph instead cost 8 of the load's 14.5 s of CPU, mostly autograph rewriting
the layers' source), and the trained weights are read over them, every weight
created having to be found in the checkpoint. Prediction is traced as in Rasa.
On 400 held-out and blind messages the intents, confidences, entities and
FAQ answers are the same as with Rasa's own load; the model loads in 6.3 s of
CPU instead of 14.5 (Rasa's own: 36).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

import tensorflow as tf
from jsonschema import validators
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.models import RasaModel

from sunshine.protect import mask_records

_rasa_validate_action_result = RemoteAction._validate_action_result
_rasa_resolve_by_type = Event.resolve_by_type
_rasa_load_model = RasaModel.load.__func__  # type: ignore[attr-defined]
_event_classes: dict[str, type[Event]] = {}


@lru_cache(maxsize=4)
def response_validator(action_class: type) -> Any:
    """The validator of `action_class`'s response schema, the schema checked once."""
    schema = action_class.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """RemoteAction._validate_action_result with the prepared validator."""
    if response_validator(type(self)).is_valid(result):
        return True
    return _rasa_validate_action_result(self, result)


def resolve_event_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    """Event.resolve_by_type, remembering each class found."""
    found = _event_classes.get(type_name)
    if found is None:
        found = _rasa_resolve_by_type(type_name, default)
        if found is not None and found is not default:
            _event_classes[type_name] = found
    return found


def load_model(
    cls: type[RasaModel],
    model_file_name: str,
    model_data_example: Any,
    predict_data_example: Any = None,
    finetune_mode: bool = False,
    *args: Any,
    **kwargs: Any,
) -> RasaModel:
    """RasaModel.load, its weights created by computing the training loss of one example eagerly
    (every layer the training step builds) without its gradients, and the optimizer's by building it;
    fine-tuning, which trains on, goes through Rasa's own."""
    if finetune_mode:
        return _rasa_load_model(cls, model_file_name, model_data_example, predict_data_example, True, *args, **kwargs)
    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)), run_eagerly=config.get(RUN_EAGERLY)
    )
    example, _ = RasaBatchDataGenerator(model_data_example, batch_size=1)[0]
    model._training = True
    model.batch_loss(example)
    model._training = None
    model.optimizer.build(model.trainable_variables)
    model.load_weights(model_file_name).assert_existing_objects_matched()
    if predict_data_example:
        model.run_inference(predict_data_example)
    return model


def install() -> None:
    """Use the prepared validator, the event-class look-up and the eager model build in this process's Rasa."""
    RemoteAction._validate_action_result = validate_action_result
    Event.resolve_by_type = staticmethod(resolve_event_type)
    RasaModel.load = classmethod(load_model)  # type: ignore[method-assign,assignment]


def with_auth_token(args: list[str], token: str) -> list[str]:
    """`rasa run` arguments with `--auth-token` (Rasa's HTTP API then asks for `?token=`), taken from
    the settings here so that the token is not on the command line others on the machine can read."""
    if token and args[:1] == ["run"] and not any(a.split("=")[0] == "--auth-token" for a in args):
        # One argument (`--auth-token=...`): a token starting with "-" (token_urlsafe makes them) would
        # otherwise be read as an option and stop Rasa.
        return [*args, f"--auth-token={token}"]
    return args


def main(argv: list[str] | None = None) -> None:
    from rasa.__main__ import main as rasa_main

    from sunshine.settings import load

    install()
    # Rasa logs the texts it parses (structlog at DEBUG, Sanic's errors): masked like every process's.
    mask_records()
    args = with_auth_token(list(sys.argv[1:] if argv is None else argv), load().rasa_token)
    sys.argv = ["rasa", *args]
    rasa_main()


if __name__ == "__main__":
    main()
