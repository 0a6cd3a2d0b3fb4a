"""The one formatter of pydantic errors: its short and full forms, and each caller's wording."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from cleemy_booker.config import ConfigError, LuccaSettings
from cleemy_booker.validation import Location, dotted, error_lines, summary


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str
    owner: Owner
    lines: list[int] = []

    @field_validator("number")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a number cannot be blank")
        return value


def errors_of(raw: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Doc.model_validate(raw)
    return caught.value


def root_error() -> ValidationError:
    """An error without a location: the whole input is wrong."""
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(int).validate_python("many")
    return caught.value


#: Four problems, in pydantic's order: a validator's message, a type, an unexpected key, a list.
FOUR = {"number": " ", "owner": {"id": "x", "name": "Ada"}, "lines": [1, "two"]}


def test_dotted_joins_keys_and_indexes_and_names_the_root() -> None:
    assert dotted(("document", "lines", 0, "value")) == "document.lines.0.value"
    assert dotted(()) == ""
    assert dotted((), root="(root)") == "(root)"


def test_the_short_form_is_one_line_of_the_first_three_tidied_errors() -> None:
    assert summary(errors_of(FOUR)) == (
        "number: a number cannot be blank; "
        "owner.id: Input should be a valid integer, unable to parse string as an integer; "
        "owner.name: unexpected key"
    )


def test_the_short_form_takes_a_limit_and_a_separator() -> None:
    exc = errors_of(FOUR)
    assert summary(exc, limit=1) == "number: a number cannot be blank"
    assert summary(exc, limit=4, separator=" | ").count(" | ") == 3


def test_verbatim_keeps_pydantics_wording() -> None:
    exc = errors_of(FOUR)
    assert summary(exc, limit=4, verbatim=True) == (
        "number: Value error, a number cannot be blank; "
        "owner.id: Input should be a valid integer, unable to parse string as an integer; "
        "owner.name: Extra inputs are not permitted; "
        "lines.1: Input should be a valid integer, unable to parse string as an integer"
    )


def test_an_error_without_a_location_is_its_message_or_the_callers_root_name() -> None:
    message = "Input should be a valid integer, unable to parse string as an integer"
    assert summary(root_error()) == message
    assert error_lines(root_error()) == [message]
    assert summary(root_error(), root="(root)") == f"(root): {message}"


def test_the_full_form_is_every_error_on_its_own_line_naming_unknown_keys() -> None:
    assert error_lines(errors_of(FOUR)) == [
        "number: a number cannot be blank",
        "owner.id: Input should be a valid integer, unable to parse string as an integer",
        "owner.name: unknown key 'name'",
        "lines.1: Input should be a valid integer, unable to parse string as an integer",
    ]
    assert len(error_lines(errors_of(FOUR), limit=2)) == 2


def test_the_full_form_lets_the_caller_name_locations_in_its_own_terms() -> None:
    def where(loc: Location) -> str | None:
        return f"the owner's {loc[1]}" if loc[0] == "owner" else None  # None: the dotted path

    assert error_lines(errors_of(FOUR), where=where) == [
        "number: a number cannot be blank",
        "the owner's id: Input should be a valid integer, unable to parse string as an integer",
        "the owner's name: unknown key 'name'",
        "lines.1: Input should be a valid integer, unable to parse string as an integer",
    ]


# --- the callers' wording, as their tests and readers know it ---------------------------------


def test_the_client_wording_names_the_root_and_keeps_pydantics_messages() -> None:
    """What ``client.py`` says of an answer that is not an inbox item (``not an inbox item: …``)."""
    assert summary(root_error(), root="(root)", verbatim=True).startswith("(root): Input should")
    assert summary(errors_of({"owner": {"id": 1}}), root="(root)", verbatim=True) == (
        "number: Field required"
    )


def test_the_runtime_wording_is_the_first_error_with_the_body_as_root() -> None:
    """What the processor's wiring (``wiring/processor.py``) says of a queue message it cannot
    read (``invalid message: …``)."""
    assert summary(errors_of(FOUR), limit=1, root="(body)", verbatim=True) == (
        "number: Value error, a number cannot be blank"
    )
    assert summary(root_error(), limit=1, root="(body)", verbatim=True).startswith("(body): ")


def test_a_configuration_error_lists_every_variable_in_pydantics_wording() -> None:
    with pytest.raises(ConfigError) as raised:
        LuccaSettings.from_env({"LUCCA_BASE_URL": "http://example.ilucca.net", "BUDGET_LIMIT": "0"})
    assert str(raised.value) == (
        "invalid configuration: LUCCA_BASE_URL: Value error, Lucca base URL must use https "
        "(http only on loopback): 'http://example.ilucca.net'; "
        "LUCCA_API_KEY_SECRET: Field required; BUDGET_TABLE: Field required; "
        "BUDGET_LIMIT: Input should be greater than or equal to 1"
    )
