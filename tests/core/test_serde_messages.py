"""The one-line validation message people and models read when an answer does not fit."""

import pytest
from pydantic import BaseModel, ValidationError

from podium.core.serde import Unstorable, describe_validation_error, store_dumps


class Order(BaseModel):
    order_id: int
    sku: str
    qty: int


def _message(data: object) -> str:
    try:
        Order.model_validate(data)
    except ValidationError as e:
        return describe_validation_error(e)
    raise AssertionError("the data was valid")


def test_a_missing_field_is_named_without_repeating_the_whole_object() -> None:
    message = _message({"order_id": 7, "note": "x" * 10})
    assert message == "field 'sku': Field required; field 'qty': Field required"


def test_a_wrong_value_shows_what_was_given_cut_to_one_line() -> None:
    message = _message({"order_id": "seven", "sku": "A", "qty": "y" * 200})
    assert "field 'order_id': Input should be a valid integer" in message
    assert "(got 'seven')" in message
    assert "(got 'yyyy" in message and message.endswith("...)")


def test_a_value_without_json_form_is_named_with_its_type() -> None:
    with pytest.raises(Unstorable, match=r"^an object with no JSON form"):
        store_dumps(object())
    with pytest.raises(Unstorable, match=r"^a dict with no JSON form"):
        store_dumps({"when": object()})
